"""CONTRACT.md "Tenants" and "Tenant config"."""

import json
import uuid

import pytest
from django.db import IntegrityError, transaction

from tenants.models import Tenant, TenantRegistration

pytestmark = pytest.mark.django_db

BASE = "/api/v1/tenants"


def test_create_fetch_list_update_delete(api):
    client = api()
    response = client.post(
        BASE, {"tenantName": "acme", "tier": "basic", "name": "n", "status": "s", "type": "t"}, format="json"
    )
    assert response.status_code == 201, response.content
    tenant = response.json()["data"]
    tenant_id = tenant["tenantId"]
    assert tenant["sbtaws_active"] is True and tenant["tenantRegistrationId"] is None
    assert (tenant["name"], tenant["status"], tenant["type"]) == ("n", "s", "t")

    assert client.get(f"{BASE}/{tenant_id}").json()["data"]["tenantName"] == "acme"
    assert [item["tenantId"] for item in client.get(BASE).json()["data"]] == [tenant_id]

    response = client.put(f"{BASE}/{tenant_id}", {"tier": "premium", "status": "s2", "extra": [1]}, format="json")
    updated = response.json()["data"]
    assert updated["tier"] == "premium" and updated["status"] == "s2" and updated["extra"] == [1]
    assert updated["tenantName"] == "acme" and updated["name"] == "n", "a PUT merges"

    response = client.delete(f"{BASE}/{tenant_id}")
    assert response.status_code == 200 and response.json()["data"]["sbtaws_active"] is False
    assert Tenant.objects.get(pk=tenant_id).active is False, "soft delete"
    response = client.delete(f"{BASE}/{tenant_id}")
    assert response.status_code == 409
    assert response.json()["message"] == f"Tenant {tenant_id} is already inactive"


def test_fetch_unknown_is_404_with_message(api):
    unknown = uuid.uuid4()
    response = api().get(f"{BASE}/{unknown}")
    assert response.status_code == 404 and response.json()["message"] == f"Tenant not found for id {unknown}"
    assert api().get(f"{BASE}/bogus").json()["message"] == "Tenant not found for id bogus"


@pytest.mark.parametrize("method", ["put", "delete"])
def test_write_unknown_is_404_with_message(api, method):
    unknown = uuid.uuid4()
    response = getattr(api(), method)(f"{BASE}/{unknown}", {"tier": "x"}, format="json")
    assert response.status_code == 404 and response.json()["message"] == f"Tenant {unknown} not found."


@pytest.mark.parametrize(
    "body", [[1], "acme", {"tenantId": "x"}, {"sbtaws_active": True}, {"tier": 3}, {"prices": "p"}]
)
def test_bad_tenant_body_is_422_and_writes_nothing(api, body):
    response = api().post(BASE, json.dumps(body), content_type="application/json")
    assert response.status_code == 422
    assert not Tenant.objects.exists()


def test_put_cannot_set_owned_keys(api):
    tenant = Tenant.objects.create(name="acme")
    response = api().put(f"{BASE}/{tenant.pk}", {"sbtaws_active": False}, format="json")
    assert response.status_code == 422
    tenant.refresh_from_db()
    assert tenant.active is True and tenant.data == {}


def test_scopes_and_tenant_bound_clients(api):
    mine, other = Tenant.objects.create(name="mine"), Tenant.objects.create(name="other")
    reader = api(scopes="tenant/tenant_read")
    assert reader.get(BASE).status_code == 200
    assert reader.post(BASE, {"tenantName": "x"}, format="json").status_code == 403
    assert reader.put(f"{BASE}/{mine.pk}", {"tier": "x"}, format="json").status_code == 403
    assert reader.delete(f"{BASE}/{mine.pk}").status_code == 403

    bound = api(tenant=mine)
    assert [item["tenantId"] for item in bound.get(BASE).json()["data"]] == [str(mine.pk)]
    assert bound.get(f"{BASE}/{mine.pk}").status_code == 200
    assert bound.get(f"{BASE}/{other.pk}").status_code == 404
    assert bound.put(f"{BASE}/{mine.pk}", {"tier": "free-upgrade"}, format="json").status_code == 403
    assert bound.post(BASE, {"tenantName": "x"}, format="json").status_code == 403
    assert Tenant.objects.count() == 2 and Tenant.objects.get(pk=mine.pk).tier == ""


def test_tenant_list_pagination(api):
    for index in range(5):
        Tenant.objects.create(name=f"t{index}")
    first = api().get(BASE, {"limit": 3}).json()
    second = api().get(BASE, {"limit": 3, "next_token": first["next_token"]}).json()
    assert [item["tenantName"] for item in first["data"] + second["data"]] == ["t0", "t1", "t2", "t3", "t4"]
    assert "next_token" not in second


