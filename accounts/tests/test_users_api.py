"""The /users routes of CONTRACT.md "Users", every route and message."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from rest_framework.test import APIClient

from accounts.models import OAuthApplication
from accounts.tokens import access_token_issue
from events.models import Event
from sbt_site.conf import sbt_settings
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def create(client, **body):
    """POST /users; a tenant role (TenantAdmin) when given a tenantId, else a control-plane one."""
    role = "TenantAdmin" if body.get("tenantId") else "SystemAdmin"
    payload = {"userName": "alice", "email": "alice@example.com", "userRole": role, **body}
    return client.post("/api/v1/users", payload, format="json")


def test_create_then_fetch_a_control_plane_user(api):
    client = api()
    response = create(client)
    assert response.status_code == 201
    assert response.json() == {"data": {"userName": "alice"}}

    body = client.get("/api/v1/users/alice").json()["data"]
    assert {key: body[key] for key in ("userName", "email", "userRole", "status", "enabled", "tenantId")} == {
        "userName": "alice",
        "email": "alice@example.com",
        "userRole": "SystemAdmin",
        "status": "FORCE_CHANGE_PASSWORD",
        "enabled": True,
        "tenantId": None,
    }
    assert body["created"].endswith("+00:00") and body["modified"].endswith("+00:00")
    assert not Event.objects.filter(detail_type="tenantUserCreated").exists()


def test_a_tenant_user_is_announced_on_create_and_delete(api, django_capture_on_commit_callbacks):
    tenant = TenantFactory(name="acme")
    client = api()
    with django_capture_on_commit_callbacks(execute=True):
        assert create(client, tenantId=str(tenant.pk)).status_code == 201
    created = Event.objects.get(detail_type="tenantUserCreated")
    assert created.detail == {
        "tenantId": str(tenant.pk),
        "userName": "alice",
        "email": "alice@example.com",
        "userRole": "TenantAdmin",
    }
    assert client.get("/api/v1/users/alice").json()["data"]["tenantId"] == str(tenant.pk)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete("/api/v1/users/alice")
    assert response.status_code == 200
    assert response.json() == {"message": "User deleted"}
    assert Event.objects.get(detail_type="tenantUserDeleted").detail["userName"] == "alice"
    assert not User.objects.filter(username="alice").exists()


def test_duplicate_user_name_is_409_and_changes_nothing(api):
    client = api()
    create(client)
    response = create(client, email="other@example.com")
    assert response.status_code == 409
    assert response.json() == {"statusCode": 409, "message": "User alice already exists.", "code": "user_exists"}
    assert User.objects.get(username="alice").email == "alice@example.com"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"userName": "", "email": "a@example.com", "userRole": "r"}, "userName"),
        ({"userName": "bad name!", "email": "a@example.com", "userRole": "r"}, "userName"),
        ({"userName": "bob", "email": "not-an-email", "userRole": "r"}, "email"),
        ({"userName": "bob", "email": "a@example.com"}, "userRole"),
        ({"userName": "bob", "email": "a@example.com", "userRole": "r", "tenantId": "nope"}, "tenantId"),
        ({"email": "a@example.com", "userRole": "r"}, "userName"),
        # Strings only: DRF would have stored 5 as the role "5" and 123 as the name "123".
        ({"userName": "bob", "email": "a@example.com", "userRole": 5}, "userRole"),
        ({"userName": "bob", "email": "a@example.com", "userRole": ["SystemAdmin"]}, "userRole"),
        ({"userName": 123, "email": "a@example.com", "userRole": "r"}, "userName"),
    ],
)
def test_invalid_create_bodies_are_422(api, body, field):
    response = api().post("/api/v1/users", body, format="json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert not User.objects.filter(username="bob").exists()


def test_a_body_that_is_not_an_object_is_422(api):
    assert api().post("/api/v1/users", ["alice"], format="json").status_code == 422


def test_unknown_tenant_is_404(api):
    missing = uuid.uuid4()
    response = create(api(), tenantId=str(missing))
    assert response.status_code == 404
    assert response.json()["message"] == f"Tenant not found for id {missing}"
    assert not User.objects.filter(username="alice").exists()


def test_unknown_user_is_404_on_every_route(api):
    client = api()
    for method, path in [
        ("get", "/api/v1/users/ghost"),
        ("put", "/api/v1/users/ghost"),
        ("delete", "/api/v1/users/ghost"),
        ("put", "/api/v1/users/ghost/enable"),
        ("put", "/api/v1/users/ghost/disable"),
        ("delete", "/api/v1/users/ghost/disable"),
    ]:
        response = getattr(client, method)(path, {"email": "x@example.com"}, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json() == {"statusCode": 404, "message": "User ghost not found.", "code": "not_found"}


def test_update_changes_role_and_email(api):
    client = api()
    create(client, userRole="Auditor")
    response = client.put("/api/v1/users/alice", {"userRole": "SystemAdmin"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"message": "User updated"}
    response = client.put("/api/v1/users/alice", {"email": "new@example.com"}, format="json")
    assert response.status_code == 200
    user = User.objects.get(username="alice")
    assert (user.role, user.email) == ("SystemAdmin", "new@example.com")
    empty = client.put("/api/v1/users/alice", {}, format="json")
    assert empty.status_code == 422
    assert client.put("/api/v1/users/alice", {"email": "nope"}, format="json").status_code == 422
    assert client.put("/api/v1/users/alice", {"userRole": 7}, format="json").status_code == 422
    assert User.objects.get(username="alice").email == "new@example.com"


@pytest.mark.parametrize("method", ["delete", "put"])
def test_disable_blocks_the_user_and_revokes_its_tokens_enable_restores_login(api, make_oauth_client, method):
    client = api()
    create(client)
    user = User.objects.get(username="alice")
    application, _ = make_oauth_client(scopes="user/user_read")
    _, user_token = access_token_issue(application=application, scope="user/user_read", user=user)
    refresh = get_refresh_token_model().objects.create(
        user=user, application=application, token="r" * 40, access_token=get_access_token_model().objects.get(user=user)
    )
    user_client = APIClient()
    user_client.credentials(HTTP_AUTHORIZATION=f"Bearer {user_token}")
    assert user_client.get("/api/v1/users").status_code == 200

    response = getattr(client, method)("/api/v1/users/alice/disable")
    assert response.status_code == 200
    assert response.json() == {"message": "User disabled"}
    assert client.get("/api/v1/users/alice").json()["data"]["enabled"] is False
    assert user_client.get("/api/v1/users").status_code == 401
    assert not get_access_token_model().objects.filter(user=user).exists()
    refresh.refresh_from_db()
    assert refresh.revoked is not None

    response = client.put("/api/v1/users/alice/enable")
    assert response.status_code == 200
    assert response.json() == {"message": "User enabled"}
    assert client.get("/api/v1/users/alice").json()["data"]["enabled"] is True
    assert user_client.get("/api/v1/users").status_code == 401, "revoked tokens stay revoked"


def test_list_pages_through_every_user_once(api):
    client = api()
    for index in range(7):
        create(client, userName=f"user{index}")
    seen, token = [], None
    while True:
        params = {"limit": 3, **({"next_token": token} if token else {})}
        body = client.get("/api/v1/users", params).json()
        seen += [user["userName"] for user in body["data"]]
        token = body.get("next_token")
        if token is None:
            break
    assert seen == [f"user{index}" for index in range(7)]


@pytest.mark.parametrize("limit", ["61", "0", "-1", "ten", "1.5"])
def test_bad_limit_is_refused(api, limit):
    response = api().get("/api/v1/users", {"limit": limit})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]


def test_limit_60_is_the_maximum_allowed(api):
    assert api().get("/api/v1/users", {"limit": 60}).status_code == 200


def test_forged_next_token_is_422(api):
    response = api().get("/api/v1/users", {"next_token": "forged"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "next_token"]


def test_a_tenant_bound_client_sees_only_its_tenants_users(api):
    acme, other = TenantFactory(name="acme"), TenantFactory(name="other")
    admin = api()
    create(admin, userName="acme-user", tenantId=str(acme.pk))
    create(admin, userName="other-user", tenantId=str(other.pk))
    create(admin, userName="operator")

    bound = api(tenant=acme)
    assert [user["userName"] for user in bound.get("/api/v1/users").json()["data"]] == ["acme-user"]
    assert bound.get("/api/v1/users/acme-user").status_code == 200
    for path in ("/api/v1/users/other-user", "/api/v1/users/operator"):
        assert bound.get(path).status_code == 404
        assert bound.delete(path).status_code == 404
        assert bound.put(path + "/disable").status_code == 404
    assert User.objects.get(username="other-user").is_active

    # It creates users in its own tenant only, whatever the body says.
    assert create(bound, userName="made-by-acme", userRole="TenantAdmin").status_code == 201
    assert User.objects.get(username="made-by-acme").tenant == acme
    assert create(bound, userName="sneaky", tenantId=str(other.pk)).status_code == 404
    assert not User.objects.filter(username="sneaky").exists()


def test_a_tenant_users_token_is_bound_to_its_tenant(api, make_oauth_client):
    acme, other = TenantFactory(name="acme"), TenantFactory(name="other")
    admin = api()
    create(admin, userName="acme-user", tenantId=str(acme.pk))
    create(admin, userName="other-user", tenantId=str(other.pk))
    application, _ = make_oauth_client(scopes="user/user_read")
    user = User.objects.get(username="acme-user")
    _, raw = access_token_issue(application=application, scope="user/user_read", user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert [entry["userName"] for entry in client.get("/api/v1/users").json()["data"]] == ["acme-user"]
    assert client.get("/api/v1/users/other-user").status_code == 404


def test_user_names_with_dots_and_at_signs_route(api):
    client = api()
    assert create(client, userName="first.last@example.com").status_code == 201
    assert client.get("/api/v1/users/first.last@example.com").status_code == 200


@pytest.mark.parametrize("role", ["TenantAdmin", "TenantUser"])
def test_a_tenant_role_without_a_tenant_is_422(api, role):
    """Unbound, a tenant role's token would reach every tenant (it now gets no scopes at all)."""
    client = api()
    response = create(client, userRole=role)
    assert response.status_code == 422
    body = response.json()
    assert body["detail"][0]["loc"] == ["body", "tenantId"]
    assert "tenantId is required" in body["detail"][0]["msg"]
    assert not User.objects.filter(username="alice").exists()

    assert create(client, userRole="SystemAdmin").status_code == 201
    response = client.put("/api/v1/users/alice", {"userRole": role}, format="json")
    assert response.status_code == 422
    assert User.objects.get(username="alice").role == "SystemAdmin"


