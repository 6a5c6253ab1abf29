"""The bodies an application plane sends, as SBT's send them: JSON strings in structured columns,
ScriptJob's ``tenantStatus`` failure report, and what is still refused (tenants/wire.py)."""

import pytest

from events.models import Event
from tenants.models import TenantRegistration

pytestmark = pytest.mark.django_db

BASE = "/api/v1/tenant-registrations"
PRICES = [{"id": "price_1", "metricName": "api_calls"}]


def test_json_strings_are_accepted_for_the_structured_columns_on_every_route(api, onboard):
    client = api()
    created = client.post(
        BASE,
        {"tenantData": {"tenantName": "acme", "prices": '[{"id": "price_1", "metricName": "api_calls"}]'}},
        format="json",
    )
    assert created.status_code == 201, created.content
    tenant_id = created.json()["data"]["tenantId"]
    tenant = client.get(f"/api/v1/tenants/{tenant_id}").json()["data"]
    assert tenant["prices"] == PRICES
    onboarding = Event.objects.get(detail_type="onboardingRequest").detail
    assert onboarding["prices"] == '[{"id": "price_1", "metricName": "api_calls"}]', "the request's own keys go out"

    updated = client.put(f"/api/v1/tenants/{tenant_id}", {"tenantConfig": '{"theme": "dark"}'}, format="json")
    assert updated.status_code == 200 and updated.json()["data"]["tenantConfig"] == {"theme": "dark"}
    assert client.get("/api/v1/tenant-config/acme").json() == {"theme": "dark"}


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("prices", '[{"id": "price_1"', "json_invalid"),  # cut short
        ("prices", "price_1", "json_invalid"),
        ("prices", '{"id": "price_1", "metricName": "api_calls"}', "type_error"),  # an object, not a list
        ("prices", '[{"id": "price_1"}]', "missing"),
        ("prices", "[NaN]", "json_invalid"),
        ("prices", '[{"id": "a\\u0000b", "metricName": "m"}]', "invalid_text"),
        ("tenantConfig", "not json", "json_invalid"),
        ("tenantConfig", "[1, 2]", "type_error"),
        ("tenantConfig", 42, "type_error"),
        ("tenantConfig", '{"size": 1e999}', "invalid_number"),
    ],
)
def test_a_string_that_does_not_hold_the_right_shape_is_a_422(api, onboard, key, value, kind):
    registration = onboard()
    client = api()
    response = client.patch(f"{BASE}/{registration.pk}", {"tenantData": {key: value}}, format="json")
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["statusCode"] == 422 and body["code"]
    assert body["detail"][0]["loc"][:3] == ["body", "tenantData", key]
    assert body["detail"][0]["type"] == kind
    registration.refresh_from_db()
    assert registration.tenant.prices == [] and registration.tenant.config is None


def test_a_blank_string_is_a_variable_the_script_never_set(api, onboard):
    """CodeBuild exports an unset variable as an empty string: no prices, no config yet."""
    registration = onboard(prices=PRICES, tenantConfig={"theme": "dark"})
    response = api().patch(
        f"{BASE}/{registration.pk}", {"tenantData": {"prices": "", "tenantConfig": " "}}, format="json"
    )
    assert response.status_code == 200, response.content
    registration.refresh_from_db()
    assert registration.tenant.prices == [] and registration.tenant.config is None


def test_tenant_status_fails_the_registration_with_its_reason(api, onboard):
    registration = onboard()
    response = api().patch(f"{BASE}/{registration.pk}", {"tenantStatus": "Failed to provision tenant."}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]["tenantRegistration"]
    assert (data["registrationStatus"], data["registrationStatusReason"]) == ("failed", "Failed to provision tenant.")
    assert "tenantStatus" not in data, "it is a report, not a key of the registration"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"tenantStatus": ""}, "type_error"),
        ({"tenantStatus": {"reason": "x"}}, "type_error"),
        (
            {
                "tenantStatus": "Failed to provision tenant.",
                "tenantRegistrationData": {"registrationStatus": "created"},
            },
            "conflict",
        ),
    ],
)
def test_tenant_status_that_is_not_a_failure_report_is_a_422(api, onboard, body, kind):
    registration = onboard()
    response = api().patch(f"{BASE}/{registration.pk}", body, format="json")
    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["loc"] == ["body", "tenantStatus"]
    assert response.json()["detail"][0]["type"] == kind
    registration.refresh_from_db()
    assert registration.status == TenantRegistration.Status.IN_PROGRESS


def test_a_repeated_created_patch_writes_nothing_and_emits_nothing(api, onboard):
    registration = onboard()
    client = api()
    body = {"tenantRegistrationData": {"registrationStatus": "created"}, "tenantData": {"tier": "premium"}}
    first = client.patch(f"{BASE}/{registration.pk}", body, format="json")
    assert first.status_code == 200
    events = Event.objects.count()
    for _ in range(2):
        again = client.patch(f"{BASE}/{registration.pk}", body, format="json")
        assert again.status_code == 200
        assert again.json() == first.json(), "the current state, timestamps included: nothing was written"
    assert Event.objects.count() == events