class TestTenantConfig:
    URL = "/api/v1/tenant-config"

    @pytest.fixture
    def acme(self, db):
        return Tenant.objects.create(name="acme", config={"userPoolId": "pool-1", "theme": "dark"})

    def test_by_id_without_a_token(self, client, acme):
        response = client.get(self.URL, {"tenantId": str(acme.pk)})
        assert response.status_code == 200
        assert response.json() == {"userPoolId": "pool-1", "theme": "dark"}

    def test_by_name_query_and_path(self, client, acme):
        assert client.get(self.URL, {"tenantName": "acme"}).json()["theme"] == "dark"
        assert client.get(f"{self.URL}/acme").json()["userPoolId"] == "pool-1"

    def test_by_origin(self, client, acme):
        response = client.get(self.URL, HTTP_ORIGIN="https://acme.app.example.com")
        assert response.status_code == 200 and response.json()["userPoolId"] == "pool-1"

    def test_a_json_string_is_returned_as_the_document_it_holds(self, client):
        Tenant.objects.create(name="legacy", config=json.dumps({"a": 1}))
        assert client.get(f"{self.URL}/legacy").json() == {"a": 1}

    def test_no_config_yet_is_404_as_in_sbt(self, client):
        Tenant.objects.create(name="fresh")
        for response in (client.get(f"{self.URL}/fresh"), client.get(self.URL, {"tenantName": "fresh"})):
            assert response.status_code == 404
            assert response.json() == {
                "statusCode": 404,
                "message": "No tenant details found for fresh",
                "code": "not_found",
            }

    @pytest.mark.parametrize(
        ("params", "headers", "wanted"),
        [
            ({"tenantName": "nobody"}, {}, "nobody"),
            ({}, {"HTTP_ORIGIN": "https://nobody.example.com"}, "nobody"),
            ({"tenantId": "not-a-uuid"}, {}, "not-a-uuid"),
        ],
    )
    def test_unknown_is_404(self, client, acme, params, headers, wanted):
        response = client.get(self.URL, params, **headers)
        assert response.status_code == 404
        assert response.json()["message"] == f"No tenant details found for {wanted}"

    def test_unknown_id_is_404(self, client):
        unknown = uuid.uuid4()
        assert client.get(self.URL, {"tenantId": str(unknown)}).json()["message"] == (
            f"No tenant details found for {unknown}"
        )

    def test_inactive_tenant_is_not_found(self, client, acme):
        Tenant.objects.filter(pk=acme.pk).update(active=False)
        assert client.get(f"{self.URL}/acme").status_code == 404

    @pytest.mark.parametrize("origin", [None, "null", "not a url"])
    def test_nothing_identifies_the_tenant_is_400(self, client, origin):
        headers = {"HTTP_ORIGIN": origin} if origin is not None else {}
        response = client.get(self.URL, **headers)
        assert response.status_code == 400
        assert response.json()["message"] == "Origin header missing!"

    def test_no_second_tenant_can_take_a_name_and_its_config(self, api, client, acme):
        """The name is the public lookup key: an impostor of the same name (or a rename to it) is
        refused, and the config by name stays acme's."""
        operator = api()
        other = operator.post(BASE, {"tenantName": "globex"}, format="json").json()["data"]["tenantId"]
        for response in (
            operator.post(BASE, {"tenantName": "acme", "tenantConfig": {"theme": "impostor"}}, format="json"),
            operator.post(BASE, {"tenantName": "ACME"}, format="json"),
            operator.put(f"{BASE}/{other}", {"tenantName": "Acme"}, format="json"),
            operator.post("/api/v1/tenant-registrations", {"tenantData": {"tenantName": "acme"}}, format="json"),
        ):
            assert response.status_code == 409, response.content
            assert response.json()["code"] == "tenant_name_taken"
            assert response.json()["message"].startswith("A tenant named ")
        assert sorted(Tenant.objects.values_list("name", flat=True)) == ["acme", "globex"]
        assert not TenantRegistration.objects.exists()
        assert client.get(f"{self.URL}/acme").json()["theme"] == "dark"
        with pytest.raises(IntegrityError), transaction.atomic():
            Tenant.objects.create(name="Acme")  # the database holds the rule too, for races

    def test_an_offboarded_tenant_frees_its_name(self, api):
        operator = api()
        first = operator.post("/api/v1/tenant-registrations", {"tenantData": {"tenantName": "acme"}}, format="json")
        registration_id = first.json()["data"]["tenantRegistrationId"]
        assert operator.delete(f"/api/v1/tenant-registrations/{registration_id}").status_code == 200
        second = operator.post("/api/v1/tenant-registrations", {"tenantData": {"tenantName": "acme"}}, format="json")
        assert second.status_code == 201, second.content
        deleted = operator.post(BASE, {"tenantName": "initech"}, format="json").json()["data"]["tenantId"]
        assert operator.delete(f"{BASE}/{deleted}").status_code == 200
        assert operator.post(BASE, {"tenantName": "initech"}, format="json").status_code == 201
