"""Hostile clients against the live authorization server and API: each attempt is refused."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from jwcrypto import jwk
from jwcrypto import jwt as jwcrypto_jwt

from accounts.services import oauth_client_create
from accounts.tests.conftest import CALLBACK, browser_session, http, pkce_pair
from accounts.tokens import access_token_claims, access_token_issue

pytestmark = pytest.mark.django_db(transaction=True)


def redirect_params(response) -> dict:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(CALLBACK), location
    return parse_qs(urlsplit(location).query)


def test_reused_authorization_code_is_refused(auth_server, person):
    person("carol")
    verifier, challenge = pkce_pair()
    code = auth_server.code(auth_server.login("carol"), challenge)
    assert auth_server.exchange(code, verifier).status_code == 200
    replay = auth_server.exchange(code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "pkce",
    [
        {},  # no PKCE at all
        {"code_challenge": "x" * 43, "code_challenge_method": "plain"},
        {"code_challenge": "x" * 43},  # method defaults to plain
    ],
    ids=["missing", "plain", "plain-by-default"],
)
def test_authorization_without_pkce_s256_gets_no_code(auth_server, person, pkce):
    person("carol")
    params = redirect_params(auth_server.authorize(auth_server.login("carol"), **pkce))
    assert "code" not in params
    assert params["error"] == ["invalid_request"]


@pytest.mark.parametrize("verifier", [None, "wrong-verifier-" + "x" * 40], ids=["missing", "wrong"])
def test_code_exchange_needs_the_right_verifier(auth_server, person, verifier):
    person("carol")
    _, challenge = pkce_pair()
    response = auth_server.exchange(auth_server.code(auth_server.login("carol"), challenge), verifier)
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_grant", "invalid_request")


def test_altered_redirect_uri_is_refused_at_authorize_and_at_exchange(auth_server, person):
    person("carol")
    browser = auth_server.login("carol")
    verifier, challenge = pkce_pair()
    evil = auth_server.authorize(
        browser, redirect_uri="http://127.0.0.1:9/callback/evil", code_challenge=challenge, code_challenge_method="S256"
    )
    assert evil.status_code == 400, "never redirect to an unregistered URI"
    assert "Location" not in evil.headers

    code = auth_server.code(browser, challenge)
    swapped = auth_server.exchange(code, verifier, redirect_uri=CALLBACK + "/other")
    assert swapped.status_code == 400
    assert swapped.json()["error"] in ("invalid_grant", "invalid_request")


def test_implicit_and_password_grants_are_off(auth_server, person, machine):
    person("carol")
    implicit = auth_server.authorize(auth_server.login("carol"), response_type="token")
    assert "access_token" not in implicit.headers.get("Location", "")
    assert "token" not in urlsplit(implicit.headers.get("Location", "")).fragment
    client_id, secret = machine()
    password = http.post(
        auth_server.token_endpoint,
        data={"grant_type": "password", "username": "carol", "password": "correct horse battery staple"},
        auth=(client_id, secret),
    )
    assert password.status_code in (400, 401)
    assert "access_token" not in password.json()


def test_wrong_client_secret_is_401(auth_server, machine):
    client_id, secret = machine()
    response = auth_server.client_credentials(client_id, secret[:-1] + ("a" if secret[-1] != "a" else "b"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_token_in_the_query_string_is_not_accepted(auth_server, machine):
    token = auth_server.client_credentials(*machine("user/user_read")).json()["access_token"]
    assert auth_server.api("users", token).status_code == 200
    response = http.get(auth_server.url + "/api/v1/users", params={"access_token": token})
    assert response.status_code == 401
    assert response.json()["message"] == "Unauthorized"


def test_token_in_a_form_body_is_not_accepted(auth_server, machine):
    token = auth_server.client_credentials(*machine("user/user_write")).json()["access_token"]
    response = http.post(auth_server.url + "/api/v1/users", data={"access_token": token, "userName": "x"})
    assert response.status_code == 401
    assert not get_user_model().objects.filter(username="x").exists()


def test_expired_token_is_401(auth_server):
    application, _ = oauth_client_create(name="expired", scopes=["user/user_read"])
    _, token = access_token_issue(application=application, scope="user/user_read", lifetime=-60)
    assert auth_server.api("users", token).status_code == 401


def test_a_jwt_signed_with_another_key_is_401(auth_server):
    application, _ = oauth_client_create(name="forger", scopes=["user/user_read"])
    claims = access_token_claims(application=application, user=None, scope="user/user_read", lifetime=600)
    key = jwk.JWK.generate(kty="RSA", size=2048)
    forged = jwcrypto_jwt.JWT(header={"alg": "RS256", "typ": "at+jwt"}, claims=claims)
    forged.make_signed_token(key)
    assert auth_server.api("users", forged.serialize()).status_code == 401


def test_introspection_without_client_credentials_is_a_json_401(auth_server, machine):
    client_id, secret = machine()
    token = auth_server.client_credentials(client_id, secret).json()["access_token"]
    for auth in (None, (client_id, "wrong-secret"), ("nobody", "nothing")):
        response = http.post(auth_server.url + "/o/introspect/", data={"token": token}, auth=auth)
        assert response.status_code == 401, auth
        assert response.headers["Content-Type"] == "application/json"
        assert response.json() == {"error": "invalid_client"}
    response = http.post(auth_server.url + "/o/introspect/", data={"token": token}, auth=(client_id, secret))
    assert response.status_code == 200 and response.json()["active"] is True


def test_revoked_token_is_401_and_introspects_inactive(auth_server, machine):
    client_id, secret = machine("user/user_read")
    token = auth_server.client_credentials(client_id, secret).json()["access_token"]
    introspected = http.post(auth_server.url + "/o/introspect/", data={"token": token}, auth=(client_id, secret))
    assert introspected.json()["active"] is True
    assert auth_server.api("users", token).status_code == 200

    revoked = http.post(auth_server.url + "/o/revoke_token/", data={"token": token}, auth=(client_id, secret))
    assert revoked.status_code == 200
    assert auth_server.api("users", token).status_code == 401
    introspected = http.post(auth_server.url + "/o/introspect/", data={"token": token}, auth=(client_id, secret))
    assert introspected.json() == {"active": False}


def test_a_disabled_users_tokens_refresh_and_login_stop_working(auth_server, person, machine):
    person("carol")
    tokens = auth_server.user_tokens("carol")
    assert auth_server.api("users/carol", tokens["access_token"]).status_code == 200

    operator = auth_server.client_credentials(*machine("user/user_write")).json()["access_token"]
    assert auth_server.api("users/carol/disable", operator, method="delete").status_code == 200

    assert auth_server.api("users/carol", tokens["access_token"]).status_code == 401
    refreshed = auth_server.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert "access_token" not in refreshed.json()
    assert auth_server.login("carol").logged_in is False

    # Enabled again, carol logs in afresh; the old tokens stay dead.
    assert auth_server.api("users/carol/enable", operator, method="put").status_code == 200
    assert auth_server.login("carol").logged_in is True
    assert auth_server.api("users/carol", tokens["access_token"]).status_code == 401


def test_a_user_disabled_behind_the_apis_back_is_refused_too(auth_server, person):
    # Even a token that was not revoked (the row was flipped directly) stops working.
    user = person("carol")
    tokens = auth_server.user_tokens("carol")
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert auth_server.api("users/carol", tokens["access_token"]).status_code == 401
    assert auth_server.refresh(tokens["refresh_token"]).status_code == 400


def test_refresh_token_rotation_and_replay_detection(auth_server, person):
    person("carol")
    first = auth_server.user_tokens("carol")
    second = auth_server.refresh(first["refresh_token"])
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"], "refresh tokens rotate"
    assert auth_server.api("users/carol", second["access_token"]).status_code == 200

    replay = auth_server.refresh(first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # Reuse means theft: the whole family is revoked, including what the thief may hold.
    assert auth_server.refresh(second["refresh_token"]).status_code == 400
    assert auth_server.api("users/carol", second["access_token"]).status_code == 401


def test_login_page_refuses_a_wrong_password(auth_server, person):
    person("carol")
    assert auth_server.login("carol", password="wrong password").logged_in is False
    browser = browser_session()
    response = auth_server.authorize(browser, code_challenge=pkce_pair()[1], code_challenge_method="S256")
    assert response.status_code == 302
    assert "/o/login/" in response.headers["Location"], "an anonymous browser is sent to log in, not given a code"
