"""``GET /tenants`` builds its page from rows (tenants.selectors.tenant_row_list), not model
instances: its JSON must stay byte for byte what ``tenant_to_wire`` of each instance gives."""

from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from tenants.models import Tenant, TenantRegistration
from tenants.tests.factories import TenantFactory, tenant_registration_onboard
from tenants.wire import tenant_to_wire

pytestmark = pytest.mark.django_db

BASE = "/api/v1/tenants"


def _varied_tenants() -> None:
    """Tenants in every registration status, without a registration, with and without a config,
    with unicode, nulls, empty strings and free-form keys that shadow a column or a SQL word."""
    for status in TenantRegistration.Status.values:
        registration = tenant_registration_onboard(
            f"acme-{status.replace(' ', '-')}",
            registration_data={"registrationSource": "signup"},
            tenantConfig={"theme": "dark", "limits": {"seats": 5}},
            prices=[{"id": "price_1", "metricName": "calls"}],
        )
        TenantRegistration.objects.filter(pk=registration.pk).update(
            status=status, status_reason="Failed to provision tenant." if status == "failed" else ""
        )
        if status == TenantRegistration.Status.DELETED:
            Tenant.objects.filter(pk=registration.tenant_id).update(active=False, deleted=timezone.now())
    tenant_registration_onboard("Ünïcødé 租户 🚀", nickname="é\u2028\u00a0", tenantConfig=None)
    TenantFactory(name="bare")  # created through POST /tenants: no registration, defaults only
    TenantFactory(
        name="",
        email="",
        active=False,
        config=None,
        prices=[],
        data={"name": "n", "status": None, "nested": {"list": [1, 2.5, None, True]}, "emoji": "🚀"},
    )
    # Written around the wire, as an older version or an operator's SQL may have: a config kept
    # as the JSON string SBT's application plane sent, a free-form key named like a column.
    TenantFactory(name="legacy", config='{"theme": "light"}', data={"email": "shadowed", "tier": ["x"]})
    # Two tenants created in the same microsecond: the id breaks the tie in the order.
    same = timezone.now() - timedelta(days=1)
    for name in ("twin-a", "twin-b"):
        Tenant.objects.filter(pk=TenantFactory(name=name).pk).update(created=same)


def _as_before(tenants) -> bytes:
    return JSONRenderer().render({"data": [tenant_to_wire(tenant) for tenant in tenants]})


def test_the_page_is_byte_for_byte_the_instances_json(api):
    _varied_tenants()
    response = api().get(BASE, {"limit": 100})
    assert response.status_code == 200
    tenants = Tenant.objects.select_related("registration").order_by("created", "pk")
    assert len(tenants) == 11
    assert response.content == _as_before(tenants)


def test_every_page_and_its_cursor_are_the_instances(api):
    _varied_tenants()
    tenants = list(Tenant.objects.select_related("registration").order_by("created", "pk"))
    client, query, position = api(), {"limit": 5}, 0
    while True:
        body = client.get(BASE, query).json()
        page = tenants[position : position + 5]
        assert JSONRenderer().render({"data": body["data"]}) == _as_before(page)
        position += len(page)
        if "next_token" not in body:
            break
        cursor = signing.loads(body["next_token"], salt="sbt.page.tenants.tenant")
        assert cursor == [page[-1].created.isoformat(), str(page[-1].pk)]
        query = {"limit": 5, "next_token": body["next_token"]}
    assert position == len(tenants) == 11


def test_a_tenant_bound_client_lists_its_own_tenant_only(api):
    _varied_tenants()
    mine = Tenant.objects.get(name="Ünïcødé 租户 🚀")
    response = api(tenant=mine).get(BASE)
    assert response.status_code == 200
    assert response.content == _as_before([Tenant.objects.select_related("registration").get(pk=mine.pk)])
