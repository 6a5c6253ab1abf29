"""A user's token carries at most its role's scopes (SBT["ROLE_SCOPES"]), through the live
authorization server: login, consent screen, token response, JWT, refresh and role changes."""

import html
import re
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.contrib.auth import get_user_model

from accounts.models import OAuthApplication
from accounts.tests.conftest import CALLBACK, pkce_pair
from sbt_site.conf import SCOPE_DESCRIPTIONS
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)

EVERY_SCOPE = " ".join(SCOPE_DESCRIPTIONS)
TENANT_ADMIN_SCOPES = {
    "tenant/tenant_read",
    "user/user_read",
    "user/user_write",
    "meter/meter_read",
    "usage/usage_read",
    "usage/usage_write",
}
TENANT_USER_SCOPES = {"tenant/tenant_read", "meter/meter_read", "usage/usage_read"}


def login_tokens(server, username: str, scope: str | None = EVERY_SCOPE) -> dict:
    """An authorization-code + PKCE login asking for ``scope`` (None: ask for nothing)."""
    verifier, challenge = pkce_pair()
    code = server.code(server.login(username), challenge, scope=scope)
    response = server.exchange(code, verifier)
    assert response.status_code == 200, response.text
    return response.json()


def jwt_scopes(access_token: str) -> set[str]:
    return set(jwt.decode(access_token, options={"verify_signature": False})["scope"].split())


def granted(tokens: dict) -> set[str]:
    """The scopes of a token response; the JWT must say the same."""
    scopes = set(tokens["scope"].split())
    assert jwt_scopes(tokens["access_token"]) == scopes
    return scopes


@pytest.fixture
def acme(transactional_db):
    return TenantFactory(name="acme")


@pytest.fixture
def globex(transactional_db):
    return TenantFactory(name="globex")


@pytest.mark.parametrize(
    "role, expected",
    [
        ("SystemAdmin", set(SCOPE_DESCRIPTIONS)),
        ("TenantAdmin", TENANT_ADMIN_SCOPES),
        ("TenantUser", TENANT_USER_SCOPES),
    ],
)
@pytest.mark.parametrize("scope", [EVERY_SCOPE, None], ids=["asks-for-every-scope", "asks-for-none"])
def test_a_login_yields_exactly_the_roles_scopes(auth_server, person, acme, role, expected, scope):
    person("carol", role=role, tenant=None if role == "SystemAdmin" else acme)
    tokens = login_tokens(auth_server, "carol", scope=scope)
    assert granted(tokens) == expected

    refreshed = auth_server.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert granted(refreshed.json()) == expected


@pytest.mark.parametrize(
    "role, bound",
    [
        # An unknown role used to get the TenantUser scopes; with no tenant that reached every
        # tenant. Deny by default now.
        ("SomethingElse", True),
        ("SomethingElse", False),
        ("", True),
        ("", False),
        # A tenant role without a tenant is bound to none: no scopes rather than every tenant.
        ("TenantAdmin", False),
        ("TenantUser", False),
    ],
)
def test_an_unknown_role_or_an_unbound_tenant_role_gets_no_token(auth_server, person, acme, role, bound):
    person("carol", role=role, tenant=acme if bound else None)
    response = auth_server.authorize(
        auth_server.login("carol"), scope=EVERY_SCOPE, code_challenge=pkce_pair()[1], code_challenge_method="S256"
    )
    assert response.status_code == 302
    params = parse_qs(urlsplit(response.headers["Location"]).query)
    assert params["error"] == ["invalid_scope"]
    assert "code" not in params


def test_the_tenant_roles_are_a_setting(settings):
    from accounts.scopes import user_scopes

    assert user_scopes("TenantAdmin", None) == []
    settings.SBT = {**getattr(settings, "SBT", {}), "TENANT_ROLES": []}
    assert set(user_scopes("TenantAdmin", None)) == TENANT_ADMIN_SCOPES


