"""The native metering provider: meters, events and rollups in our own database.

On PostgreSQL ingestion is one prepared statement (``ingest``) and queries aggregate the
rollups in SQL (``query_postgresql``); other databases (the embedded SQLite default) take a
plain ORM path and compute queries in Python (``query_portable``). Cancellation and rebuild
recompute rollups from the raw events (``rollups``). See docs/metering.md.
"""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from metering.interface import (
    CancelFilter,
    IngestResult,
    MeterInfo,
    MeteringProvider,
    MeterSpec,
    RollupZoneInfo,
    UsageEventIn,
    UsageQuery,
    UsageWindow,
    usage_window_order,
)
from metering.models import ROLLUP_SPANS, Meter, MeteringCustomer, UsageEvent, UsageEventKey
from metering.partitions import month_start, partitions_ensure
from metering.providers.native import zones
from metering.providers.native.ingest import ingest_postgresql
from metering.providers.native.query_portable import usage_windows_portable
from metering.providers.native.query_postgresql import usage_windows_postgresql
from metering.providers.native.rollups import rollup_locks_take, rollups_rebuild
from metering.selectors import meter_info
from metering.windows import bucket_of, contiguous_ranges, rollup_span, span_bucket, window_boundaries


def _spec_fields(spec: MeterSpec) -> dict:
    return {
        "api_name": spec.api_name,
        "label": spec.label,
        "aggregation": spec.aggregation,
        "value_property": spec.value_property,
        "unique_property": spec.unique_property,
        "dimensions": list(spec.dimensions),
        "unit": spec.unit,
        "description": spec.description,
        "active": spec.active,
    }


