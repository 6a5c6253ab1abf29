"""A deactivated, offboarded or deleted tenant: its bound clients get no token, its users do not
log in nor get or refresh tokens, and a token of it fails even where it was not revoked.
Reactivating the tenant restores logins and new tokens (never the revoked ones)."""

import re

import pytest

from accounts.tests.conftest import PASSWORD, browser_session, http, pkce_pair
from metering.interface import MeterSpec
from metering.services import meter_create
from tenants.models import Tenant
from tenants.services import tenant_activate, tenant_deactivate, tenant_delete, tenant_offboard
from tenants.tests.factories import tenant_registration_onboard

pytestmark = pytest.mark.django_db(transaction=True)

ENDINGS = {
    "deactivated": lambda tenant: tenant_deactivate(tenant_id=tenant.pk),
    "offboarded": lambda tenant: tenant_offboard(tenant_id=tenant.pk),
    "deleted": lambda tenant: tenant_delete(tenant_id=tenant.pk),
}


@pytest.fixture
def acme(transactional_db):
    return tenant_registration_onboard("acme").tenant


def admin_login(auth_server, username: str) -> bool:
    """Whether the admin's login page lets ``username`` in."""
    browser = browser_session()
    page = browser.get(auth_server.url + "/admin/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = browser.post(
        auth_server.url + "/admin/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": csrf, "next": "/admin/"},
        headers={"Referer": auth_server.url + "/admin/login/"},
        allow_redirects=False,
    )
    return response.status_code == 302


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_bound_client_of_an_inactive_tenant_gets_no_token(auth_server, machine, acme, ending):
    client_id, secret = machine("user/user_read user/user_write", tenant=acme)
    old = auth_server.client_credentials(client_id, secret).json()["access_token"]
    assert auth_server.api("users", old).status_code == 200

    ENDINGS[ending](acme)

    refused = auth_server.client_credentials(client_id, secret)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert "access_token" not in refused.json()
    assert auth_server.api("users", old).status_code == 401
    created = auth_server.api(
        "users", old, method="post", json={"userName": "x", "email": "x@x.test", "userRole": "TenantAdmin"}
    )
    assert created.status_code == 401


def test_reactivating_the_tenant_restores_new_client_tokens(auth_server, machine, acme):
    client_id, secret = machine("user/user_read", tenant=acme)
    old = auth_server.client_credentials(client_id, secret).json()["access_token"]
    tenant_deactivate(tenant_id=acme.pk)
    assert auth_server.client_credentials(client_id, secret).status_code == 401

    tenant_activate(tenant_id=acme.pk)
    fresh = auth_server.client_credentials(client_id, secret)
    assert fresh.status_code == 200
    assert auth_server.api("users", fresh.json()["access_token"]).status_code == 200
    assert auth_server.api("users", old).status_code == 401, "revoked tokens stay revoked"


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_user_of_an_inactive_tenant_cannot_log_in_nor_get_or_refresh_tokens(auth_server, person, acme, ending):
    person("alice", role="TenantAdmin", tenant=acme, is_staff=True)
    tokens = auth_server.user_tokens("alice")
    assert auth_server.api("users/alice", tokens["access_token"]).status_code == 200
    # a code obtained before the tenant ends, exchanged after
    verifier, challenge = pkce_pair()
    code = auth_server.code(auth_server.login("alice"), challenge)

    ENDINGS[ending](acme)

    assert auth_server.login("alice").logged_in is False
    assert admin_login(auth_server, "alice") is False
    exchanged = auth_server.exchange(code, verifier)
    assert exchanged.status_code == 400
    assert "access_token" not in exchanged.json()
    refreshed = auth_server.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert "access_token" not in refreshed.json()
    assert auth_server.api("users/alice", tokens["access_token"]).status_code == 401


def test_a_session_opened_before_the_tenant_was_deactivated_gets_no_code(auth_server, person, acme):
    person("alice", role="TenantAdmin", tenant=acme)
    browser = auth_server.login("alice")
    assert browser.logged_in
    tenant_deactivate(tenant_id=acme.pk)
    response = auth_server.authorize(browser, code_challenge=pkce_pair()[1], code_challenge_method="S256")
    assert response.status_code == 302
    assert "/o/login/" in response.headers["Location"], "the session no longer counts: log in again"


def test_reactivating_the_tenant_restores_logins(auth_server, person, acme):
    person("alice", role="TenantAdmin", tenant=acme, is_staff=True)
    old = auth_server.user_tokens("alice")
    tenant_deactivate(tenant_id=acme.pk)
    assert auth_server.login("alice").logged_in is False

    tenant_activate(tenant_id=acme.pk)
    assert auth_server.login("alice").logged_in is True
    assert admin_login(auth_server, "alice") is True
    fresh = auth_server.user_tokens("alice")
    assert auth_server.api("users/alice", fresh["access_token"]).status_code == 200
    assert auth_server.api("users/alice", old["access_token"]).status_code == 401


def test_tokens_of_a_tenant_deactivated_behind_the_services_back_fail(auth_server, person, machine, acme):
    # Defence in depth: the row flipped directly, so nothing was revoked; the bearer check,
    # refresh and introspection still refuse every token bound to the tenant.
    client_id, secret = machine("user/user_read", tenant=acme)
    machine_token = auth_server.client_credentials(client_id, secret).json()["access_token"]
    person("alice", role="TenantAdmin", tenant=acme)
    user_tokens = auth_server.user_tokens("alice")
    for token in (machine_token, user_tokens["access_token"]):
        assert auth_server.api("users/alice", token).status_code == 200

    Tenant.objects.filter(pk=acme.pk).update(active=False)

    for token in (machine_token, user_tokens["access_token"]):
        assert auth_server.api("users/alice", token).status_code == 401
    assert auth_server.refresh(user_tokens["refresh_token"]).status_code == 400
    own = http.post(auth_server.url + "/o/introspect/", data={"token": machine_token}, auth=(client_id, secret))
    assert own.status_code == 401, "the client itself no longer authenticates"
    introspector = machine("introspection")
    for token in (machine_token, user_tokens["access_token"]):
        introspected = http.post(auth_server.url + "/o/introspect/", data={"token": token}, auth=introspector)
        assert introspected.json() == {"active": False}

    Tenant.objects.filter(pk=acme.pk).update(active=True)
    assert auth_server.api("users/alice", machine_token).status_code == 200, "nothing was revoked"


def test_usage_ingestion_refuses_a_token_of_an_inactive_tenant(auth_server, machine, acme):
    # POST /usage checks tokens on its own fast path (metering's group commit, bearer_checks).
    meter_create(spec=MeterSpec(api_name="api-calls", label="api-calls", aggregation="SUM"))
    token = auth_server.client_credentials(*machine("usage/usage_write", tenant=acme)).json()["access_token"]
    event = {"eventId": "e-1", "meterApiName": "api-calls", "tenantId": str(acme.pk), "meterValue": 1}
    assert auth_server.api("usage", token, method="post", json=event).status_code == 201

    Tenant.objects.filter(pk=acme.pk).update(active=False)

    refused = auth_server.api("usage", token, method="post", json={**event, "eventId": "e-2"})
    assert refused.status_code == 401
    assert refused.json()["message"] == "Unauthorized"