def test_a_scope_outside_the_role_is_narrowed_away(auth_server, person, acme):
    # RFC 6749 §3.3: the server may grant less than asked, and then says what it granted.
    person("carol", role="TenantUser", tenant=acme)
    tokens = login_tokens(auth_server, "carol", scope="tenant/tenant_read tenant/tenant_write user/user_write")
    assert tokens["scope"] == "tenant/tenant_read"
    assert granted(tokens) == {"tenant/tenant_read"}
    assert auth_server.api(f"tenants/{acme.pk}", tokens["access_token"]).status_code == 200
    assert auth_server.api(f"tenants/{acme.pk}", tokens["access_token"], method="put", json={"x": 1}).status_code == 403


def test_asking_only_for_scopes_outside_the_role_is_invalid_scope(auth_server, person, acme):
    person("carol", role="TenantUser", tenant=acme)
    response = auth_server.authorize(
        auth_server.login("carol"),
        scope="tenant/tenant_write user/user_write",
        code_challenge=pkce_pair()[1],
        code_challenge_method="S256",
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(CALLBACK)
    params = parse_qs(urlsplit(location).query)
    assert params["error"] == ["invalid_scope"]
    assert params["state"] == ["xyz"]
    assert "code" not in params


def test_a_refresh_cannot_ask_for_more_than_the_role(auth_server, person, acme):
    person("carol", role="TenantUser", tenant=acme)
    tokens = login_tokens(auth_server, "carol")
    response = auth_server.refresh(tokens["refresh_token"], scope="tenant/tenant_read user/user_write")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_the_consent_screen_shows_and_grants_only_the_roles_scopes(auth_server, person, acme):
    OAuthApplication.objects.filter(client_id=auth_server.user_client_id).update(skip_authorization=False)
    person("carol", role="TenantUser", tenant=acme)
    browser = auth_server.login("carol")
    verifier, challenge = pkce_pair()
    page = auth_server.authorize(browser, scope=EVERY_SCOPE, code_challenge=challenge, code_challenge_method="S256")
    assert page.status_code == 200, page.text
    shown = {html.unescape(item) for item in re.findall(r"<li>\s*(.*?)\s*</li>", page.text)}
    assert shown == {SCOPE_DESCRIPTIONS[scope] for scope in TENANT_USER_SCOPES}
    form = {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    }
    assert set(form["scope"].split()) == TENANT_USER_SCOPES

    # A browser that edits the hidden field gets nothing more: the whole request is refused.
    tampered = browser.post(
        page.url,
        data={**form, "scope": "tenant/tenant_read tenant/tenant_write", "allow": "Authorize"},
        headers={"Referer": page.url},
        allow_redirects=False,
    )
    assert tampered.status_code == 302
    assert parse_qs(urlsplit(tampered.headers["Location"]).query)["error"] == ["invalid_scope"]

    approved = browser.post(
        page.url, data={**form, "allow": "Authorize"}, headers={"Referer": page.url}, allow_redirects=False
    )
    assert approved.status_code == 302, approved.text
    code = parse_qs(urlsplit(approved.headers["Location"]).query)["code"][0]
    tokens = auth_server.exchange(code, verifier).json()
    assert granted(tokens) == TENANT_USER_SCOPES


def test_a_tenant_admin_cannot_touch_another_tenant(auth_server, person, acme, globex):
    person("alice", role="TenantAdmin", tenant=acme)
    person("bob", role="TenantUser", tenant=globex)
    person("amy", role="TenantUser", tenant=acme)
    token = login_tokens(auth_server, "alice")["access_token"]

    assert auth_server.api(f"tenants/{acme.pk}", token).status_code == 200
    assert auth_server.api(f"tenants/{globex.pk}", token).status_code == 404
    assert [tenant["tenantId"] for tenant in auth_server.api("tenants", token).json()["data"]] == [str(acme.pk)]
    assert {user["userName"] for user in auth_server.api("users", token).json()["data"]} == {"alice", "amy"}
    assert auth_server.api("users/bob", token).status_code == 404
    assert auth_server.api("users/bob", token, method="put", json={"email": "x@example.com"}).status_code == 404
    assert auth_server.api("users/bob/disable", token, method="delete").status_code == 404
    assert auth_server.api("users/bob", token, method="delete").status_code == 404
    assert get_user_model().objects.get(username="bob").email == "bob@example.com"

    # Within its tenant it manages users; a user it creates lands in its tenant whatever it asks.
    created = auth_server.api(
        "users",
        token,
        method="post",
        json={"userName": "ann", "email": "ann@example.com", "userRole": "TenantUser", "tenantId": str(acme.pk)},
    )
    assert created.status_code == 201, created.text
    assert get_user_model().objects.get(username="ann").tenant_id == acme.pk
    elsewhere = auth_server.api(
        "users",
        token,
        method="post",
        json={"userName": "eve", "email": "eve@example.com", "userRole": "TenantUser", "tenantId": str(globex.pk)},
    )
    assert elsewhere.status_code == 404
    # Tenant writes are not a tenant admin's.
    assert auth_server.api(f"tenants/{acme.pk}", token, method="put", json={"tier": "gold"}).status_code == 403


def test_a_tenant_user_cannot_read_users_or_another_tenant(auth_server, person, acme, globex):
    person("amy", role="TenantUser", tenant=acme)
    token = login_tokens(auth_server, "amy")["access_token"]
    assert auth_server.api(f"tenants/{globex.pk}", token).status_code == 404
    assert auth_server.api("users", token).status_code == 403
    assert auth_server.api("users/amy", token, method="put", json={"userRole": "TenantAdmin"}).status_code == 403


def test_a_tenant_admin_cannot_hand_out_a_role_above_its_own(auth_server, person, acme):
    person("alice", role="TenantAdmin", tenant=acme)
    person("amy", role="TenantUser", tenant=acme)
    token = login_tokens(auth_server, "alice")["access_token"]

    for user_name in ("alice", "amy"):
        response = auth_server.api(f"users/{user_name}", token, method="put", json={"userRole": "SystemAdmin"})
        assert response.status_code == 403, response.text
        assert response.json()["statusCode"] == 403
    created = auth_server.api(
        "users", token, method="post", json={"userName": "mal", "email": "m@example.com", "userRole": "SystemAdmin"}
    )
    assert created.status_code == 403
    assert not get_user_model().objects.filter(username="mal").exists()
    assert set(get_user_model().objects.filter(tenant=acme).values_list("role", flat=True)) == {
        "TenantAdmin",
        "TenantUser",
    }
    # Its own role or one below it is fine.
    assert auth_server.api("users/amy", token, method="put", json={"userRole": "TenantAdmin"}).status_code == 200


def test_a_role_change_revokes_the_users_tokens(auth_server, person, machine, acme):
    person("alice", role="TenantAdmin", tenant=acme)
    tokens = login_tokens(auth_server, "alice")
    assert auth_server.api("users", tokens["access_token"]).status_code == 200
    operator = auth_server.client_credentials(*machine("user/user_write")).json()["access_token"]

    # An email change leaves the tokens alone.
    assert auth_server.api("users/alice", operator, method="put", json={"email": "a@example.com"}).status_code == 200
    assert auth_server.api("users", tokens["access_token"]).status_code == 200

    assert auth_server.api("users/alice", operator, method="put", json={"userRole": "TenantUser"}).status_code == 200
    assert auth_server.api("tenants", tokens["access_token"]).status_code == 401
    refreshed = auth_server.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"

    # Logging in again gives the new role's scopes.
    assert granted(login_tokens(auth_server, "alice")) == TENANT_USER_SCOPES


def test_a_role_changed_behind_the_apis_back_narrows_the_next_refresh(auth_server, person, acme):
    user = person("alice", role="TenantAdmin", tenant=acme)
    tokens = login_tokens(auth_server, "alice")
    get_user_model().objects.filter(pk=user.pk).update(role="TenantUser")
    refreshed = auth_server.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert granted(refreshed.json()) == TENANT_USER_SCOPES


def test_machine_tokens_are_not_limited_by_any_role(auth_server, machine):
    response = auth_server.client_credentials(*machine(EVERY_SCOPE), scope=EVERY_SCOPE)
    assert response.status_code == 200, response.text
    assert granted(response.json()) == set(SCOPE_DESCRIPTIONS)