class NativeMeteringProvider(MeteringProvider):
    """Meters, events and rollups in our own database (PostgreSQL; SQLite when embedded)."""

    # --- meters ---------------------------------------------------------------------------
    def create_meter(self, spec: MeterSpec) -> MeterInfo:
        return meter_info(Meter.objects.create(**_spec_fields(spec)))

    def fetch_meter(self, meter_id: UUID) -> MeterInfo | None:
        meter = Meter.objects.filter(pk=meter_id).first()
        return meter_info(meter) if meter else None

    def fetch_all_meters(self) -> list[MeterInfo]:
        return [meter_info(meter) for meter in Meter.objects.all()]

    def update_meter(self, meter_id: UUID, spec: MeterSpec) -> MeterInfo:
        meter = Meter.objects.select_for_update().get(pk=meter_id)
        for name, value in _spec_fields(spec).items():
            setattr(meter, name, value)
        meter.save()
        return meter_info(meter)

    def delete_meter(self, meter_id: UUID) -> None:
        UsageEvent.objects.filter(meter_id=meter_id).delete()
        Meter.objects.filter(pk=meter_id).delete()

    # --- customers ------------------------------------------------------------------------
    def create_customer(self, tenant_id: UUID) -> None:
        MeteringCustomer.objects.update_or_create(tenant_id=tenant_id, defaults={"offboarded": None})

    def delete_customer(self, tenant_id: UUID) -> None:
        customer, _ = MeteringCustomer.objects.get_or_create(tenant_id=tenant_id)
        if customer.offboarded is None:
            customer.offboarded = timezone.now()
            customer.save(update_fields=["offboarded", "modified"])

    # --- ingestion ------------------------------------------------------------------------
    def ingest(self, events: list[UsageEventIn]) -> IngestResult:
        if not events:
            return IngestResult(accepted=0, duplicates=0)
        # no savepoint: the caller's transaction is all or nothing anyway (two round trips saved)
        with transaction.atomic(savepoint=False):
            partitions_ensure({month_start(event.timestamp) for event in events})
            if connection.vendor == "postgresql":
                accepted, _ = ingest_postgresql(events)
            else:
                accepted = self._ingest_portable(events)
        return IngestResult(accepted=accepted, duplicates=len(events) - accepted)

    def ingest_many(self, batches: list[list[UsageEventIn]]) -> list[IngestResult]:
        if connection.vendor != "postgresql":
            return super().ingest_many(batches)
        # each (tenant, eventId) belongs to the first batch that sends it; one statement for all
        owner: dict[tuple, int] = {}
        for number, batch in enumerate(batches):
            for event in batch:
                owner.setdefault((event.tenant_id, event.event_id), number)
        first = [event for number, batch in enumerate(batches) for event in batch
                 if owner[(event.tenant_id, event.event_id)] == number]  # fmt: skip
        accepted = [0] * len(batches)
        if first:
            with transaction.atomic(savepoint=False):
                partitions_ensure({month_start(event.timestamp) for event in first})
                _, new_keys = ingest_postgresql(first, return_keys=True)
            for tenant_id, event_id in new_keys:
                accepted[owner[(UUID(tenant_id), event_id)]] += 1
        return [
            IngestResult(accepted=count, duplicates=len(batch) - count)
            for batch, count in zip(batches, accepted, strict=True)
        ]

    def _ingest_portable(self, events: list[UsageEventIn]) -> int:
        now = timezone.now()
        accepted = 0
        touched: dict[tuple, set[datetime]] = defaultdict(set)
        for event in events:
            if UsageEventKey.objects.filter(tenant_id=event.tenant_id, event_id=event.event_id).exists():
                continue
            UsageEventKey.objects.create(tenant_id=event.tenant_id, event_id=event.event_id, timestamp=event.timestamp)
            UsageEvent.objects.create(
                tenant_id=event.tenant_id,
                meter_id=event.meter_id,
                event_id=event.event_id,
                timestamp=event.timestamp,
                value=event.value,
                unique_value=event.unique_value,
                dimensions=event.dimensions,
                ingested_at=now,
            )
            touched[(event.meter_id, event.tenant_id)].add(bucket_of(event.timestamp))
            accepted += 1
        self._rebuild_buckets(touched)
        return accepted

    def _rebuild_buckets(self, touched: dict[tuple, set[datetime]]) -> None:
        day = ROLLUP_SPANS[0]
        for (meter_id, tenant_id), buckets in sorted(touched.items(), key=lambda item: str(item[0])):
            days = sorted({span_bucket(bucket, day) for bucket in buckets})
            for start, end in contiguous_ranges(days, timedelta(seconds=day)):
                rollups_rebuild(meter_id=meter_id, tenant_id=tenant_id, start=start, end=end)

    # --- cancellation ---------------------------------------------------------------------
    def cancel(self, cancel_filter: CancelFilter) -> int:
        with transaction.atomic():
            events = UsageEvent.objects.filter(cancelled_at__isnull=True).order_by()
            if cancel_filter.tenant_id is not None:
                events = events.filter(tenant_id=cancel_filter.tenant_id)
            if cancel_filter.event_ids:
                keys = UsageEventKey.objects.filter(event_id__in=cancel_filter.event_ids)
                if cancel_filter.tenant_id is not None:
                    keys = keys.filter(tenant_id=cancel_filter.tenant_id)
                pairs = list(keys.values_list("tenant_id", "event_id", "timestamp"))
                if not pairs:
                    return 0
                # the key store knows each event's timestamp: only its partitions are searched
                match = Q()
                for tenant_id, event_id, timestamp in pairs:
                    match |= Q(tenant_id=tenant_id, event_id=event_id, timestamp=timestamp)
                events = events.filter(match)
            if cancel_filter.meter_id is not None:
                events = events.filter(meter_id=cancel_filter.meter_id)
            if cancel_filter.ingested_from is not None:
                events = events.filter(ingested_at__gte=cancel_filter.ingested_from)
            if cancel_filter.ingested_to is not None:
                events = events.filter(ingested_at__lt=cancel_filter.ingested_to)
            targets = list(events.values_list("id", "timestamp", "meter_id", "tenant_id"))
            if not targets:
                return 0
            touched: dict[tuple, set[datetime]] = defaultdict(set)
            for _, timestamp, meter_id, tenant_id in targets:
                touched[(meter_id, tenant_id)].add(bucket_of(timestamp))
            # lock first, then flip: a concurrent cancel of the same events waits here and then
            # finds them already cancelled (the update below counts only live ones)
            rollup_locks_take(touched, mode="exclusive")
            cancelled = 0
            now = timezone.now()
            for chunk_start in range(0, len(targets), 5000):
                chunk = targets[chunk_start : chunk_start + 5000]
                cancelled += UsageEvent.objects.filter(
                    id__in=[target[0] for target in chunk],
                    timestamp__in={target[1] for target in chunk},
                    cancelled_at__isnull=True,
                ).update(cancelled_at=now)
            self._rebuild_buckets(touched)
            return cancelled

    # --- rollups -------------------------------------------------------------------------
    def rebuild_rollups(self, *, meter_id: UUID, start: datetime, end: datetime, tenant_id: UUID | None = None) -> int:
        """Every span's rollups over the whole UTC days covering [start, end) (``rollups_rebuild``)."""
        return rollups_rebuild(meter_id=meter_id, start=start, end=end, tenant_id=tenant_id)

    # --- rollup time zones -----------------------------------------------------------------
    @property
    def supports_rollup_zones(self) -> bool:
        return connection.vendor == "postgresql"

    def rollup_zones(self) -> list[RollupZoneInfo]:
        return zones.rollup_zones_list()

    def rollup_zone_add(self, name: str, progress: Callable[[int, int], None] | None = None) -> RollupZoneInfo:
        return zones.rollup_zone_add(name, progress)

    def rollup_zone_remove(self, name: str) -> bool:
        return zones.rollup_zone_remove(name)

    # --- queries --------------------------------------------------------------------------
    def fetch_usage(self, query: UsageQuery) -> list[UsageWindow]:
        boundaries = window_boundaries(query.start, query.end, query.interval, ZoneInfo(query.time_zone))
        if connection.vendor == "postgresql" and rollup_span(boundaries, query.aggregation):
            return usage_windows_postgresql(query, boundaries)
        windows = usage_windows_portable(query)
        first = 0 if query.after is None else bisect_right(windows, tuple(query.after), key=usage_window_order)
        return windows[first:] if query.limit is None else windows[first : first + query.limit]
