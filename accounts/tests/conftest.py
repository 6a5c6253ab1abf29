"""Fixtures for tests that talk to the authorization server over HTTP (``live_server``)."""

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model

from accounts.services import oauth_client_create, user_client_ensure

CALLBACK = "http://127.0.0.1:9/callback"  # never contacted: the test reads the redirect itself
PASSWORD = "correct horse battery staple"


_open_sessions: list[requests.Session] = []


def tracked(session: requests.Session) -> requests.Session:
    """Close ``session`` when the test ends: a kept-alive connection would keep a live-server
    thread, and its database connection, open past the test."""
    _open_sessions.append(session)
    return session


def browser_session() -> requests.Session:
    """A cookie-keeping HTTP client, like a browser."""
    return tracked(requests.Session())


http = requests  # one connection per call, closed at once


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class AuthServer:
    """The live control plane, spoken to the way an outside client would."""

    url: str
    user_client_id: str

    @property
    def token_endpoint(self) -> str:
        return self.url + "/o/token/"

    @property
    def authorize_endpoint(self) -> str:
        return self.url + "/o/authorize/"

    def login(self, username: str, password: str = PASSWORD) -> requests.Session:
        """A browser session logged in through the login page."""
        browser = browser_session()
        page = browser.get(self.url + "/o/login/")
        assert page.status_code == 200, page.text
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = browser.post(
            self.url + "/o/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": csrf},
            headers={"Referer": self.url + "/o/login/"},
            allow_redirects=False,
        )
        browser.logged_in = response.status_code == 302
        return browser

    def authorize(self, browser: requests.Session, **params) -> requests.Response:
        """GET /o/authorize/ with the user client's defaults; the redirect is not followed."""
        query = {
            "response_type": "code",
            "client_id": self.user_client_id,
            "redirect_uri": CALLBACK,
            "scope": "user/user_read",
            "state": "xyz",
            **params,
        }
        query = {key: value for key, value in query.items() if value is not None}
        return browser.get(self.authorize_endpoint + "?" + urlencode(query), allow_redirects=False)

    def code(self, browser: requests.Session, challenge: str, **params) -> str:
        response = self.authorize(browser, code_challenge=challenge, code_challenge_method="S256", **params)
        assert response.status_code == 302, response.text
        location = response.headers["Location"]
        assert location.startswith(CALLBACK), location
        return parse_qs(urlsplit(location).query)["code"][0]

    def exchange(self, code: str, verifier: str | None, redirect_uri: str = CALLBACK) -> requests.Response:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        data["client_id"] = self.user_client_id
        if verifier is not None:
            data["code_verifier"] = verifier
        return http.post(self.token_endpoint, data=data)

    def user_tokens(self, username: str) -> dict:
        browser = self.login(username)
        verifier, challenge = pkce_pair()
        response = self.exchange(self.code(browser, challenge), verifier)
        assert response.status_code == 200, response.text
        return response.json()

    def refresh(self, refresh_token: str, **data) -> requests.Response:
        return http.post(
            self.token_endpoint,
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": self.user_client_id,
                **data,
            },
        )

    def client_credentials(self, client_id: str, secret: str, **data) -> requests.Response:
        return http.post(
            self.token_endpoint, data={"grant_type": "client_credentials", **data}, auth=(client_id, secret)
        )

    def api(self, path: str, token: str | None = None, method: str = "get", **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return http.request(method, self.url + "/api/v1/" + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture
def auth_server(live_server, settings, transactional_db):
    # The issuer in tokens and discovery is the public URL; here that is the live server's.
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live_server.url + "/o"}
    settings.SBT_PUBLIC_URL = live_server.url
    user_client = user_client_ensure(redirect_uris=[CALLBACK])
    yield AuthServer(url=live_server.url, user_client_id=user_client.client_id)
    while _open_sessions:
        _open_sessions.pop().close()


@pytest.fixture
def person(transactional_db):
    """``person("carol", role=..., tenant=...)``: a user who can log in with PASSWORD; a
    SystemAdmin unless told otherwise (tests of the flows are not about roles)."""

    def make(username: str = "carol", **fields):
        fields.setdefault("role", "SystemAdmin")
        return get_user_model().objects.create_user(
            username=username, email=f"{username}@example.com", password=PASSWORD, **fields
        )

    return make


@pytest.fixture
def machine(transactional_db):
    """``machine(scopes) -> (client_id, secret)``: a confidential client-credentials client."""

    def make(scopes: str = "user/user_read user/user_write", tenant=None):
        application, secret = oauth_client_create(
            name="machine", scopes=scopes.split(), tenant_id=tenant.pk if tenant else None
        )
        return application.client_id, secret

    return make
