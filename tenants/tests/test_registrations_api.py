"""CONTRACT.md "Tenant registrations": every route and message."""

import uuid

import pytest

from events.models import Event
from tenants.models import Tenant, TenantRegistration

pytestmark = pytest.mark.django_db

BASE = "/api/v1/tenant-registrations"


def create(client, body):
    return client.post(BASE, body, format="json")


def test_create_then_fetch_then_list(api, events_of):
    client = api()
    response = create(
        client,
        {
            "tenantData": {
                "tenantName": "acme",
                "email": "ops@acme.test",
                "tier": "premium",
                "prices": [{"id": "price_123", "metricName": "api_calls"}],
                "name": "reserved word",
                "status": "also reserved",
                "type": "and this",
            },
            "tenantRegistrationData": {"registrationSource": "signup", "type": "self-service"},
        },
    )
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["message"] == "Tenant registration initiated"
    registration_id, tenant_id = data["tenantRegistrationId"], data["tenantId"]

    fetched = client.get(f"{BASE}/{registration_id}").json()["data"]
    assert fetched["tenantRegistrationId"] == registration_id
    assert fetched["tenantId"] == tenant_id
    assert fetched["sbtaws_active"] is True
    assert fetched["registrationStatus"] == "In progress"
    assert fetched["registrationSource"] == "signup"
    assert fetched["type"] == "self-service"
    assert fetched["created"].endswith("+00:00") and fetched["modified"].endswith("+00:00")

    listed = client.get(BASE).json()
    assert [item["tenantRegistrationId"] for item in listed["data"]] == [registration_id]
    assert "next_token" not in listed

    tenant = client.get(f"/api/v1/tenants/{tenant_id}").json()["data"]
    assert tenant["tenantName"] == "acme" and tenant["tier"] == "premium"
    assert tenant["name"] == "reserved word" and tenant["status"] == "also reserved" and tenant["type"] == "and this"
    assert tenant["tenantRegistrationId"] == registration_id

    (detail,) = events_of("onboardingRequest")
    assert detail["tenantId"] == tenant_id and detail["tenantRegistrationId"] == registration_id
    assert detail["tenantName"] == "acme" and detail["email"] == "ops@acme.test" and detail["tier"] == "premium"
    assert detail["prices"] == [{"id": "price_123", "metricName": "api_calls"}]
    assert detail["registrationSource"] == "signup"
    # The price mapping is kept in a column billing reads.
    assert Tenant.objects.get(pk=tenant_id).prices == [{"id": "price_123", "metricName": "api_calls"}]


def test_create_with_no_data_at_all(api):
    response = create(api(), {})
    assert response.status_code == 201
    registration = TenantRegistration.objects.get()
    assert registration.status == "In progress" and registration.tenant.name == ""


def test_pagination_visits_each_of_25_registrations_once(api, onboard):
    expected = {str(onboard(f"tenant-{index:02d}").pk) for index in range(25)}
    client, seen, token, pages = api(), [], None, 0
    while True:
        response = client.get(BASE, {"limit": 2, **({"next_token": token} if token else {})})
        assert response.status_code == 200
        body = response.json()
        seen.extend(item["tenantRegistrationId"] for item in body["data"])
        pages += 1
        token = body.get("next_token")
        if not token:
            break
    assert pages == 13
    assert len(seen) == 25 and set(seen) == expected


