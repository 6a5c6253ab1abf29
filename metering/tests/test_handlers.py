"""Customers follow onboarding/offboarding; ingestUsage from the bus stores like POST /usage."""

import pytest
from django.test import override_settings

from events.registry import inbound_handlers_for
from events.services import event_publish
from metering.models import MeteringCustomer, UsageEvent
from metering.services import usage_events_ingest
from sbt_site.errors import InvalidInput


@pytest.mark.django_db
def test_onboarding_creates_and_offboarding_retires_the_customer(
    tenant, make_meter, django_capture_on_commit_callbacks
):
    make_meter()
    with django_capture_on_commit_callbacks(execute=True):
        event_publish(detail_type="onboardingRequest", detail={"tenantId": str(tenant.pk)})
    customer = MeteringCustomer.objects.get(tenant=tenant)
    assert customer.offboarded is None
    usage_events_ingest(events=[{"meterApiName": "api-calls", "tenantId": str(tenant.pk), "meterValue": 1}])
    with django_capture_on_commit_callbacks(execute=True):
        event_publish(detail_type="offboardingRequest", detail={"tenantId": str(tenant.pk)})
        event_publish(detail_type="offboardingRequest", detail={"tenantId": str(tenant.pk)})
    customer.refresh_from_db()
    assert customer.offboarded is not None
    with pytest.raises(InvalidInput) as refused:
        usage_events_ingest(events=[{"meterApiName": "api-calls", "tenantId": str(tenant.pk), "meterValue": 1}])
    assert refused.value.detail[0]["msg"] == f"tenant {tenant.pk} is offboarded: its usage is refused"
    assert UsageEvent.objects.count() == 1


@pytest.mark.django_db
def test_ingest_usage_from_the_bus_is_exactly_once_and_validated(tenant, make_meter):
    make_meter()
    (handler,) = inbound_handlers_for("ingestUsage")
    detail = {"eventId": "bus-1", "meterApiName": "api-calls", "tenantId": str(tenant.pk), "meterValue": 3}
    handler(detail, client_tenant_id=None)
    handler({"events": [detail, {**detail, "eventId": "bus-2"}]}, client_tenant_id=tenant.pk)
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == ["bus-1", "bus-2"]
    with pytest.raises(InvalidInput):
        handler({**detail, "eventId": "bus-3", "meterValue": "many"}, client_tenant_id=None)
    assert UsageEvent.objects.count() == 2


@pytest.mark.django_db
def test_an_event_without_an_id_gets_one_from_its_content(tenant, make_meter):
    make_meter()
    event = {"meterApiName": "api-calls", "tenantId": str(tenant.pk), "meterValue": 2, "timestamp": 1_700_000_000_000}
    with override_settings(SBT={"USAGE_MAX_BACKDATE_DAYS": 36500}):
        assert usage_events_ingest(events=[event]).accepted == 1
        assert usage_events_ingest(events=[dict(event)]).duplicates == 1
        assert usage_events_ingest(events=[{**event, "meterValue": 3}]).accepted == 1
    assert all(event_id.startswith("sha256:") for event_id in UsageEvent.objects.values_list("event_id", flat=True))
