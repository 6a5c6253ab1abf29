"""Corrections of stored usage: cancelling events (they stay stored and stop counting) and
rebuilding a meter's rollups from its raw events."""

from datetime import datetime, timedelta
from uuid import UUID

from django.db import transaction

from metering.interface import CancelFilter
from metering.models import Meter
from metering.services.common import provider
from sbt_site.errors import NotFound


def usage_events_cancel(
    *,
    client_tenant_id: UUID | None,
    event_ids: list[str] | None = None,
    meter_api_name: str | None = None,
    tenant_id: UUID | None = None,
    ingested_from: datetime | None = None,
    ingested_to: datetime | None = None,
) -> int:
    """Cancel live events by ids, or by meter (+ tenant) and ingestion time range.

    Cancelled events stay stored and stop counting; cancelling again changes nothing.
    """
    if client_tenant_id is not None:
        if tenant_id is not None and tenant_id != client_tenant_id:
            return 0
        tenant_id = client_tenant_id
    meter_id = None
    if meter_api_name is not None:
        meter = Meter.objects.filter(api_name=meter_api_name).first()
        if meter is None:
            raise NotFound(f"Meter not found for name {meter_api_name}", code="meter_not_found")
        meter_id = meter.id
    cancel_filter = CancelFilter(
        tenant_id=tenant_id,
        event_ids=tuple(event_ids or ()),
        meter_id=meter_id,
        ingested_from=ingested_from,
        ingested_to=ingested_to,
    )
    with transaction.atomic():
        return provider().cancel(cancel_filter)


def usage_rollups_rebuild(*, meter_api_name: str, start: datetime, end: datetime) -> int:
    """Repair the rollups of one meter over [start, end) from its raw events (bucket-aligned)."""
    from metering.windows import bucket_of

    meter = Meter.objects.filter(api_name=meter_api_name).first()
    if meter is None:
        raise NotFound(f"Meter not found for name {meter_api_name}", code="meter_not_found")
    start = bucket_of(start)
    end_bucket = bucket_of(end)
    end = end_bucket if end_bucket == end else end_bucket + timedelta(minutes=15)
    with transaction.atomic():
        return provider().rebuild_rollups(meter_id=meter.id, start=start, end=end)
