"""Rollups of the native provider: mergeable partial aggregates, the (meter, tenant) advisory
locks, and the rebuild of rollups from the raw events.

Ingestion takes the lock of each (meter, tenant) it writes shared; cancellation and rebuild take
it exclusive, so a bucket is never recomputed while an ingestion of the same pair is half-way,
and ingestions never wait for each other on it. That exclusion holds only if every path locks
the same key: ``rollup_locks_take`` is the only place that turns pairs into keys and locks them.
"""

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal
from uuid import UUID

from django.db import connection

from metering.models import ROLLUP_SPANS, UsageEvent, UsageRollup, UsageUniqueValue
from metering.windows import bucket_of, span_bucket
from sbt_site.db import execute_prepared

# One statement per mode from one template, so both modes hash the key the same way. The keys
# are locked in array order (sorted), so two lockers of several pairs never deadlock.
_LOCK_SQL = "SELECT count({function}(hashtextextended(key, 0))) FROM unnest(%s::text[]) key"
LOCK_SQL = {
    "shared": _LOCK_SQL.format(function="pg_advisory_xact_lock_shared"),
    "exclusive": _LOCK_SQL.format(function="pg_advisory_xact_lock"),
}


def rollup_lock_keys(pairs: Iterable[tuple[UUID, UUID]]) -> list[str]:
    """The advisory-lock keys of (meter id, tenant id) pairs, sorted: the order every path
    locks them in."""
    return sorted({f"{meter_id}{tenant_id}" for meter_id, tenant_id in pairs})


def rollup_locks_take(pairs: Iterable[tuple[UUID, UUID]], *, mode: Literal["shared", "exclusive"]) -> None:
    """Lock the rollups of each (meter id, tenant id) pair until the end of the transaction,
    ``mode`` "shared" (ingestion) or "exclusive" (cancellation, rebuild). PostgreSQL only:
    elsewhere (SQLite) writers are serialised by the database itself."""
    if connection.vendor != "postgresql":
        return
    keys = rollup_lock_keys(pairs)
    if keys:
        execute_prepared(LOCK_SQL[mode], [keys])


class Partial:
    """Mergeable aggregate state of a set of events (a rollup row, or raw events)."""

    __slots__ = ("count", "last", "maximum", "minimum", "total", "uniques")

    def __init__(self):
        self.total = Decimal(0)
        self.count = 0
        self.minimum = None
        self.maximum = None
        self.last = None  # (timestamp, event_id, value)
        self.uniques = set()

    def add(self, total, count, minimum, maximum, last):
        self.total += total
        self.count += count
        self.minimum = minimum if self.minimum is None else min(self.minimum, minimum)
        self.maximum = maximum if self.maximum is None else max(self.maximum, maximum)
        if self.last is None or last[:2] > self.last[:2]:
            self.last = last

    def value(self, aggregation: str) -> Decimal:
        if aggregation == "SUM":
            return self.total
        if aggregation == "COUNT":
            return Decimal(self.count)
        if aggregation == "MIN":
            return self.minimum
        if aggregation == "MAX":
            return self.maximum
        if aggregation == "LATEST":
            return self.last[2]
        if aggregation == "AVG":
            return self.total / self.count
        return Decimal(len(self.uniques))


def rollups_rebuild(*, meter_id: UUID, start: datetime, end: datetime, tenant_id: UUID | None = None) -> int:
    """Recompute the rollups of every span over [start, end) — widened to whole UTC days, the
    coarsest span — from the live raw events.

    Runs in the caller's transaction, holding the (meter, tenant) locks so no ingestion of
    those pairs is half-way. Returns the number of rollup rows written.
    """
    start = span_bucket(start, ROLLUP_SPANS[0])
    end_floor = span_bucket(end, ROLLUP_SPANS[0])
    end = end_floor if end_floor == end else end_floor + timedelta(seconds=ROLLUP_SPANS[0])
    events = UsageEvent.objects.filter(meter_id=meter_id, timestamp__gte=start, timestamp__lt=end).order_by()
    rollups = UsageRollup.objects.filter(meter_id=meter_id, bucket__gte=start, bucket__lt=end)
    uniques = UsageUniqueValue.objects.filter(meter_id=meter_id, bucket__gte=start, bucket__lt=end)
    if tenant_id is not None:
        tenants = [tenant_id]
        events, rollups, uniques = (qs.filter(tenant_id=tenant_id) for qs in (events, rollups, uniques))
    else:
        tenants = set(events.values_list("tenant_id", flat=True).distinct()) | set(
            rollups.values_list("tenant_id", flat=True).distinct()
        )
    rollup_locks_take(((meter_id, tenant) for tenant in tenants), mode="exclusive")
    rollups.delete()
    uniques.delete()
    partials: dict[tuple, Partial] = defaultdict(Partial)
    unique_counts: dict[tuple, int] = defaultdict(int)
    for tenant, timestamp, event_id, value, unique_value, dimensions in (
        events.filter(cancelled_at__isnull=True)
        .values_list("tenant_id", "timestamp", "event_id", "value", "unique_value", "dimensions")
        .iterator(chunk_size=5000)
    ):
        dimensions_key = json.dumps(dimensions, sort_keys=True)
        for span in ROLLUP_SPANS:
            partials[(tenant, span, span_bucket(timestamp, span), dimensions_key)].add(
                value, 1, value, value, (timestamp, event_id, value)
            )
        if unique_value:
            unique_counts[(tenant, bucket_of(timestamp), dimensions_key, unique_value)] += 1
    UsageRollup.objects.bulk_create(
        [
            UsageRollup(
                meter_id=meter_id,
                tenant_id=tenant,
                span=span,
                bucket=bucket,
                dimensions=json.loads(dimensions),
                total=partial.total,
                count=partial.count,
                minimum=partial.minimum,
                maximum=partial.maximum,
                last_at=partial.last[0],
                last_event_id=partial.last[1],
                last_value=partial.last[2],
            )
            for (tenant, span, bucket, dimensions), partial in partials.items()
        ],
        batch_size=2000,
    )
    UsageUniqueValue.objects.bulk_create(
        [
            UsageUniqueValue(
                meter_id=meter_id,
                tenant_id=tenant,
                bucket=bucket,
                dimensions=json.loads(dimensions),
                unique_value=unique_value,
                count=count,
            )
            for (tenant, bucket, dimensions, unique_value), count in unique_counts.items()
        ],
        batch_size=2000,
    )
    return len(partials)
