"""Throttling and lockout of failed logins and failed client authentications (django-axes and
accounts/lockout.py), through the real views."""

import base64
import io
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db.models import F
from django.test import Client, RequestFactory

from accounts.lockout import client_ip
from sbt_site.settings import env_lockout_parameters

pytestmark = pytest.mark.django_db

LIMIT = django_settings.AXES_FAILURE_LIMIT
COOL_OFF = django_settings.AXES_COOLOFF_TIME
PASSWORD = "correct horse battery staple"
ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.9"


class CountingHasher(MD5PasswordHasher):
    """The test suite's hasher, counting the secrets it checks."""

    checked = 0

    def verify(self, password, encoded):
        CountingHasher.checked += 1
        return super().verify(password, encoded)


@pytest.fixture
def counting_hasher(settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.checked = 0
    return CountingHasher


@pytest.fixture
def person(db):
    def make(username: str = "carol", **fields):
        return get_user_model().objects.create_user(username=username, password=PASSWORD, **fields)

    return make


def log_in(page: str, username: str, password: str, address: str = ATTACKER, client: Client | None = None):
    client = client or Client()
    return client.post(page, {"username": username, "password": password}, REMOTE_ADDR=address)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def token(client_id: str, secret: str, *, auth: str = "basic", address: str = ATTACKER):
    data = {"grant_type": "client_credentials"}
    headers = {"REMOTE_ADDR": address}
    if auth == "basic":
        headers["HTTP_AUTHORIZATION"] = basic(client_id, secret)
    else:
        data.update(client_id=client_id, client_secret=secret)
    return Client().post("/o/token/", data, **headers)


def assert_locked_out_client(response):
    assert response.status_code == 429, response.content
    assert response.json() == {
        "error": "temporarily_unavailable",
        "error_description": response.json()["error_description"],
    }
    assert response["Retry-After"] == str(int(COOL_OFF.total_seconds()))


def assert_locked_out_page(response):
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert response["Retry-After"] == str(int(COOL_OFF.total_seconds()))


LOGIN_PAGES = [
    pytest.param("/admin/login/", {"is_staff": True}, id="admin"),
    pytest.param("/o/login/", {}, id="authorization-flow"),
]


@pytest.mark.parametrize(("page", "fields"), LOGIN_PAGES)
def test_the_limit_th_failed_login_locks_the_account_even_for_the_right_password(person, page, fields):
    person("carol", **fields)
    for _ in range(LIMIT - 1):
        assert log_in(page, "carol", "wrong password").status_code == 200  # the form again
    assert_locked_out_page(log_in(page, "carol", "wrong password"))

    browser = Client()
    assert_locked_out_page(log_in(page, "carol", PASSWORD, address=ELSEWHERE, client=browser))
    assert "_auth_user_id" not in browser.session


@pytest.mark.parametrize(("page", "fields"), LOGIN_PAGES)
def test_an_address_is_locked_across_user_names(person, page, fields):
    person("carol", **fields)
    for number in range(LIMIT):
        log_in(page, f"guess{number}", "wrong password")
    assert_locked_out_page(log_in(page, "carol", PASSWORD))
    assert log_in(page, "carol", PASSWORD, address=ELSEWHERE).status_code == 302


def test_a_locked_login_is_not_counted_so_the_lockout_ends_a_cool_off_after_it_began(person):
    person("carol", is_staff=True)
    for _ in range(LIMIT + 5):
        log_in("/admin/login/", "carol", "wrong password")
    assert AccessAttempt.objects.get().failures_since_start == LIMIT

    AccessAttempt.objects.update(attempt_time=F("attempt_time") - COOL_OFF)
    assert log_in("/admin/login/", "carol", PASSWORD).status_code == 302


def test_an_operator_lifts_a_login_lockout_in_the_admin(person, admin_user):
    person("carol", is_staff=True)
    for _ in range(LIMIT):
        log_in("/admin/login/", "carol", "wrong password")
    assert_locked_out_page(log_in("/admin/login/", "carol", PASSWORD))

    operator = Client()
    operator.force_login(admin_user)
    assert b"Access attempts" in operator.get("/admin/").content
    listing = operator.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and b"carol" in listing.content
    lifted = operator.post(
        "/admin/axes/accessattempt/",
        {
            "action": "delete_selected",
            "_selected_action": list(AccessAttempt.objects.values_list("pk", flat=True)),
            "post": "yes",
        },
    )
    assert lifted.status_code == 302
    assert log_in("/admin/login/", "carol", PASSWORD).status_code == 302


@pytest.mark.parametrize("auth", ["basic", "post"])
def test_the_limit_th_wrong_secret_locks_the_client_and_its_secret_is_no_longer_checked(
    make_oauth_client, counting_hasher, auth
):
    application, secret = make_oauth_client()
    for _ in range(LIMIT - 1):
        refused = token(application.client_id, "wrong secret", auth=auth)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert_locked_out_client(token(application.client_id, "wrong secret", auth=auth))
    assert counting_hasher.checked == LIMIT

    assert_locked_out_client(token(application.client_id, secret, auth=auth, address=ELSEWHERE))
    assert counting_hasher.checked == LIMIT, "a locked-out client's secret costs no hashing"


def test_an_address_is_locked_across_clients(make_oauth_client):
    for _ in range(LIMIT):
        victim, _ = make_oauth_client()
        token(victim.client_id, "wrong secret")
    application, secret = make_oauth_client()
    assert_locked_out_client(token(application.client_id, secret))
    assert token(application.client_id, secret, address=ELSEWHERE).status_code == 200


def test_unknown_client_ids_count_against_the_address(make_oauth_client):
    answers = [token(f"no-such-client-{number}", "secret").status_code for number in range(LIMIT)]
    assert answers == [401] * (LIMIT - 1) + [429]
    application, secret = make_oauth_client()
    assert_locked_out_client(token(application.client_id, secret))


def test_revocation_and_introspection_are_locked_with_the_token_endpoint(make_oauth_client):
    application, secret = make_oauth_client()
    for _ in range(LIMIT):
        token(application.client_id, "wrong secret")
    for endpoint in ("/o/revoke_token/", "/o/introspect/"):
        response = Client().post(
            endpoint, {"token": "x"}, HTTP_AUTHORIZATION=basic(application.client_id, secret), REMOTE_ADDR=ELSEWHERE
        )
        assert_locked_out_client(response)


def test_wrong_secrets_at_introspection_count_too(make_oauth_client):
    application, secret = make_oauth_client()
    for _ in range(LIMIT):
        refused = Client().post(
            "/o/introspect/",
            {"token": "x"},
            HTTP_AUTHORIZATION=basic(application.client_id, "wrong"),
            REMOTE_ADDR=ATTACKER,
        )
        assert refused.status_code in (401, 429)
    assert_locked_out_client(token(application.client_id, secret, address=ELSEWHERE))


@pytest.mark.parametrize(
    ("command", "argument"),
    [("axes_reset_username", "client:{client_id}"), ("axes_reset_ip", ATTACKER), ("axes_reset", None)],
)
def test_an_operator_lifts_a_client_lockout_with_a_command(make_oauth_client, command, argument):
    application, secret = make_oauth_client()
    for _ in range(LIMIT):
        token(application.client_id, "wrong secret")
    assert_locked_out_client(token(application.client_id, secret))

    arguments = [argument.format(client_id=application.client_id)] if argument else []
    call_command(command, *arguments, stdout=io.StringIO())
    assert token(application.client_id, secret).status_code == 200


def test_a_client_lockout_ends_after_the_cool_off(make_oauth_client):
    application, secret = make_oauth_client()
    for _ in range(LIMIT):
        token(application.client_id, "wrong secret")
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - COOL_OFF + timedelta(seconds=5))
    assert_locked_out_client(token(application.client_id, secret))

    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=5))
    assert token(application.client_id, secret).status_code == 200


