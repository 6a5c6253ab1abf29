"""GET /billing/customers and /billing/usage-pushes: scope billing/billing_read, tenant-bound clients see their own."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import BillingCustomer, UsagePush

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers(make_tenant):
    made = []
    for name in ("alpha", "beta", "gamma"):
        tenant = make_tenant(name=name)
        made.append(
            BillingCustomer.objects.create(
                tenant=tenant,
                provider="local",
                provider_customer_id=f"local_cus_{tenant.pk.hex}",
                status=BillingCustomer.Status.ACTIVE,
            )
        )
    window = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    for index, customer in enumerate(made):
        UsagePush.objects.create(
            customer=customer,
            meter_api_name="api_calls",
            window_start=window,
            window_end=window + timedelta(hours=1),
            identifier=f"sbt-read-{index}",
            value="2.50",
            window_total="2.50",
            status=UsagePush.Status.SENT,
        )
    return made


def test_customers_are_listed_page_by_page(api, customers):
    client = api(scopes="billing/billing_read")
    first = client.get("/api/v1/billing/customers?limit=2").json()
    second = client.get(f"/api/v1/billing/customers?limit=2&next_token={first['next_token']}").json()
    assert "next_token" not in second
    listed = [item["tenantId"] for item in first["data"] + second["data"]]
    assert listed == [str(customer.tenant_id) for customer in customers]
    assert first["data"][0]["providerCustomerId"] == customers[0].provider_customer_id
    assert first["data"][0]["status"] == "active"


def test_one_customer_and_its_404(api, customers):
    client = api(scopes="billing/billing_read")
    tenant_id = customers[1].tenant_id
    assert client.get(f"/api/v1/billing/customers/{tenant_id}").json()["data"]["tenantId"] == str(tenant_id)
    missing = client.get("/api/v1/billing/customers/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["message"] == "Billing customer not found for tenant 00000000-0000-0000-0000-000000000000"


def test_a_tenant_bound_client_sees_only_its_tenant(api, customers):
    own = customers[0].tenant
    client = api(scopes="billing/billing_read", tenant=own)
    assert [item["tenantId"] for item in client.get("/api/v1/billing/customers").json()["data"]] == [str(own.pk)]
    assert client.get(f"/api/v1/billing/customers/{customers[1].tenant_id}").status_code == 404
    assert client.get(f"/api/v1/billing/customers?tenantId={customers[1].tenant_id}").status_code == 404
    pushes = client.get("/api/v1/billing/usage-pushes").json()["data"]
    assert [(push["tenantId"], push["value"]) for push in pushes] == [(str(own.pk), "2.5")]


def test_usage_pushes_filter_and_validation(api, customers):
    client = api(scopes="billing/billing_read")
    assert len(client.get("/api/v1/billing/usage-pushes").json()["data"]) == 3
    assert client.get("/api/v1/billing/usage-pushes?meterApiName=other").json()["data"] == []
    bad = client.get("/api/v1/billing/usage-pushes?tenantId=not-a-uuid")
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "tenantId"]
    assert client.get("/api/v1/billing/usage-pushes?limit=0").status_code == 422


def test_reads_need_the_billing_read_scope(api, customers):
    assert api(scopes=None).get("/api/v1/billing/customers").status_code == 401
    assert api(scopes="tenant/tenant_read").get("/api/v1/billing/usage-pushes").status_code == 403
