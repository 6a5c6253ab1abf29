"""Ingestion: exactly once, durable, validated as a whole, and the billing seam."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from metering.models import UsageEvent, UsageEventKey, UsageRollup
from metering.selectors import usage_window_totals
from metering.services import parse_value, usage_events_cancel, usage_events_ingest
from sbt_site.errors import InvalidInput


def hour_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.mark.django_db
def test_the_same_batch_twice_counts_each_event_once(tenant, make_meter):
    meter = make_meter()
    now = timezone.now()
    events = [
        {
            "eventId": f"e{i}",
            "meterApiName": meter.api_name,
            "tenantId": str(tenant.pk),
            "meterValue": i,
            "timestamp": (now - timedelta(hours=i % 3)).isoformat(),
        }
        for i in range(50)
    ]
    first = usage_events_ingest(events=events)
    second = usage_events_ingest(events=events)
    assert (first.accepted, first.duplicates) == (50, 0)
    assert (second.accepted, second.duplicates) == (0, 50)
    assert UsageEvent.objects.count() == 50
    assert UsageEventKey.objects.count() == 50
    totals = usage_window_totals(
        meter_api_name=meter.api_name,
        tenant_id=tenant.pk,
        start=hour_start(now) - timedelta(hours=3),
        end=hour_start(now) + timedelta(hours=1),
    )
    assert sum(total.value for total in totals) == Decimal(sum(range(50)))
    assert sum(total.event_count for total in totals) == 50
    assert all(total.window_end - total.window_start == timedelta(hours=1) for total in totals)


@pytest.mark.django_db
def test_an_invalid_event_stores_nothing(tenant, make_meter):
    meter = make_meter()
    events = [
        {"meterApiName": meter.api_name, "tenantId": str(tenant.pk), "meterValue": 1},
        {"meterApiName": meter.api_name, "tenantId": str(tenant.pk), "meterValue": "NaN"},
    ]
    with pytest.raises(InvalidInput) as error:
        usage_events_ingest(events=events)
    assert error.value.detail[0]["loc"] == ["body", "events", 1, "meterValue"]
    assert UsageEvent.objects.count() == 0
    assert UsageRollup.objects.count() == 0


@pytest.mark.django_db
@override_settings(SBT={"USAGE_MAX_BACKDATE_DAYS": 36500})
def test_usage_window_totals_are_hourly_utc_without_cancelled_events_or_partial_hours(tenant, make_meter):
    meter = make_meter(aggregation="MAX")
    base = datetime(2025, 3, 4, 10, tzinfo=UTC)
    usage_events_ingest(
        events=[
            {"eventId": eid, "meterApiName": meter.api_name, "tenantId": str(tenant.pk), "meterValue": value,
             "timestamp": (base + timedelta(minutes=minutes)).isoformat()}
            for eid, value, minutes in (("a", 1, 10), ("b", 9, 50), ("c", 3, 80), ("d", 2, 85))
        ]
    )  # fmt: skip
    usage_events_cancel(client_tenant_id=None, event_ids=["b"])
    totals = usage_window_totals(
        meter_api_name=meter.api_name, tenant_id=tenant.pk, start=base, end=base + timedelta(hours=2)
    )
    assert [(t.window_start, t.window_end, t.value, t.event_count) for t in totals] == [
        (base, base + timedelta(hours=1), Decimal(1), 1),
        (base + timedelta(hours=1), base + timedelta(hours=2), Decimal(3), 2),
    ]
    half_past = base + timedelta(minutes=30)
    later = usage_window_totals(
        meter_api_name=meter.api_name, tenant_id=tenant.pk, start=half_past, end=base + timedelta(hours=2)
    )
    assert [t.window_start for t in later] == [base + timedelta(hours=1)]
    assert usage_window_totals(meter_api_name="unknown", tenant_id=tenant.pk, start=base, end=base) == []


def test_values_up_to_29_digits_before_the_point_are_kept_to_9_places():
    assert parse_value("12345678901234567890.1234567894") == Decimal("12345678901234567890.123456789")
    assert parse_value(-(10**28)) == Decimal(-(10**28))
    for too_large in (10**29, "99999999999999999999999999999.9999999999", "1e400"):
        with pytest.raises(ValueError, match="too large"):
            parse_value(too_large)


@pytest.mark.parametrize("named", [True, False], ids=["tenantId given", "tenantId omitted"])
def test_an_inactive_tenants_bound_client_cannot_ingest_even_without_naming_it(make_tenant, make_meter, named):
    """The implicit tenant of a tenant-bound client goes through the same active check as a named
    one: a deactivated or offboarded tenant's usage is refused either way."""
    meter = make_meter()
    gone = make_tenant("gone", active=False)
    event = {"eventId": "e1", "meterApiName": meter.api_name, "meterValue": 1}
    if named:
        event["tenantId"] = str(gone.pk)
    with pytest.raises(InvalidInput) as refused:
        usage_events_ingest(events=[event], client_tenant_id=gone.pk)
    assert [item["type"] for item in refused.value.detail] == ["tenant_inactive"]
    assert not UsageEvent.objects.exists()