def test_patch_updates_both_records_and_returns_both(api, onboard):
    registration = onboard("acme")
    response = api().patch(
        f"{BASE}/{registration.pk}",
        {
            "tenantRegistrationData": {"registrationStatus": "created", "stackName": "acme-stack"},
            "tenantData": {"tenantConfig": {"userPoolId": "pool-1"}, "tier": "premium", "status": "green"},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["message"] == "Tenant registration updated successfully"
    assert data["tenantRegistration"]["registrationStatus"] == "created"
    assert data["tenantRegistration"]["stackName"] == "acme-stack"
    assert data["tenant"]["tenantConfig"] == {"userPoolId": "pool-1"}
    assert data["tenant"]["tier"] == "premium" and data["tenant"]["status"] == "green"
    assert data["tenant"]["tenantName"] == "acme", "keys not sent are kept"
    registration.refresh_from_db()
    assert registration.status == "created" and registration.data == {"stackName": "acme-stack"}
    assert registration.tenant.config == {"userPoolId": "pool-1"}


def test_patch_without_tenant_data_returns_tenant_null(api, onboard):
    registration = onboard()
    response = api().patch(f"{BASE}/{registration.pk}", {"tenantRegistrationData": {"note": "x"}}, format="json")
    assert response.json()["data"]["tenant"] is None
    assert response.json()["data"]["tenantRegistration"]["note"] == "x"


def test_patch_reporting_failure_records_the_reason(api, onboard):
    registration = onboard()
    response = api().patch(
        f"{BASE}/{registration.pk}",
        {"tenantRegistrationData": {"registrationStatus": "failed", "registrationStatusReason": "quota exceeded"}},
        format="json",
    )
    body = response.json()["data"]["tenantRegistration"]
    assert body["registrationStatus"] == "failed" and body["registrationStatusReason"] == "quota exceeded"


def test_patch_illegal_status_is_409_and_changes_nothing(api, onboard):
    registration = onboard()
    response = api().patch(
        f"{BASE}/{registration.pk}",
        {"tenantRegistrationData": {"registrationStatus": "deleted", "note": "x"}, "tenantData": {"tier": "gold"}},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["message"] == (
        f"registrationStatus 'deleted' does not apply: tenant registration {registration.pk} "
        "is onboarding with status 'In progress'"
    )
    registration.refresh_from_db()
    assert registration.status == "In progress" and registration.data == {} and registration.tenant.tier == "basic"


def test_patch_unknown_status_is_422(api, onboard):
    registration = onboard()
    response = api().patch(
        f"{BASE}/{registration.pk}", {"tenantRegistrationData": {"registrationStatus": "done"}}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "tenantRegistrationData", "registrationStatus"]


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_unknown_id_is_404_with_sbts_message(api, method):
    unknown = uuid.uuid4()
    response = getattr(api(), method)(f"{BASE}/{unknown}", {}, format="json")
    assert response.status_code == 404
    assert response.json()["message"] == f"Tenant registration not found for id {unknown}"


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_malformed_id_is_404_not_500(api, method):
    response = getattr(api(), method)(f"{BASE}/not-a-uuid", {}, format="json")
    assert response.status_code == 404
    assert response.json()["message"] == "Tenant registration not found for id not-a-uuid"


def test_delete_marks_both_inactive_and_emits_offboarding(api, onboard, events_of):
    registration = onboard("acme", registration_data={"source": "test"})
    response = api().delete(f"{BASE}/{registration.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": {"message": "Tenant registration deletion initiated"}}
    registration.refresh_from_db()
    assert registration.active is False and registration.tenant.active is False
    assert registration.status == "deleting" and registration.offboarded is not None
    (detail,) = events_of("offboardingRequest")
    assert detail["tenantRegistrationId"] == str(registration.pk) and detail["tenantId"] == str(registration.tenant_id)
    assert detail["tenantName"] == "acme" and detail["source"] == "test"
    assert detail["sbtaws_active"] is False and detail["registrationStatus"] == "deleting"


def test_offboarding_twice_answers_200_and_emits_once(api, onboard, events_of):
    """SBT answers a second DELETE with 200; an EventBridge API destination would retry a 409.
    The repeat changes nothing: same answer, no second offboardingRequest, the state kept."""
    registration = onboard()
    client = api()
    first = client.delete(f"{BASE}/{registration.pk}")
    registration.refresh_from_db()
    offboarded, modified = registration.offboarded, registration.modified
    for _ in range(2):
        response = client.delete(f"{BASE}/{registration.pk}")
        assert response.status_code == 200
        assert response.json() == first.json() == {"data": {"message": "Tenant registration deletion initiated"}}
    assert len(events_of("offboardingRequest")) == 1
    registration.refresh_from_db()
    assert (registration.status, registration.offboarded, registration.modified) == ("deleting", offboarded, modified)
    # Once deprovisioned, a late retry still answers 200 and leaves it deleted.
    client.patch(
        f"{BASE}/{registration.pk}", {"tenantRegistrationData": {"registrationStatus": "deleted"}}, format="json"
    )
    assert client.delete(f"{BASE}/{registration.pk}").status_code == 200
    registration.refresh_from_db()
    assert registration.status == "deleted" and len(events_of("offboardingRequest")) == 1


def test_deactivate_then_activate(api, onboard, events_of):
    registration = onboard()
    client = api()
    response = client.put(f"{BASE}/{registration.pk}/deactivate")
    assert response.status_code == 200
    assert response.json()["data"]["sbtaws_active"] is False
    registration.refresh_from_db()
    assert registration.tenant.active is False
    assert client.put(f"{BASE}/{registration.pk}/deactivate").status_code == 409
    response = client.put(f"{BASE}/{registration.pk}/activate")
    assert response.status_code == 200 and response.json()["data"]["sbtaws_active"] is True
    registration.refresh_from_db()
    assert registration.active and registration.tenant.active
    assert len(events_of("deactivateRequest")) == 1 and len(events_of("activateRequest")) == 1
    assert events_of("activateRequest")[0]["tenantRegistrationId"] == str(registration.pk)


def test_activating_an_offboarded_tenant_is_409(api, onboard, events_of):
    registration = onboard()
    client = api()
    client.delete(f"{BASE}/{registration.pk}")
    response = client.put(f"{BASE}/{registration.pk}/activate")
    assert response.status_code == 409
    assert response.json()["message"] == (
        f"Tenant registration {registration.pk} is offboarded (status 'deleting') and cannot be activated"
    )
    assert events_of("activateRequest") == []
    registration.refresh_from_db()
    assert registration.active is False


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"tenantData": []}, ["body", "tenantData"]),
        ({"tenantData": "acme"}, ["body", "tenantData"]),
        ({"tenantData": None}, ["body", "tenantData"]),
        ({"tenantRegistrationData": 3}, ["body", "tenantRegistrationData"]),
        ({"tenantdata": {"tenantName": "typo"}}, ["body", "tenantdata"]),
        ({"tenantData": {"tenantId": str(uuid.uuid4())}}, ["body", "tenantData", "tenantId"]),
        ({"tenantData": {"sbtaws_active": False}}, ["body", "tenantData", "sbtaws_active"]),
        ({"tenantData": {"tenantRegistrationId": "x"}}, ["body", "tenantData", "tenantRegistrationId"]),
        ({"tenantRegistrationData": {"tenantId": "x"}}, ["body", "tenantRegistrationData", "tenantId"]),
        ({"tenantRegistrationData": {"sbtaws_active": True}}, ["body", "tenantRegistrationData", "sbtaws_active"]),
        ({"tenantData": {"tenantName": 42}}, ["body", "tenantData", "tenantName"]),
        ({"tenantData": {"tenantName": "x" * 256}}, ["body", "tenantData", "tenantName"]),
        ({"tenantData": {"prices": {"id": "p"}}}, ["body", "tenantData", "prices"]),
        ({"tenantData": {"prices": [{"id": "p"}]}}, ["body", "tenantData", "prices", 0, "metricName"]),
    ],
)
def test_bad_create_body_is_422_naming_the_field_and_writes_nothing(api, body, loc):
    response = create(api(), body)
    assert response.status_code == 422, response.content
    payload = response.json()
    assert payload["statusCode"] == 422 and payload["detail"][0]["loc"] == loc
    assert loc[-1] in payload["message"] if isinstance(loc[-1], str) else True
    assert not Tenant.objects.exists() and not TenantRegistration.objects.exists() and not Event.objects.exists()


