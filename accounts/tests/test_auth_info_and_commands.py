"""GET /auth-info, discovery and JWKS, the IAuth provider, and the accounts commands."""

import json
from io import StringIO

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.interface import AuthProvider
from accounts.models import OAuthApplication
from accounts.providers.django import DjangoAuthProvider
from accounts.services import auth_provider
from sbt_site.conf import sbt_settings

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_auth_info_is_public_and_complete(settings):
    settings.SBT_PUBLIC_URL = "https://control.example.com"
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": "https://control.example.com/o"}
    machine = json.loads(run("machine_client_create", "--json"))
    user_client = run("user_client_create", "--redirect-uri", "https://app.example.com/callback")

    response = APIClient().get("/api/v1/auth-info")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["jwtIssuer"] == "https://control.example.com/o"
    assert data["jwtAudience"] == ["https://control.example.com/api/v1/"], "SBT's IAuth: a list of strings"
    assert data["machineClientAudience"] == "https://control.example.com/api/v1/"
    assert data["tokenEndpoint"] == "https://control.example.com/o/token/"
    assert data["wellKnownEndpointUrl"] == "https://control.example.com/o/.well-known/openid-configuration"
    assert data["machineClientId"] == machine["clientId"]
    assert data["userClientId"] in user_client
    assert data["scopes"]["fetchAllUsersScope"] == "user/user_read"
    assert data["scopes"]["createTenantRegistrationScope"] == "tenant/tenant_write"
    assert set(data["scopes"]) == {f"{operation}Scope" for operation in sbt_settings.SCOPES}


def test_auth_info_after_migrate_has_the_user_client_but_no_machine_client():
    """migrate reserves the user client (accounts.services.user_client_reserve), so userClientId
    is there without a command; the machine client has a secret to hand out, so a command makes it."""
    data = APIClient().get("/api/v1/auth-info").json()["data"]
    user_client = OAuthApplication.objects.get(system_role="user")
    assert data["userClientId"] == user_client.client_id and data["machineClientId"] is None
    assert user_client.redirect_uris == "", "nobody logs in through it before the operator registers a callback"


def test_a_machine_client_asking_for_the_published_audience_gets_a_token_for_it():
    """SBT's API destination connection sends ``audience=<machineClientAudience>`` with its
    client-credentials request when the IAuth publishes one
    (src/control-plane/tenant-registration/tenant-registration.service.ts)."""
    machine = json.loads(run("machine_client_create", "--json"))
    info = APIClient().get("/api/v1/auth-info").json()["data"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=_basic(machine["clientId"], machine["clientSecret"]))
    response = client.post("/o/token/", {"grant_type": "client_credentials", "audience": info["machineClientAudience"]})
    assert response.status_code == 200, response.content
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] in info["jwtAudience"]
    assert claims["aud"] == info["machineClientAudience"]


def test_discovery_and_jwks(client):
    discovery = client.get("/o/.well-known/openid-configuration").json()
    assert discovery == client.get("/.well-known/openid-configuration").json()
    assert discovery["issuer"].endswith("/o")
    assert discovery["response_types_supported"] == ["code"]
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]
    keys = client.get("/o/.well-known/jwks.json").json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["use"] == "sig"
    assert "d" not in keys[0], "the JWKS publishes the public key only"


def test_dots_application_management_pages_are_not_mounted(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/o/applications/").status_code == 404
    assert client.get("/o/applications/register/").status_code == 404


def test_the_provider_is_the_configured_one(settings):
    provider = auth_provider()
    assert isinstance(provider, DjangoAuthProvider) and isinstance(provider, AuthProvider)
    assert provider.fetch_all_users_scope == "user/user_read"
    assert provider.create_user_scope == "user/user_write"
    assert provider.machine_client_secret is None, "secrets are stored hashed"
    settings.SBT_PROVIDERS = {"auth": {"BACKEND": "accounts.providers.nope.Nope"}}
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match=r"accounts\.providers\.nope\.Nope"):
        auth_provider()


