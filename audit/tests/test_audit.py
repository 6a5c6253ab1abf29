"""The audit log: every change of the control plane's state, with who made it (an operator in
the console, a user or an OAuth client over the API, a command), before/after, and when;
append-only in the console."""

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command

from tenants.tests.factories import tenant_registration_onboard

pytestmark = pytest.mark.django_db


def _entries(tenant):
    return list(LogEntry.objects.get_for_object(tenant).order_by("pk"))


def test_an_api_change_by_a_client_names_the_client(api, make_oauth_client):
    tenant = tenant_registration_onboard("acme").tenant
    client = api(scopes="tenant/tenant_write")
    assert client.put(f"/api/v1/tenants/{tenant.pk}", {"tier": "gold"}, format="json").status_code == 200
    entry = _entries(tenant)[-1]
    assert entry.actor is None
    assert entry.additional_data["via"] == "api"
    assert entry.additional_data["actor"].startswith("client test client (")
    assert entry.changes_dict["tier"] == ["basic", "gold"]


def test_an_api_change_by_a_user_token_names_the_user_and_its_client(make_oauth_client, admin_user):
    from rest_framework.test import APIClient

    from accounts.tokens import access_token_issue

    tenant = tenant_registration_onboard("acme").tenant
    application, _ = make_oauth_client(scopes="tenant/tenant_write", name="portal")
    _, raw = access_token_issue(application=application, scope="tenant/tenant_write", user=admin_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.put(f"/api/v1/tenants/{tenant.pk}", {"tier": "gold"}, format="json").status_code == 200
    entry = _entries(tenant)[-1]
    assert entry.actor == admin_user
    assert entry.additional_data["actor"] == f"user admin via client portal ({application.client_id})"


def test_a_command_names_itself(capsys):
    tenant = tenant_registration_onboard("acme").tenant
    call_command("tenant_offboard", str(tenant.pk))
    entry = _entries(tenant)[-1]
    assert entry.additional_data["via"] == "command"
    assert entry.additional_data["actor"].startswith("command tenant_offboard (run by ")
    assert entry.changes_dict["active"] == ["True", "False"]


def test_work_outside_a_request_or_command_is_the_systems():
    tenant = tenant_registration_onboard("acme").tenant
    [created] = _entries(tenant)
    assert created.action == LogEntry.Action.CREATE
    assert created.additional_data == {"actor": "system", "via": "system"}


def test_the_console_lists_and_filters_the_log_but_never_edits_or_deletes_it(admin_client):
    tenant = tenant_registration_onboard("acme").tenant
    entry = _entries(tenant)[0]
    changelist = admin_client.get("/admin/auditlog/logentry/", {"via": "system"})
    assert changelist.status_code == 200 and "acme" in changelist.content.decode()
    assert "delete_selected" not in changelist.content.decode()
    assert admin_client.get("/admin/auditlog/logentry/", {"via": "api"}).context["cl"].result_count == 0
    assert admin_client.post(f"/admin/auditlog/logentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert LogEntry.objects.filter(pk=entry.pk).exists()
