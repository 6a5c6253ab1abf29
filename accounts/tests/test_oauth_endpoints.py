"""The /o/ endpoints' edges: exact redirect URIs (loopback ports too), who may introspect what,
the unmounted logout, and query strings oauthlib cannot decode (a 400, never a 500)."""

import pytest
from django.test import Client

from accounts.services import oauth_client_create
from accounts.tests.conftest import CALLBACK, http, pkce_pair
from accounts.tokens import access_token_issue

pytestmark = pytest.mark.django_db(transaction=True)


def introspect(auth_server, token: str, auth) -> dict:
    response = http.post(auth_server.url + "/o/introspect/", data={"token": token}, auth=auth)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return response.json()


# --- redirect URIs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://127.0.0.1:10/callback", "http://127.0.0.1/callback", "http://localhost:9/callback"],
    ids=["other-port", "no-port", "localhost"],
)
def test_a_loopback_redirect_uri_matches_exactly_port_included(auth_server, person, redirect_uri):
    person("carol")
    browser = auth_server.login("carol")
    response = auth_server.authorize(
        browser, redirect_uri=redirect_uri, code_challenge=pkce_pair()[1], code_challenge_method="S256"
    )
    assert response.status_code == 400, "never redirect to a port nobody registered"
    assert "Location" not in response.headers
    assert (
        auth_server.authorize(browser, code_challenge=pkce_pair()[1], code_challenge_method="S256")
        .headers["Location"]
        .startswith(CALLBACK)
    )


# --- introspection --------------------------------------------------------------------------


def test_introspection_is_post_only(auth_server, machine):
    client_id, secret = machine()
    token = auth_server.client_credentials(client_id, secret).json()["access_token"]
    response = http.get(auth_server.url + "/o/introspect/", params={"token": token}, auth=(client_id, secret))
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert "active" not in response.text


def test_a_client_introspects_its_own_tokens_only(auth_server, machine):
    mine, theirs = machine("user/user_read"), machine("user/user_read")
    my_token = auth_server.client_credentials(*mine).json()["access_token"]
    their_token = auth_server.client_credentials(*theirs).json()["access_token"]

    own = introspect(auth_server, my_token, mine)
    assert own["active"] is True
    assert own["client_id"] == mine[0] and own["scope"] == "user/user_read"
    assert introspect(auth_server, their_token, mine) == {"active": False}, "as if it did not exist"
    assert introspect(auth_server, "not-a-token", mine) == {"active": False}


def test_a_client_with_the_introspection_scope_introspects_every_token(auth_server, person, machine):
    introspector = machine("introspection")
    machine_token = auth_server.client_credentials(*machine("user/user_read")).json()["access_token"]
    person("carol")
    user_token = auth_server.user_tokens("carol")["access_token"]

    assert introspect(auth_server, machine_token, introspector)["active"] is True
    user = introspect(auth_server, user_token, introspector)
    assert user["active"] is True and user["username"] == "carol"
    assert auth_server.client_credentials(*introspector, scope="introspection").status_code == 400, (
        "a permission of the client, never a scope of a token"
    )


def test_neither_a_public_client_nor_a_bearer_token_may_introspect(auth_server, person, machine):
    person("carol")
    user_token = auth_server.user_tokens("carol")["access_token"]
    application, _ = oauth_client_create(name="introspector", scopes=["introspection"])
    bearer = access_token_issue(application=application, scope="introspection")[1]
    for credentials in (
        {"data": {"token": user_token, "client_id": auth_server.user_client_id}},
        {"data": {"token": user_token}, "headers": {"Authorization": f"Bearer {bearer}"}},
    ):
        response = http.post(auth_server.url + "/o/introspect/", **credentials)
        assert response.status_code == 401
        assert response.json() == {"error": "invalid_client"}


# --- logout ---------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_logout_is_not_offered(settings, debug):
    # RP-initiated logout is off; DOT's view raised ImproperlyConfigured (a 500) with DEBUG on.
    settings.DEBUG = debug
    for method in ("get", "post"):
        response = getattr(Client(), method)("/o/logout/")
        assert response.status_code == 404
        if not debug:  # with DEBUG on, Django's technical 404 page answers instead of handler404
            assert response.json() == {"statusCode": 404, "message": "Not found", "code": "not_found"}


# --- malformed query strings ----------------------------------------------------------------


@pytest.fixture
def api_token(transactional_db):
    application, _ = oauth_client_create(name="api", scopes=["user/user_read", "usage/usage_write"])
    return access_token_issue(application=application, scope="user/user_read usage/usage_write")[1]


@pytest.mark.parametrize(
    ("method", "path"), [("get", "/api/v1/users"), ("get", "/api/v1/tenants"), ("post", "/api/v1/usage")]
)
def test_a_malformed_query_string_is_a_400_on_the_api(api_token, method, path):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_token}")
    # The test client sends the query string as given (requests would re-encode it). POST /usage
    # goes by its fast path (metering's group commit checks the token) and then by DRF.
    if method == "post":
        response = client.post(path + "?next_token=%%%zz", data={"events": [{}]}, content_type="application/json")
    else:
        response = client.get(path + "?next_token=%%%zz")
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "message": "Malformed percent-encoding in the query string.",
        "code": "bad_request",
    }


def test_a_well_formed_query_oauthlib_would_refuse_still_works_on_the_api(api_token):
    # brackets are fine for Django, not for oauthlib's decoder: the validator never sees the query
    response = Client(HTTP_AUTHORIZATION=f"Bearer {api_token}").get("/api/v1/users?filter[name]=x&limit=5")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/o/token/"),
        ("get", "/o/authorize/"),
        ("post", "/o/revoke_token/"),
        ("post", "/o/introspect/"),
        ("get", "/o/userinfo/"),
        ("get", "/o/.well-known/openid-configuration"),
    ],
)
def test_a_malformed_query_string_is_an_oauth_error_on_the_authorization_server(transactional_db, method, path):
    response = getattr(Client(), method)(path + "?state=%%%zz")
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Malformed percent-encoding in the query string.",
    }
