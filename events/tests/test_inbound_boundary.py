"""The tenant boundary on the event bus (POST /events), from the event catalogue and the
registered inbound handlers.

Every inbound event type performs an IAuth operation (events.registry.inbound_operation): the
catalogue's for the application-plane events, its handlers' for a custom type, else putEvents.
A client bound to tenant A, holding every scope, aims each type at tenant B (B's registration
and tenant ids, a jobOutput renaming B, B's usage) and, for the operator's types, at its own
tenant: every call is refused and nothing changes. A client holding only events/events_write
cannot send what needs more; an unbound client with the scopes still can. The types come from
the catalogue and the registry, so an event type or handler added later is covered without
editing this file.
"""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from events import catalogue, registry
from events.catalogue import APPLICATION_PLANE_EVENTS, CONTROL_PLANE_EVENTS, PUT_EVENTS_OPERATION, SBT_AWS_PREFIX
from events.models import Event
from metering.interface import MeterSpec
from metering.models import UsageEvent
from metering.services import meter_create
from sbt_site.conf import sbt_settings
from tenants.models import Tenant, TenantRegistration
from tenants.tests.factories import tenant_registration_onboard

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"
FORBIDDEN = {"statusCode": 403, "message": "Forbidden", "code": "forbidden"}
CUSTOM = "acmeReportedSomething"

INBOUND_TYPES = sorted({*APPLICATION_PLANE_EVENTS, *registry.inbound_handled_types(), CUSTOM})
OPERATOR_TYPES = [
    name for name in INBOUND_TYPES if registry.inbound_operation(name) not in sbt_settings.TENANT_OPERATIONS
]
BEYOND_PUT_EVENTS = [name for name in INBOUND_TYPES if registry.inbound_operation(name) != PUT_EVENTS_OPERATION]


@pytest.fixture
def world():
    """Tenants A and B, onboarded, and a meter their usage could go to."""
    a, b = tenant_registration_onboard("tenant-a"), tenant_registration_onboard("tenant-b")
    meter_create(spec=MeterSpec(api_name="api_calls", label="API calls", aggregation="COUNT"))
    return {"a": a, "b": b}


def _state() -> list:
    """Everything an event could change, as plain values."""
    return [
        sorted(Tenant.objects.values_list()),
        sorted(TenantRegistration.objects.values_list()),
        sorted(UsageEvent.objects.values_list("event_id", "tenant_id")),
        sorted(Event.objects.values_list("id", flat=True)),
    ]


def _hostile_detail(registration: TenantRegistration) -> dict:
    """What a hostile client would say about ``registration``'s tenant, whatever the type."""
    return {
        "tenantRegistrationId": str(registration.pk),
        "tenantId": str(registration.tenant_id),
        "jobOutput": {
            "tenantData": {
                "tenantName": f"pwned-{registration.tenant.name}",
                "tier": "free",
                "prices": [{"id": "price_free", "metricName": "api_calls"}],
                "tenantConfig": {"pwned": True},
            },
            "tenantRegistrationData": {"pwned": True},
        },
        "eventId": "pwned-1",
        "meterApiName": "api_calls",
        "meterValue": 1,
        "timestamp": timezone.now().isoformat(),
    }


def _hostile_bodies(detail_type: str, registration: TenantRegistration) -> list[dict]:
    """The type's hostile entries: the detail as is, and for usage also the batch shape that
    names the tenant only inside ``events``; in both spellings of the name."""
    detail = _hostile_detail(registration)
    details = [detail]
    if registry.inbound_operation(detail_type) == "ingestUsage":
        details.append({"events": [detail]})
    names = [detail_type] + ([SBT_AWS_PREFIX + detail_type] if detail_type in catalogue.STANDARD_EVENTS else [])
    return [{"detail-type": name, "detail": detail} for name in names for detail in details]


def _client(make_token, *, scopes: str | None = None, tenant: Tenant | None = None) -> APIClient:
    client = APIClient()
    token = make_token(tenant=tenant) if scopes is None else make_token(scopes=scopes, tenant=tenant)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _assert_refused(response) -> None:
    """A 403 telling nothing, a 404, or (usage naming its tenant inside ``events``) a 422 on that
    tenant id: the answers a tenant-bound caller gets for what is not its own."""
    assert response.status_code in (403, 404, 422), response.content
    if response.status_code == 403:
        assert response.json() == FORBIDDEN
    if response.status_code == 422:
        assert all(item["loc"][-1] == "tenantId" for item in response.json()["detail"]), response.content


def _assert_forbidden_and_nothing_changes(client: APIClient, bodies: list[dict]) -> None:
    before = _state()
    for body in bodies:
        response = client.post(URL, body, format="json")
        assert response.status_code == 403, response.content
        assert response.json() == FORBIDDEN
    assert _state() == before


def test_the_generated_cases_cover_every_type_with_an_operation_to_guard():
    assert set(registry.inbound_handled_types()) <= set(INBOUND_TYPES)
    assert {"provisionSuccess", "deprovisionFailure", "activateSuccess", "offboardingFailure"} <= set(OPERATOR_TYPES)
    assert {"ingestUsage", *OPERATOR_TYPES} == set(BEYOND_PUT_EVENTS)
    assert registry.inbound_operation(CUSTOM) == PUT_EVENTS_OPERATION


