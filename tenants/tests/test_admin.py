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
        "/admin/tenants/tenant/",
        {"post": "yes", "action": "offboard", "_selected_action": [str(registration.tenant_id)]},
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
    selection = {"post": "yes", "action": "offboard", "_selected_action": [str(registration.pk)]}
    admin_client.post("/admin/tenants/tenantregistration/", selection)
    response = admin_client.post("/admin/tenants/tenantregistration/", selection, follow=True)
    assert "is already offboarded" in response.content.decode()
    assert Event.objects.filter(detail_type="offboardingRequest").count() == 1
    assert LogEntry.objects.count() == 1


def test_an_action_error_names_the_tenant_as_spelled(admin_client, onboard):
    registration = onboard("globex")
    selection = {"post": "yes", "action": "deactivate", "_selected_action": [str(registration.tenant_id)]}
    admin_client.post("/admin/tenants/tenant/", selection)
    page = admin_client.post("/admin/tenants/tenant/", selection, follow=True).content.decode()
    assert "Skipped globex: " in page and "is already deactivated" in page
    assert "Globex" not in page, "the admin's capfirst must not misspell the tenant's name"


def test_deactivate_and_activate_actions(admin_client, admin_user, onboard):
    registration = onboard("acme")
    admin_client.post(
        "/admin/tenants/tenantregistration/",
        {"post": "yes", "action": "deactivate", "_selected_action": [str(registration.pk)]},
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
        "/admin/tenants/tenant/",
        {"post": "yes", "action": "offboard", "_selected_action": [str(tenant.pk)]},
        follow=True,
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


@pytest.mark.parametrize("action", ["offboard", "deactivate"])
def test_destructive_actions_ask_first_and_say_what_will_happen(admin_client, onboard, action):
    registration = onboard("acme")
    selection = {"action": action, "_selected_action": [str(registration.tenant_id)]}
    page = admin_client.post("/admin/tenants/tenant/", selection)
    assert page.status_code == 200
    html = page.content.decode()
    assert "What will happen" in html and "token of its users and OAuth clients is revoked" in html
    assert {"offboard": "offboardingRequest is sent", "deactivate": "deactivateRequest is sent"}[action] in html
    registration.refresh_from_db()
    assert registration.active and registration.offboarded is None, "nothing happens before the confirmation"
    assert not Event.objects.filter(detail_type__in=["offboardingRequest", "deactivateRequest"]).exists()


def test_onboarding_from_the_console_calls_the_registration_service(admin_client, events_of):
    form_page = admin_client.get("/admin/tenants/tenant/add/")
    assert form_page.status_code == 200 and 'id="id_tenant_name"' in form_page.content.decode()
    form = {"tenant_name": "initech", "email": "ops@initech.test", "tier": "gold",
            "prices": '[{"id": "price_1", "metricName": "api_calls"}]', "tenant_data": '{"region": "eu"}',
            "registration_data": "{}"}  # fmt: skip
    response = admin_client.post("/admin/tenants/tenant/add/", form, follow=True)
    assert "Tenant initech onboarded" in response.content.decode()
    tenant = Tenant.objects.get(name="initech")
    assert tenant.prices == [{"id": "price_1", "metricName": "api_calls"}] and tenant.data == {"region": "eu"}
    assert tenant.registration.status == "In progress"
    [detail] = events_of("onboardingRequest")
    assert detail["tenantName"] == "initech" and detail["tenantId"] == str(tenant.pk)


def test_onboarding_refusals_are_the_services_and_show_on_the_form(admin_client, onboard):
    onboard("initech")
    taken = admin_client.post("/admin/tenants/tenant/add/", {"tenant_name": "initech", "prices": "[]"})
    assert taken.status_code == 200
    assert "A tenant named initech already exists" in taken.content.decode()
    bad_prices = admin_client.post("/admin/tenants/tenant/add/", {"tenant_name": "hooli", "prices": '[{"id": 1}]'})
    errors = bad_prices.context["adminform"].form.errors
    assert errors["prices"] == ["id must be a non-empty string"]
    assert not Tenant.objects.filter(name="hooli").exists()


def test_a_provisioning_result_recorded_by_hand_follows_the_status_flow(admin_client, onboard):
    registration = onboard("acme")
    url = f"/admin/tenants/tenant/{registration.tenant_id}/provisioning/"
    missing_reason = admin_client.post(url, {"outcome": "failed"})
    assert "Say why provisioning failed" in missing_reason.content.decode()
    admin_client.post(url, {"outcome": "failed", "reason": "quota exceeded in eu-west-1"})
    registration.refresh_from_db()
    assert (registration.status, registration.status_reason) == ("failed", "quota exceeded in eu-west-1")
    response = admin_client.post(
        url, {"outcome": "created", "tenant_config": '{"url": "https://acme.test"}'}, follow=True
    )
    assert "is now &#x27;created&#x27;" in response.content.decode()
    registration.refresh_from_db()
    assert registration.status == "created" and registration.tenant.config == {"url": "https://acme.test"}
    refused = admin_client.post(url, {"outcome": "failed", "reason": "late report"})
    assert "does not apply" in refused.content.decode(), "created is final: the service's refusal is shown"


def test_lifecycle_buttons_confirm_then_call_the_service_with_the_reason_in_the_audit_log(admin_client, onboard):
    from auditlog.models import LogEntry as AuditEntry

    registration = onboard("acme")
    url = f"/admin/tenants/tenant/{registration.tenant_id}/lifecycle/deactivate/"
    page = admin_client.get(f"/admin/tenants/tenant/{registration.tenant_id}/change/").content.decode()
    assert url in page and "Record provisioning result" in page
    confirmation = admin_client.get(url).content.decode()
    assert "Deactivate tenant acme?" in confirmation and "deactivateRequest is sent" in confirmation
    response = admin_client.post(url, {"post": "yes", "reason": "unpaid invoice"}, follow=True)
    assert "Deactivated tenant acme." in response.content.decode()
    registration.refresh_from_db()
    assert not registration.tenant.active
    entry = AuditEntry.objects.get_for_object(registration.tenant).first()
    assert entry.additional_data == {"actor": "operator admin", "via": "admin", "reason": "unpaid invoice"}
    assert entry.changes_dict["active"] == ["True", "False"]
    again = admin_client.post(url, {"post": "yes"}, follow=True).content.decode()
    assert "Not done: " in again and "already deactivated" in again
