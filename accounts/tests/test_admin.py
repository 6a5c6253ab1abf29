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
        "/admin/accounts/user/", {"action": "disable_users", "_selected_action": [carol.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "Disabled 1 user(s)." in response.content.decode()
    carol.refresh_from_db()
    assert carol.is_active is False
    assert not get_access_token_model().objects.filter(user=carol).exists(), "its tokens were revoked"

    admin_client.post("/admin/accounts/user/", {"action": "enable_users", "_selected_action": [carol.pk]})
    carol.refresh_from_db()
    assert carol.is_active is True


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