def test_a_tenant_user_can_change_between_tenant_roles(api):
    tenant = TenantFactory(name="acme")
    client = api()
    assert create(client, tenantId=str(tenant.pk)).status_code == 201
    response = client.put("/api/v1/users/alice", {"userRole": "TenantUser"}, format="json")
    assert response.status_code == 200
    assert User.objects.get(username="alice").role == "TenantUser"


def test_system_clients_are_not_users(api):
    # OAuthApplication rows never show up as users, and vice versa.
    api()
    assert OAuthApplication.objects.exists()
    assert api().get("/api/v1/users").json() == {"data": []}


def _tenant_system_admin(tenant) -> None:
    """A SystemAdmin the operator tied to ``tenant`` (its token still reaches every tenant)."""
    User.objects.create(username="boss", email="boss@example.com", role="SystemAdmin", tenant=tenant)


@pytest.mark.parametrize("caller", ["tenant-bound client", "TenantAdmin user"])
def test_a_tenant_caller_manages_tenant_roles_only(api, make_oauth_client, caller):
    """Neither a tenant-bound client nor a TenantAdmin may mint a SystemAdmin, nor demote, disable,
    enable or delete the SystemAdmin of its tenant: 403, and nothing changes."""
    acme = TenantFactory(name="acme")
    _tenant_system_admin(acme)
    if caller == "tenant-bound client":
        client = api(tenant=acme)
    else:
        create(api(), userName="acme-admin", userRole="TenantAdmin", tenantId=str(acme.pk))
        scopes = " ".join(sbt_settings.ROLE_SCOPES["TenantAdmin"])
        application, _ = make_oauth_client(scopes=scopes)
        _, raw = access_token_issue(application=application, scope=scopes, user=User.objects.get(username="acme-admin"))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert create(client, userName="minted", userRole="SystemAdmin").status_code == 403
    assert not User.objects.filter(username="minted").exists()
    assert create(client, userName="plain", userRole="TenantUser").status_code == 201
    assert client.put("/api/v1/users/plain", {"userRole": "SystemAdmin"}, format="json").status_code == 403
    assert User.objects.get(username="plain").role == "TenantUser"

    for response in (
        client.put("/api/v1/users/boss", {"userRole": "TenantUser"}, format="json"),
        client.put("/api/v1/users/boss", {"email": "mine@example.com"}, format="json"),
        client.delete("/api/v1/users/boss/disable"),
        client.put("/api/v1/users/boss/enable"),
        client.delete("/api/v1/users/boss"),
    ):
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "role_not_grantable"
    boss = User.objects.get(username="boss")
    assert (boss.role, boss.email, boss.is_active) == ("SystemAdmin", "boss@example.com", True)
