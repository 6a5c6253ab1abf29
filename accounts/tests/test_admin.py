"""The operator's side: users with enable/disable actions, OAuth clients, read-only tokens."""

import pytest
from django.contrib.auth import get_user_model
from oauth2_provider.models import get_access_token_model

from accounts.tokens import access_token_issue

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_disable_and_enable_actions_go_through_the_service(admin_client, make_oauth_client):
    carol = User.objects.create_user(username="carol", password="x" * 16, role="TenantAdmin")
    application, _ = make_oauth_client(scopes="user/user_read")
    access_token_issue(application=application, scope="user/user_read", user=carol)

    response = admin_client.post(
        "/admin/accounts/user/", {"post": "yes", "action": "disable_users", "_selected_action": [carol.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "Disabled 1 user(s)." in response.content.decode()
    carol.refresh_from_db()
    assert carol.is_active is False
    assert not get_access_token_model().objects.filter(user=carol).exists(), "its tokens were revoked"

    admin_client.post("/admin/accounts/user/", {"action": "enable_users", "_selected_action": [carol.pk]})
    carol.refresh_from_db()
    assert carol.is_active is True


def _change_form_data(admin_client, user) -> dict:
    """The user's change form as the browser would post it back unchanged."""
    form = admin_client.get(f"/admin/accounts/user/{user.pk}/change/").context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or name == "password":
            continue
        if name in ("date_joined", "last_login"):
            data[f"{name}_0"], data[f"{name}_1"] = value.strftime("%Y-%m-%d"), value.strftime("%H:%M:%S")
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = value
    return data


@pytest.mark.parametrize(
    ("field", "value"),
    [("role", "TenantUser"), ("is_active", False), ("tenant", "other")],
)
def test_changing_role_tenant_or_active_in_the_form_revokes_the_users_tokens(
    admin_client, make_oauth_client, field, value
):
    from tenants.tests.factories import TenantFactory

    acme, other = TenantFactory(name="acme"), TenantFactory(name="other")
    carol = User.objects.create_user(username="carol", email="c@example.com", role="TenantAdmin", tenant=acme)
    application, _ = make_oauth_client(scopes="user/user_read")
    access_token_issue(application=application, scope="user/user_read", user=carol)
    data = _change_form_data(admin_client, carol)
    if field == "is_active":
        data.pop("is_active")
    else:
        data[field] = str(other.pk) if field == "tenant" else value
    response = admin_client.post(f"/admin/accounts/user/{carol.pk}/change/", data, follow=True)
    assert response.status_code == 200, response.content.decode()[:2000]
    carol.refresh_from_db()
    changed = {"role": carol.role, "is_active": carol.is_active, "tenant": carol.tenant and carol.tenant.name}
    assert changed[field] == value, response.context["adminform"].form.errors
    assert not get_access_token_model().objects.filter(user=carol).exists(), "a change here revokes like the API"
    assert "tokens were revoked" in response.content.decode()


def test_changing_only_the_email_in_the_form_keeps_the_users_tokens(admin_client, make_oauth_client):
    carol = User.objects.create_user(username="carol", email="c@example.com", role="TenantAdmin")
    application, _ = make_oauth_client(scopes="user/user_read")
    access_token_issue(application=application, scope="user/user_read", user=carol)
    data = _change_form_data(admin_client, carol)
    data["email"] = "new@example.com"
    response = admin_client.post(f"/admin/accounts/user/{carol.pk}/change/", data, follow=True)
    assert response.status_code == 200
    carol.refresh_from_db()
    assert carol.email == "new@example.com"
    assert get_access_token_model().objects.filter(user=carol).exists()


def test_user_list_filters_by_role(admin_client):
    User.objects.create_user(username="operator-one", role="SystemAdmin")
    User.objects.create_user(username="tenant-one", role="TenantUser")
    page = admin_client.get("/admin/accounts/user/", {"role": "TenantUser"}).content.decode()
    assert "tenant-one" in page and "operator-one" not in page


def test_oauth_clients_show_scopes_and_tenant(admin_client, make_oauth_client):
    application, _ = make_oauth_client(scopes="usage/usage_write", name="usage pusher")
    page = admin_client.get("/admin/accounts/oauthapplication/").content.decode()
    assert "usage pusher" in page and "usage/usage_write" in page
    change = admin_client.get(f"/admin/accounts/oauthapplication/{application.pk}/change/").content.decode()
    assert 'name="allowed_scopes"' in change and 'name="tenant"' in change


def _client_form_data(admin_client, application) -> dict:
    form = admin_client.get(f"/admin/accounts/oauthapplication/{application.pk}/change/").context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    return data


@pytest.mark.parametrize("change", ["allowed_scopes", "tenant"])
def test_narrowing_a_clients_scopes_or_moving_its_tenant_revokes_its_tokens(admin_client, make_oauth_client, change):
    from tenants.tests.factories import TenantFactory

    acme = TenantFactory(name="acme")
    application, _ = make_oauth_client(scopes="user/user_read user/user_write")
    access_token_issue(application=application, scope="user/user_read user/user_write")
    data = _client_form_data(admin_client, application)
    if change == "allowed_scopes":
        data["allowed_scopes"] = "user/user_read"
    else:
        data["tenant"] = str(acme.pk)
    response = admin_client.post(f"/admin/accounts/oauthapplication/{application.pk}/change/", data, follow=True)
    assert response.status_code == 200
    application.refresh_from_db()
    assert (application.allowed_scopes, application.tenant_id) != ("user/user_read user/user_write", None), (
        response.context["adminform"].form.errors if "adminform" in response.context else ""
    )
    assert not get_access_token_model().objects.filter(application=application).exists()
    assert "were revoked" in response.content.decode()


def test_renaming_a_client_keeps_its_tokens(admin_client, make_oauth_client):
    application, _ = make_oauth_client(scopes="user/user_read")
    access_token_issue(application=application, scope="user/user_read")
    data = _client_form_data(admin_client, application)
    data["name"] = "renamed"
    response = admin_client.post(f"/admin/accounts/oauthapplication/{application.pk}/change/", data, follow=True)
    assert response.status_code == 200
    application.refresh_from_db()
    assert application.name == "renamed"
    assert get_access_token_model().objects.filter(application=application).exists()


def test_tokens_are_read_only_in_the_admin(admin_client, make_oauth_client):
    application, _ = make_oauth_client(scopes="user/user_read")
    token, raw = access_token_issue(application=application, scope="user/user_read")
    assert admin_client.get("/admin/oauth2_provider/accesstoken/").status_code == 200
    view = admin_client.get(f"/admin/oauth2_provider/accesstoken/{token.pk}/change/")
    assert view.status_code == 200
    page = view.content.decode()
    assert 'name="scope"' not in page, "no editable field"
    assert raw not in page
    response = admin_client.post(f"/admin/oauth2_provider/accesstoken/{token.pk}/change/", {"scope": "x"})
    assert response.status_code == 403
    assert admin_client.get("/admin/oauth2_provider/accesstoken/add/").status_code == 403


def test_the_oauth_toolkit_section_is_called_oauth_tokens(admin_client):
    # The console groups tokens under "Access"; the toolkit's own app page keeps our name.
    index = admin_client.get("/admin/").content.decode()
    assert "Access tokens" in index
    assert "Django OAuth Toolkit" not in index
    app_page = admin_client.get("/admin/oauth2_provider/").content.decode()
    assert "OAuth tokens" in app_page
    assert "Django OAuth Toolkit" not in app_page


def test_adding_a_user_calls_the_user_service_and_shows_its_refusal(admin_client):
    from events.models import Event
    from tenants.tests.factories import TenantFactory

    acme = TenantFactory(name="acme")
    unbound = admin_client.post("/admin/accounts/user/add/", {"username": "dave", "role": "TenantUser"})
    assert "The role TenantUser is a tenant role: tenantId is required" in unbound.content.decode()
    assert not User.objects.filter(username="dave").exists()
    admin_client.post(
        "/admin/accounts/user/add/",
        {"username": "dave", "email": "d@acme.test", "role": "TenantUser", "tenant": acme.pk},
    )
    dave = User.objects.get(username="dave")
    assert dave.tenant == acme and not dave.has_usable_password(), "as POST /users makes it"
    assert Event.objects.filter(detail_type="tenantUserCreated").count() == 1


def test_adding_an_oauth_client_calls_the_client_service_and_shows_the_secret_once(admin_client):
    from accounts.models import OAuthApplication

    response = admin_client.post(
        "/admin/accounts/oauthapplication/add/", {"name": "billing-sync", "scopes": ["usage/usage_read"]}, follow=True
    )
    client = OAuthApplication.objects.get(name="billing-sync")
    assert client.allowed_scopes == "usage/usage_read" and client.authorization_grant_type == "client-credentials"
    page = response.content.decode()
    assert "shown only now, stored hashed" in page
    assert client.client_secret not in page, "only the clear secret is shown; the row keeps its hash"
