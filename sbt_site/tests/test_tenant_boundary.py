"""The tenant boundary on every API route (accounts/boundary.py), from the URL configuration.

A client bound to tenant A, holding every scope, aims every route at tenant B's objects (its
registration, tenant, user, usage, billing customer) and at the shared ones (meters), with a
body that would change them. Operator-only routes answer 403; the routes open to tenants answer
404 (or 403, or 422 for usage naming B) or, for reads and lists, an answer that holds nothing of
B; and nothing of B, nor any shared object, changes. Routes come from the URL configuration (as
in the scope matrix), so a route added later is covered without editing this file.
"""

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.tests.test_scope_matrix import PROTECTED, _fill, _id
from billing.models import BillingCustomer
from billing.services import billing_customer_create
from metering.interface import MeterSpec
from metering.models import Meter, UsageEvent
from metering.services import meter_create, usage_events_ingest
from sbt_site.conf import sbt_settings
from tenants.models import Tenant, TenantRegistration
from tenants.tests.factories import tenant_registration_onboard

pytestmark = pytest.mark.django_db

OPERATOR_ONLY = [case for case in PROTECTED if case[3] not in sbt_settings.TENANT_OPERATIONS]
TENANT_OPEN = [case for case in PROTECTED if case[3] in sbt_settings.TENANT_OPERATIONS]

# What a hostile caller would send to each kind of route, were it let through.
HOSTILE_BODIES = {
    "tenant-registrations": {"tenantData": {"tenantName": "pwned", "tier": "free"}, "registrationStatus": "created"},
    "tenants": {"tenantName": "pwned", "tier": "free", "tenantConfig": {"pwned": True}},
    "meters": {"meterApiName": "pwned", "aggregation": "COUNT", "active": False},
    "users": {"userName": "pwned", "email": "pwned@example.com", "userRole": "TenantAdmin"},
    "usage": {"eventId": "pwned", "meterApiName": "api_calls", "meterValue": 1, "eventIds": ["b-event"]},
    "events": {"detail-type": "pwnedEvent", "detail": {}},
}
B_USER = "tenant-b-user"


@pytest.fixture
def world():
    """Tenants A and B, onboarded, a shared meter; B has a user, usage and a billing customer."""
    a, b = tenant_registration_onboard("tenant-a"), tenant_registration_onboard("tenant-b")
    meter = meter_create(spec=MeterSpec(api_name="api_calls", label="API calls", aggregation="COUNT"))
    get_user_model().objects.create(username=B_USER, email="b@example.com", role="TenantUser", tenant=b.tenant)
    usage_events_ingest(events=[{"eventId": "b-event", "meterApiName": "api_calls", "tenantId": str(b.tenant_id)}])
    billing_customer_create(tenant_id=b.tenant_id)
    return {"a": a, "b": b, "meter_id": meter.id}


def _state() -> list:
    """Everything a tenant-bound caller must not be able to change, as plain values."""
    return [
        sorted(Tenant.objects.values_list()),
        sorted(TenantRegistration.objects.values_list()),
        sorted(Meter.objects.values_list()),
        sorted(get_user_model().objects.values_list("username", "email", "role", "is_active", "tenant_id")),
        sorted(UsageEvent.objects.values_list("tenant_id", "event_id", "cancelled_at")),
        sorted(BillingCustomer.objects.values_list("tenant_id", "status")),
    ]


def _aimed_at_b(route: str, world) -> str:
    """The route's path with its id parameter pointing at B's object (or the shared meter)."""
    target = {
        "tenant-registrations": world["b"].pk,
        "tenants": world["b"].tenant_id,
        "meters": world["meter_id"],
        "users": B_USER,
        "usage": world["meter_id"],
        "billing/customers": world["b"].tenant_id,
    }
    path = _fill(route)
    for prefix, object_id in target.items():
        if route.startswith(f"api/v1/{prefix}/"):
            head = f"/api/v1/{prefix}/"
            rest = path[len(head) :].split("/", 1)
            return head + str(object_id) + ("/" + rest[1] if len(rest) > 1 else "")
    return path


def _hostile_call(client: APIClient, case, world):
    route, _, method, _ = case
    body = next((body for prefix, body in HOSTILE_BODIES.items() if route.startswith(f"api/v1/{prefix}")), {})
    b = str(world["b"].tenant_id)
    path = _aimed_at_b(route, world)
    if method == "get":
        return client.get(path, {"tenantId": b})
    body = {**body, "tenantId": b, "detail": {"tenantId": b}} if "detail" in body else {**body, "tenantId": b}
    return getattr(client, method)(path, body, format="json")


def _tenant_bound_client(make_token, world) -> APIClient:
    client = APIClient()
    tenant_a = Tenant.objects.get(pk=world["a"].tenant_id)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(tenant=tenant_a)}")  # every scope
    return client


def test_the_boundary_has_operator_only_routes_to_guard():
    operations = {case[3] for case in OPERATOR_ONLY}
    assert {"createTenantRegistration", "updateTenant", "updateMeter", "deleteMeter", "createMeter"} <= operations


@pytest.mark.parametrize("case", OPERATOR_ONLY, ids=_id)
def test_a_tenant_bound_caller_cannot_reach_operator_routes(case, world, make_token):
    client = _tenant_bound_client(make_token, world)
    before = _state()
    response = _hostile_call(client, case, world)
    assert response.status_code == 403, response.content
    assert response.json() == {"statusCode": 403, "message": "Forbidden", "code": "forbidden"}
    assert _state() == before


def test_the_check_fails_when_one_routes_guard_is_removed(world, make_token):
    """Open updateMeter to tenants, as a route that forgot its check would be: the same hostile
    call then archives and renames the shared meter, which the test above would catch."""
    case = next(case for case in OPERATOR_ONLY if case[3] == "updateMeter")
    client = _tenant_bound_client(make_token, world)
    before = _state()
    with override_settings(SBT={"TENANT_OPERATIONS": [*sbt_settings.TENANT_OPERATIONS, "updateMeter"]}):
        response = _hostile_call(client, case, world)
    assert response.status_code == 200, response.content
    assert _state() != before
    assert Meter.objects.get(pk=world["meter_id"]).active is False


@pytest.mark.parametrize("case", TENANT_OPEN, ids=_id)
def test_a_tenant_bound_caller_reaches_nothing_of_another_tenant(case, world, make_token):
    client = _tenant_bound_client(make_token, world)
    before = _state()
    response = _hostile_call(client, case, world)
    assert response.status_code < 500, response.content
    if response.status_code < 300:
        b = world["b"]
        leaked = [str(b.tenant_id), str(b.pk), B_USER, "tenant-b", "b-event"]
        assert not [value for value in leaked if value in response.content.decode()], response.content
    else:
        assert response.status_code in (403, 404, 422), response.content
    assert _state() == before
