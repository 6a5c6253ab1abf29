"""The operators' admin: lists, read-only views and actions that call the services."""

import pytest
from django.contrib.admin.models import LogEntry

from events.models import Event
from tenants.models import Tenant, TenantRegistration

pytestmark = pytest.mark.django_db


def test_tenant_list_shows_columns_badge_and_searches(admin_client, onboard):
    onboard("acme", tier="premium")
    onboard("globex")
    page = admin_client.get("/admin/tenants/tenant/").content.decode()
    assert "acme" in page and "globex" in page and "premium" in page
    assert "In progress" in page and "background:#2563eb" in page
    found = admin_client.get("/admin/tenants/tenant/", {"q": "acme"}).content.decode()
    assert "acme" in found and "globex" not in found
    filtered = admin_client.get("/admin/tenants/tenant/", {"registration__status__exact": "created"}).content.decode()
    assert "acme" not in filtered


def test_change_pages_show_data_and_config_read_only(admin_client, onboard):
    registration = onboard("acme", registration_data={"source": "signup"}, region="eu-west-1")
    Tenant.objects.filter(pk=registration.tenant_id).update(config={"userPoolId": "pool-1"})
    page = admin_client.get(f"/admin/tenants/tenant/{registration.tenant_id}/change/").content.decode()
    assert "&quot;region&quot;: &quot;eu-west-1&quot;" in page
    assert "&quot;userPoolId&quot;: &quot;pool-1&quot;" in page
    assert 'name="name"' not in page, "columns are read-only"
    page = admin_client.get(f"/admin/tenants/tenantregistration/{registration.pk}/change/").content.decode()
    assert "&quot;source&quot;: &quot;signup&quot;" in page
    assert admin_client.get("/admin/tenants/tenantregistration/").status_code == 200


def test_offboard_action_calls_the_service_and_records_history(admin_client, admin_user, onboard):
    registration = onboard("acme")
    response = admin_client.post(
        "/admin/tenants/tenant/", {"action": "offboard", "_selected_action": [str(registration.tenant_id)]}
    )
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.status == "deleting" and not registration.active and not registration.tenant.active
    assert Event.objects.filter(detail_type="offboardingRequest").count() == 1
    entry = LogEntry.objects.get()
    assert entry.user == admin_user and entry.object_id == str(registration.tenant_id)
    assert "Offboarded" in entry.get_change_message()


def test_offboarding_twice_in_the_admin_shows_the_error(admin_client, onboard):
    registration = onboard("acme")
    selection = {"action": "offboard", "_selected_action": [str(registration.pk)]}
    admin_client.post("/admin/tenants/tenantregistration/", selection)
    response = admin_client.post("/admin/tenants/tenantregistration/", selection, follow=True)
    assert "is already offboarded" in response.content.decode()
    assert Event.objects.filter(detail_type="offboardingRequest").count() == 1
    assert LogEntry.objects.count() == 1


def test_an_action_error_names_the_tenant_as_spelled(admin_client, onboard):
    registration = onboard("globex")
    selection = {"action": "deactivate", "_selected_action": [str(registration.tenant_id)]}
    admin_client.post("/admin/tenants/tenant/", selection)
    page = admin_client.post("/admin/tenants/tenant/", selection, follow=True).content.decode()
    assert "Skipped globex: " in page and "is already deactivated" in page
    assert "Globex" not in page, "the admin's capfirst must not misspell the tenant's name"


def test_deactivate_and_activate_actions(admin_client, admin_user, onboard):
    registration = onboard("acme")
    admin_client.post(
        "/admin/tenants/tenantregistration/", {"action": "deactivate", "_selected_action": [str(registration.pk)]}
    )
    registration.refresh_from_db()
    assert not registration.active and not registration.tenant.active
    admin_client.post(
        "/admin/tenants/tenant/", {"action": "activate", "_selected_action": [str(registration.tenant_id)]}
    )
    registration.refresh_from_db()
    assert registration.active and registration.tenant.active
    assert list(LogEntry.objects.order_by("pk").values_list("user", flat=True)) == [admin_user.pk, admin_user.pk]
    assert {event.detail_type for event in Event.objects.all()} >= {"deactivateRequest", "activateRequest"}


def test_a_tenant_without_registration_cannot_be_offboarded_from_the_admin(admin_client):
    tenant = Tenant.objects.create(name="direct")
    response = admin_client.post(
        "/admin/tenants/tenant/", {"action": "offboard", "_selected_action": [str(tenant.pk)]}, follow=True
    )
    assert "has no registration" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.active and not TenantRegistration.objects.exists()


def test_registration_status_filters_say_what_the_badge_says(admin_client, onboard):
    """The filter used Django's title-cased label "In Progress" next to the badge's "In progress"."""
    onboard("acme")
    for changelist, parameter in (
        ("/admin/tenants/tenant/", "registration__status__exact"),
        ("/admin/tenants/tenantregistration/", "status__exact"),
    ):
        page = admin_client.get(changelist).content.decode()
        assert "In Progress" not in page
        assert f"?{parameter}=In+progress" in page
        filtered = admin_client.get(changelist, {parameter: "In progress"}).content.decode()
        assert "acme" in filtered
        assert "acme" not in admin_client.get(changelist, {parameter: "created"}).content.decode()
