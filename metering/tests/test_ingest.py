"""Ingestion: exactly once, durable, validated as a whole, and the billing seam."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from metering.models import UsageEvent, UsageEventKey, UsageRollup
from metering.selectors import usage_window_totals
from metering.services import usage_events_ingest
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