def test_owned_key_message_names_the_key(api):
    response = create(api(), {"tenantData": {"sbtaws_active": False}})
    assert response.json()["message"] == (
        "body.tenantData.sbtaws_active: sbtaws_active is set by the control plane and cannot be given"
    )


def test_patch_cannot_set_owned_keys(api, onboard):
    registration = onboard()
    other = uuid.uuid4()
    response = api().patch(f"{BASE}/{registration.pk}", {"tenantData": {"tenantId": str(other)}}, format="json")
    assert response.status_code == 422
    registration.refresh_from_db()
    assert "tenantId" not in registration.tenant.data


def test_body_of_1_mb_is_413_and_writes_nothing(api):
    body = '{"tenantData": {"blob": "' + "x" * 1_000_000 + '"}}'
    response = api().post(BASE, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["message"].startswith("Request body too large")
    assert not Tenant.objects.exists()


def test_unknown_content_type_is_415_and_writes_nothing(api):
    response = api().post(BASE, "tenantData=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    response = api().post(BASE, "<tenant/>", content_type="application/xml")
    assert response.status_code == 415
    assert not Tenant.objects.exists()


def test_non_object_body_is_422(api):
    response = api().post(BASE, "[1, 2]", content_type="application/json")
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body"]


def test_scopes(api, onboard):
    registration = onboard()
    reader = api(scopes="tenant/tenant_read")
    assert reader.get(BASE).status_code == 200
    assert reader.get(f"{BASE}/{registration.pk}").status_code == 200
    for response in (
        create(reader, {}),
        reader.patch(f"{BASE}/{registration.pk}", {}, format="json"),
        reader.delete(f"{BASE}/{registration.pk}"),
        reader.put(f"{BASE}/{registration.pk}/activate"),
        reader.put(f"{BASE}/{registration.pk}/deactivate"),
    ):
        assert response.status_code == 403 and response.json()["message"] == "Forbidden"
    assert api(scopes="user/user_read").get(BASE).status_code == 403
    assert api(scopes=None).get(BASE).status_code == 401
    registration.refresh_from_db()
    assert registration.active and TenantRegistration.objects.count() == 1


def test_tenant_bound_client_sees_only_its_tenant(api, onboard):
    mine, other = onboard("mine"), onboard("other")
    client = api(tenant=mine.tenant)
    listed = client.get(BASE).json()["data"]
    assert [item["tenantRegistrationId"] for item in listed] == [str(mine.pk)]
    assert client.get(f"{BASE}/{mine.pk}").status_code == 200
    response = client.get(f"{BASE}/{other.pk}")
    assert response.status_code == 404
    assert response.json()["message"] == f"Tenant registration not found for id {other.pk}"
    # Read-only: a bound client creates and changes nothing, whatever the id (403).
    assert create(client, {"tenantData": {"tenantName": "sneaky"}}).status_code == 403
    assert client.delete(f"{BASE}/{mine.pk}").status_code == 403
    assert client.delete(f"{BASE}/{other.pk}").status_code == 403
    assert TenantRegistration.objects.filter(active=True).count() == 2 and Tenant.objects.count() == 2


@pytest.mark.parametrize(
    "raw",
    [
        '{"tenantData": {"note": "a\\u0000b"}}',
        '{"tenantData": {"a\\u0000": "b"}}',
        '{"tenantData": {"tenantName": "a\\u0000"}}',
        '{"tenantData": {"nested": [{"deep": "\\ud800"}]}}',
        '{"tenantRegistrationData": {"note": "\\u0000"}}',
        '{"tenantData": {"huge": 1e400}}',
    ],
)
def test_values_postgresql_cannot_store_are_422_not_500(api, raw):
    response = api().post(BASE, raw, content_type="application/json")
    assert response.status_code == 422, response.content
    assert not Tenant.objects.exists()


# 50,000 levels overflow json.loads; 900 parse, then overflowed the stack when encoded for jsonb.
@pytest.mark.parametrize("depth", [50_000, 900])
def test_absurdly_nested_json_is_400_not_500(api, depth):
    raw = '{"tenantData": {"tenantName": "deep", "x": ' + "[" * depth + "]" * depth + "}}"
    response = api().post(BASE, raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["message"] == "Malformed JSON: nested too deeply"
    assert not Tenant.objects.exists()


def test_nul_in_a_tenant_config_name_is_404_not_500(client):
    response = client.get("/api/v1/tenant-config", {"tenantName": "a\x00b"})
    assert response.status_code == 404