@pytest.mark.parametrize("detail_type", INBOUND_TYPES)
def test_a_tenant_bound_caller_cannot_touch_another_tenant_through_the_bus(detail_type, world, make_token):
    client = _client(make_token, tenant=Tenant.objects.get(pk=world["a"].tenant_id))  # every scope
    before = _state()
    for body in _hostile_bodies(detail_type, world["b"]):
        _assert_refused(client.post(URL, body, format="json"))
    assert _state() == before


@pytest.mark.parametrize("detail_type", OPERATOR_TYPES)
def test_a_tenant_bound_caller_cannot_report_provisioning_results_about_itself(detail_type, world, make_token):
    """Hole 2 of #13: PATCH /tenant-registrations/{own} is refused, so the bus must refuse too."""
    client = _client(make_token, tenant=Tenant.objects.get(pk=world["a"].tenant_id))
    _assert_forbidden_and_nothing_changes(client, _hostile_bodies(detail_type, world["a"]))


@pytest.mark.parametrize("detail_type", BEYOND_PUT_EVENTS)
def test_events_write_alone_sends_only_what_needs_nothing_more(detail_type, world, make_token):
    """Hole 3 of #13: POST /usage and PUT /tenants refuse such a client; so does the bus."""
    client = _client(make_token, scopes="events/events_write")
    _assert_forbidden_and_nothing_changes(client, _hostile_bodies(detail_type, world["b"]))


@pytest.mark.parametrize("detail_type", BEYOND_PUT_EVENTS)
def test_an_unbound_client_with_the_operations_scope_is_let_through(detail_type, world, make_token):
    scope = sbt_settings.SCOPES[registry.inbound_operation(detail_type)]
    client = _client(make_token, scopes=f"events/events_write {scope}")
    response = client.post(URL, _hostile_bodies(detail_type, world["b"])[0], format="json")
    assert response.status_code != 403, response.content


def test_an_unbound_reporter_changes_the_registration_and_stores_usage(world, make_token):
    client = _client(make_token, scopes="events/events_write tenant/tenant_write usage/usage_write")
    b = world["b"]
    response = client.post(URL, {"detail-type": "provisionSuccess", "detail": _hostile_detail(b)}, format="json")
    assert response.status_code == 201, response.content
    assert Tenant.objects.get(pk=b.tenant_id).config == {"pwned": True}
    usage = {"eventId": "u-1", "meterApiName": "api_calls", "tenantId": str(b.tenant_id), "meterValue": 1}
    response = client.post(URL, {"detail-type": "ingestUsage", "detail": usage}, format="json")
    assert response.status_code == 201, response.content
    assert list(UsageEvent.objects.values_list("event_id", "tenant_id")) == [("u-1", b.tenant_id)]


def test_a_tenant_bound_caller_still_sends_its_own_usage_and_custom_events(world, make_token):
    a = world["a"]
    client = _client(make_token, tenant=Tenant.objects.get(pk=a.tenant_id))
    usage = {"eventId": "u-a", "meterApiName": "api_calls", "meterValue": 1}
    response = client.post(URL, {"detail-type": "ingestUsage", "detail": usage}, format="json")
    assert response.status_code == 201, response.content
    assert list(UsageEvent.objects.values_list("tenant_id", flat=True)) == [a.tenant_id]
    custom = {"detail-type": CUSTOM, "detail": {"tenantId": str(a.tenant_id), "note": "mine"}}
    assert client.post(URL, custom, format="json").status_code == 201


@pytest.mark.parametrize("detail_type", CONTROL_PLANE_EVENTS)
def test_nobody_sends_control_plane_events_or_speaks_as_the_control_plane(detail_type, world, make_token):
    """Hole 7 of #13, for a client with every scope: control-plane types in both spellings and
    near-miss names, and the control plane's source on any type, are 422 and stored nowhere."""
    client = _client(make_token)
    before = _state()
    detail = _hostile_detail(world["b"])
    names = [detail_type, SBT_AWS_PREFIX + detail_type, detail_type[0].upper() + detail_type[1:]]
    names.append(SBT_AWS_PREFIX + SBT_AWS_PREFIX + detail_type)
    for name in names:
        response = client.post(URL, {"detail-type": name, "detail": detail}, format="json")
        assert response.status_code == 422, (name, response.content)
        assert response.json()["detail"][0]["loc"] == ["body", "detail-type"]
    forged = {"detail-type": CUSTOM, "source": catalogue.control_plane_source(), "detail": detail}
    response = client.post(URL, forged, format="json")
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "source"]
    assert _state() == before


def test_the_check_fails_when_one_types_operation_is_removed(world, make_token, monkeypatch):
    """Let provisionSuccess need only putEvents, as a type whose operation was forgotten would:
    the same hostile calls then rename tenant A by its own client and B by an events-only
    client, which the tests above would catch."""
    monkeypatch.setitem(catalogue.APPLICATION_PLANE_OPERATIONS, "provisionSuccess", PUT_EVENTS_OPERATION)
    before = _state()
    own = _client(make_token, tenant=Tenant.objects.get(pk=world["a"].tenant_id))
    response = own.post(URL, _hostile_bodies("provisionSuccess", world["a"])[0], format="json")
    assert response.status_code == 201, response.content
    events_only = _client(make_token, scopes="events/events_write")
    response = events_only.post(URL, _hostile_bodies("provisionSuccess", world["b"])[0], format="json")
    assert response.status_code == 201, response.content
    assert _state() != before
    assert Tenant.objects.get(pk=world["b"].tenant_id).config == {"pwned": True}
