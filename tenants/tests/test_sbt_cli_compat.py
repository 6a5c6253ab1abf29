"""SBT's own command-line script (sbt-aws.sh) and its integration test, replayed request by request.

The bodies and query strings are those the script sends; the assertions are those its
integration test makes. Only the base URL and the token differ (CONTRACT.md).
"""

import secrets

import pytest

pytestmark = pytest.mark.django_db


def sbt_cli_registration_body(name: str) -> dict:
    return {
        "tenantData": {
            "tenantName": name,
            "email": f"admin+{name}@example.com",
            "tier": "basic",
            "prices": [
                {"id": "price_123456789Example", "metricName": "productsSold"},
                {"id": "price_123456789AnotherExample", "metricName": "plusProductsSold"},
            ],
        },
        "tenantRegistrationData": {"registrationStatus": "In progress", "tenantRegistrationData1": "test"},
    }


def test_the_sbt_integration_test_passes(api):
    client = api(scopes="tenant/tenant_read tenant/tenant_write")
    base = "/api/v1/"

    fake_id = secrets.token_hex(10)  # `openssl rand -hex 10`: not even a UUID
    response = client.delete(f"{base}tenant-registrations/{fake_id}", content_type="application/json")
    assert response.json()["message"] == f"Tenant registration not found for id {fake_id}"

    created = client.post(f"{base}tenant-registrations", sbt_cli_registration_body("tenant1"), format="json").json()
    registration_id, tenant_id = created["data"]["tenantRegistrationId"], created["data"]["tenantId"]
    assert registration_id and tenant_id
    second = client.post(f"{base}tenant-registrations", sbt_cli_registration_body("tenant2"), format="json").json()
    third = client.post(f"{base}tenant-registrations", sbt_cli_registration_body("tenant3"), format="json").json()

    # get-all-tenant-registrations 30: `curl -G ... ?limit=30 --data-urlencode next_token=`
    everything = client.get(f"{base}tenant-registrations?limit=30&next_token=").content.decode()
    for created_id in (registration_id, second["data"]["tenantRegistrationId"], third["data"]["tenantRegistrationId"]):
        assert created_id in everything

    first_page = client.get(f"{base}tenant-registrations?limit=2&next_token=").json()
    assert len(first_page["data"]) == 2 and first_page["next_token"]
    second_page = client.get(f"{base}tenant-registrations", {"limit": 2, "next_token": first_page["next_token"]})
    assert len(second_page.json()["data"]) >= 1

    assert registration_id in client.get(f"{base}tenant-registrations/{registration_id}").content.decode()

    # update-tenant-registration ID testKey testValue: the same key goes to both objects.
    update = client.patch(
        f"{base}tenant-registrations/{registration_id}",
        {"tenantRegistrationData": {"testKey": "testValue"}, "tenantData": {"testKey": "testValue"}},
        format="json",
    ).json()
    assert update["data"]["tenantRegistration"]["testKey"] == "testValue"
    assert update["data"]["tenant"]["testKey"] == "testValue"

    assert tenant_id in client.get(f"{base}tenants/{tenant_id}").content.decode()
    assert tenant_id in client.get(f"{base}tenants?limit=10&next_token=").content.decode()

    deleted = client.delete(f"{base}tenant-registrations/{registration_id}", content_type="application/json")
    assert "Tenant registration deletion initiated" in deleted.json()["data"]["message"]
    registration = client.get(f"{base}tenant-registrations/{registration_id}").json()["data"]
    assert registration["sbtaws_active"] is False


def test_sbt_cli_create_tenant_body_works_on_post_tenants(api):
    body = sbt_cli_registration_body("tenant9")["tenantData"] | {"tenantStatus": "In progress"}
    response = api().post("/api/v1/tenants", body, format="json")
    assert response.status_code == 201
    tenant = response.json()["data"]
    assert tenant["tenantStatus"] == "In progress" and tenant["prices"][1]["metricName"] == "plusProductsSold"


def test_a_new_registration_cannot_start_in_another_status(api):
    body = {"tenantRegistrationData": {"registrationStatus": "created"}}
    response = api().post("/api/v1/tenant-registrations", body, format="json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "tenantRegistrationData", "registrationStatus"]
