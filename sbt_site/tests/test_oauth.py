"""Client-credentials tokens from /o/token/ and the scope check on a protected route."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import OAuthApplication
from tenants.models import Tenant

pytestmark = [pytest.mark.django_db, pytest.mark.urls("sbt_site.tests.probe_urls")]


def create_client(*args) -> dict:
    out = StringIO()
    call_command("oauth_client_create", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def fetch_token(client_id: str, secret: str, **extra) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=_basic(client_id, secret))
    return client.post("/o/token/", {"grant_type": "client_credentials", **extra})


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_command_output_gets_a_token_that_opens_the_scoped_route():
    credentials = create_client("--name", "app plane", "--scopes", "tenant/tenant_read tenant/tenant_write")
    assert set(credentials) == {"clientId", "clientSecret"}

    response = fetch_token(credentials["clientId"], credentials["clientSecret"])
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert set(body["scope"].split()) == {"tenant/tenant_read", "tenant/tenant_write"}
    assert body["expires_in"] == 3600

    assert APIClient().get("/api/v1/probe").status_code == 401
    assert bearer(body["access_token"]).get("/api/v1/probe").status_code == 200


def test_token_without_the_routes_scope_is_403():
    credentials = create_client("--name", "users only", "--scopes", "user/user_read")
    token = fetch_token(credentials["clientId"], credentials["clientSecret"]).json()["access_token"]
    response = bearer(token).get("/api/v1/probe")
    assert response.status_code == 403
    assert response.json() == {"statusCode": 403, "message": "Forbidden", "code": "forbidden"}


def test_a_client_cannot_ask_for_scopes_it_was_not_given():
    credentials = create_client("--name", "reader", "--scopes", "tenant/tenant_read")
    response = fetch_token(credentials["clientId"], credentials["clientSecret"], scope="tenant/tenant_write")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_narrower_scope_request_is_honoured():
    credentials = create_client("--name", "rw", "--scopes", "tenant/tenant_read tenant/tenant_write")
    body = fetch_token(credentials["clientId"], credentials["clientSecret"], scope="tenant/tenant_read").json()
    assert body["scope"] == "tenant/tenant_read"
    write = bearer(body["access_token"]).post("/api/v1/probe", {"name": "a", "count": 1}, format="json")
    assert write.status_code == 403


def test_wrong_secret_gets_no_token():
    credentials = create_client("--name", "x", "--scopes", "tenant/tenant_read")
    response = fetch_token(credentials["clientId"], "wrong-secret")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_secret_is_stored_hashed_and_shown_once():
    credentials = create_client("--name", "hashed", "--scopes", "tenant/tenant_read")
    stored = OAuthApplication.objects.get(client_id=credentials["clientId"]).client_secret
    assert stored != credentials["clientSecret"]
    assert credentials["clientSecret"] not in stored


def test_client_bound_to_a_tenant():
    tenant = Tenant.objects.create(name="acme")
    credentials = create_client("--name", "acme", "--scopes", "usage/usage_write", "--tenant", str(tenant.pk))
    assert OAuthApplication.objects.get(client_id=credentials["clientId"]).tenant == tenant


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scopes", "tenant/tenant_read nope/nope"], "Unknown scope(s): nope/nope"),
        (["--scopes", " "], "at least one scope"),
        (["--scopes", "tenant/tenant_read", "--tenant", "00000000-0000-0000-0000-000000000000"], "Tenant not found"),
        (["--scopes", "tenant/tenant_read", "--tenant", "not-a-uuid"], "Tenant not found"),
    ],
)
def test_command_refuses_bad_input_with_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("oauth_client_create", "--name", "bad", *args)
    assert not OAuthApplication.objects.filter(name="bad").exists()