def test_failed_attempts_keep_no_secret(make_oauth_client):
    application, _ = make_oauth_client()
    token(application.client_id, "wrong-secret-kept-nowhere", auth="post")
    Client().post(
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": "stolen-refresh-token", "client_id": application.client_id},
        REMOTE_ADDR=ATTACKER,
    )
    stored = " ".join(AccessAttempt.objects.values_list("post_data", flat=True))
    assert "grant_type=client_credentials" in stored
    assert "wrong-secret-kept-nowhere" not in stored
    assert "stolen-refresh-token" not in stored


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_AUTHORIZATION": "Basic !!!not base64"},
        {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"\xff\xfe:secret").decode()},
        {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"no colon").decode()},
        {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(("x" * 5000 + ":secret").encode()).decode()},
    ],
    ids=["not-base64", "not-utf8", "no-colon", "long-id"],
)
def test_malformed_client_credentials_are_refused_and_counted(headers):
    for _ in range(LIMIT):
        response = Client().post("/o/token/", {"grant_type": "client_credentials"}, REMOTE_ADDR=ATTACKER, **headers)
        assert response.status_code in (400, 401, 429), response.content
    assert_locked_out_client(token("anyone", "anything"))


def test_a_locked_out_address_still_reaches_the_api_with_a_bearer_token(api, make_oauth_client):
    for _ in range(LIMIT):
        token("no-such-client", "secret", address="127.0.0.1")
    application, secret = make_oauth_client()
    assert_locked_out_client(token(application.client_id, secret, address="127.0.0.1"))
    assert api(scopes="user/user_read").get("/api/v1/users").status_code == 200


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "192.0.2.1", "10.0.0.1"),  # no proxy trusted: the header is the client's to forge
        (1, "192.0.2.66, 192.0.2.1", "192.0.2.1"),  # what the proxy appended, not what the client sent
        (2, "192.0.2.66, 192.0.2.1, 10.0.0.2", "192.0.2.1"),
        (2, "192.0.2.1", "10.0.0.1"),  # did not come through both proxies
        (1, "", "10.0.0.1"),
        (1, "192.0.2.1:443", "10.0.0.1"),  # not an address
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address_behind_trusted_proxies(settings, proxies, forwarded, expected):
    settings.SBT = {"TRUSTED_PROXY_COUNT": proxies}
    request = RequestFactory().post("/o/token/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_behind_a_proxy_each_client_address_is_locked_on_its_own(settings, make_oauth_client):
    settings.SBT = {"TRUSTED_PROXY_COUNT": 1}
    application, secret = make_oauth_client()
    behind_proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for number in range(LIMIT):
        Client().post(
            "/o/token/",
            {"grant_type": "client_credentials"},
            HTTP_AUTHORIZATION=basic(f"no-such-client-{number}", "x"),
            HTTP_X_FORWARDED_FOR=ATTACKER,
            **behind_proxy,
        )
    headers = {"HTTP_AUTHORIZATION": basic(application.client_id, secret), **behind_proxy}
    response = Client().post(
        "/o/token/", {"grant_type": "client_credentials"}, HTTP_X_FORWARDED_FOR=ATTACKER, **headers
    )
    assert_locked_out_client(response)
    response = Client().post(
        "/o/token/", {"grant_type": "client_credentials"}, HTTP_X_FORWARDED_FOR=ELSEWHERE, **headers
    )
    assert response.status_code == 200


def test_lockout_parameters_from_the_environment(monkeypatch):
    monkeypatch.setenv("SBT_LOCKOUT_PARAMETERS", "username+ip_address, ip_address")
    assert env_lockout_parameters("SBT_LOCKOUT_PARAMETERS", "username") == [["username", "ip_address"], "ip_address"]
    monkeypatch.setenv("SBT_LOCKOUT_PARAMETERS", "user_agent")
    with pytest.raises(ImproperlyConfigured, match="SBT_LOCKOUT_PARAMETERS"):
        env_lockout_parameters("SBT_LOCKOUT_PARAMETERS", "username")


@pytest.mark.parametrize("endpoint", ["/o/token/", "/o/revoke_token/", "/o/introspect/"])
@pytest.mark.parametrize(
    ("data", "headers"),
    [
        ({"client_id": "nul\x00id", "client_secret": "secret"}, {}),
        ({}, {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"nul\x00id:secret").decode()}),
        ({"code": "nul\x00code", "client_id": "someone"}, {}),
    ],
    ids=["body-client-id", "basic-client-id", "code"],
)
def test_a_nul_character_is_an_invalid_request_not_a_crash(endpoint, data, headers):
    data = {"grant_type": "authorization_code", "token": "x", **data}
    response = Client().post(endpoint, data, REMOTE_ADDR=ATTACKER, **headers)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