def test_createadminuser_is_idempotent_and_says_how_to_set_the_password():
    out = run("createadminuser", "--name", "admin", "--email", "admin@example.com", "--role", "SystemAdmin")
    assert "Created operator admin (SystemAdmin)" in out
    assert "manage.py changepassword admin" in out
    user = get_user_model().objects.get(username="admin")
    assert (user.is_staff, user.is_superuser, user.role, user.has_usable_password()) == (
        True,
        True,
        "SystemAdmin",
        False,
    )
    again = run("createadminuser", "--name", "admin", "--email", "other@example.com", "--role", "SystemAdmin")
    assert "already exists; nothing changed" in again
    assert get_user_model().objects.get(username="admin").email == "admin@example.com"


def test_machine_client_is_created_once_and_rotates():
    created = json.loads(run("machine_client_create", "--json"))
    assert created["clientSecret"]
    application = OAuthApplication.objects.get(client_id=created["clientId"])
    assert application.scope_list == ["tenant/tenant_write", "events/events_write", "usage/usage_write"]
    assert application.system_role == OAuthApplication.SystemRole.MACHINE

    again = json.loads(run("machine_client_create", "--json"))
    assert again == {"clientId": created["clientId"], "clientSecret": None}
    assert "Use --rotate" in run("machine_client_create")

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=_basic(created["clientId"], created["clientSecret"]))
    old_token = client.post("/o/token/", {"grant_type": "client_credentials"}).json()["access_token"]
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {old_token}")
    assert bearer.get("/api/v1/users").status_code == 403, "a valid token, without the user scopes"

    rotated = json.loads(run("machine_client_create", "--rotate", "--json"))
    assert rotated["clientId"] == created["clientId"]
    assert rotated["clientSecret"] not in (None, created["clientSecret"])
    assert client.post("/o/token/", {"grant_type": "client_credentials"}).status_code == 401
    assert bearer.get("/api/v1/users").status_code == 401, "tokens of the old secret are revoked"
    assert OAuthApplication.objects.filter(system_role="machine").count() == 1


def test_user_client_needs_a_valid_redirect_uri():
    with pytest.raises(CommandError, match="at least one redirect URI"):
        run("user_client_create")
    with pytest.raises(CommandError):
        run("user_client_create", "--redirect-uri", "not a url")
    reserved = OAuthApplication.objects.get(system_role="user")
    assert reserved.redirect_uris == "", "a refused command leaves the reserved client as it was"
    out = run("user_client_create", "--redirect-uri", "http://127.0.0.1:5173/callback")
    application = OAuthApplication.objects.get(system_role="user")
    assert application.client_id in out and application.client_id == reserved.client_id
    assert application.client_type == OAuthApplication.CLIENT_PUBLIC
    assert application.authorization_grant_type == OAuthApplication.GRANT_AUTHORIZATION_CODE
    run("user_client_create", "--redirect-uri", "https://app.example.com/cb")
    application.refresh_from_db()
    assert application.redirect_uris == "https://app.example.com/cb"


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_daily_task_deletes_expired_tokens_only(make_oauth_client):
    from django_celery_beat.models import PeriodicTask
    from oauth2_provider.models import get_access_token_model

    from accounts.tasks import clear_expired_tokens
    from accounts.tokens import access_token_issue
    from sbt_site.schedules import seed_periodic_tasks

    application, _ = make_oauth_client(scopes="user/user_read")
    access_token_issue(application=application, scope="user/user_read", lifetime=-10)
    live, _ = access_token_issue(application=application, scope="user/user_read")
    clear_expired_tokens.delay()
    assert list(get_access_token_model().objects.values_list("pk", flat=True)) == [live.pk]

    seed_periodic_tasks()
    assert PeriodicTask.objects.get(task="accounts.clear_expired_tokens").interval.every == 24 * 3600
