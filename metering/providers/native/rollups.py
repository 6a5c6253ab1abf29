"""Rollups of the native provider: mergeable partial aggregates, the (meter, tenant) advisory
locks, and the rebuild of rollups from the raw events.

Ingestion takes the lock of each (meter, tenant) it writes shared; cancellation and rebuild take
it exclusive, so a bucket is never recomputed while an ingestion of the same pair is half-way,
and ingestions never wait for each other on it. That exclusion holds only if every path locks
the same key: ``rollup_locks_take`` is the only place that turns pairs into keys and locks them.

Ingestion also takes one more key shared, ``ZONES_LOCK_KEY``, which adding or removing a rollup
time zone takes exclusive: a zone is added only once no ingestion that started without it is
still under way, so every ingestion either writes the zone's rows or committed before the
backfill reads the 15-minute rows (``rollup_zone_backfill``).

Rows of the rollup time zones (``RollupZone``: ``span`` = ``-zone id``, ``bucket`` = the local
midnight by PostgreSQL's ``date_trunc('day', ts, zone)``) are derived from the 15-minute rows in
SQL, by the ingestion statement and by ``rollup_zones_refresh``, with the same expression.
"""

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal
from uuid import UUID

from django.db import connection

from metering.models import BUCKET_SECONDS, ROLLUP_SPANS, UsageEvent, UsageRollup, UsageUniqueValue
from metering.windows import bucket_of, span_bucket
from sbt_site.db import execute_prepared

# One statement per mode from one template, so both modes hash the key the same way. The keys
# are locked in array order (sorted), so two lockers of several pairs never deadlock.
_LOCK_SQL = "SELECT count({function}(hashtextextended(key, 0))) FROM unnest(%s::text[]) key"
LOCK_SQL = {
    "shared": _LOCK_SQL.format(function="pg_advisory_xact_lock_shared"),
    "exclusive": _LOCK_SQL.format(function="pg_advisory_xact_lock"),
}


# not a (meter, tenant) key: those are two uuids' text, 72 characters
ZONES_LOCK_KEY = "metering-rollup-zones"


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
        if mode == "shared":
            keys = sorted([*keys, ZONES_LOCK_KEY])
        execute_prepared(LOCK_SQL[mode], [keys])


def rollup_zones_lock() -> None:
    """Wait for every ingestion under way, and hold new ones back until the end of the
    transaction (adding or removing a rollup time zone). PostgreSQL only."""
    execute_prepared(LOCK_SQL["exclusive"], [[ZONES_LOCK_KEY]])


# Every rollup time zone's days overlapping [start, end) recomputed from the 15-minute rows:
# the days start at the zone's midnight before ``start`` at the earliest and before ``end``.
ZONE_DAYS_DELETE_SQL = """
DELETE FROM metering_usagerollup r USING metering_rollupzone z
WHERE r.meter_id = %(meter)s AND r.span = -z.id {tenant} {zone}
  AND r.bucket >= date_trunc('day', %(start)s::timestamptz, z.name) AND r.bucket < %(end)s
"""
ZONE_DAYS_INSERT_SQL = """
INSERT INTO metering_usagerollup
    (meter_id, tenant_id, span, bucket, dimensions, total, count, minimum, maximum, last_at, last_event_id,
     last_value)
SELECT meter_id, tenant_id, span, day, dimensions, sum(total), sum(count), min(minimum), max(maximum),
       (array_agg(last_at ORDER BY last_at DESC, last_event_id DESC))[1],
       (array_agg(last_event_id ORDER BY last_at DESC, last_event_id DESC))[1],
       (array_agg(last_value ORDER BY last_at DESC, last_event_id DESC))[1]
FROM (
    SELECT r.meter_id, r.tenant_id, -z.id AS span, date_trunc('day', r.bucket, z.name) AS day, r.dimensions,
           r.total, r.count, r.minimum, r.maximum, r.last_at, r.last_event_id, r.last_value,
           date_trunc('day', %(start)s::timestamptz, z.name) AS first_day
    FROM metering_usagerollup r CROSS JOIN metering_rollupzone z
    WHERE r.meter_id = %(meter)s AND r.span = {bucket_seconds} {tenant} {zone}
      -- a local day lasts 25 hours at most: its 15-minute rows end before that after ``end``
      AND r.bucket >= date_trunc('day', %(start)s::timestamptz, z.name)
      AND r.bucket < %(end)s::timestamptz + interval '26 hours'
) quarters
WHERE day >= first_day AND day < %(end)s
GROUP BY meter_id, tenant_id, span, day, dimensions
"""


def rollup_zones_refresh(
    *, meter_id: UUID, start: datetime, end: datetime, tenant_ids: list[UUID], zone_ids: list[int] | None = None
) -> int:
    """Recompute the rows of the rollup time zones (``zone_ids``, or None: all) whose local days
    overlap [start, end) from the 15-minute rows, for ``tenant_ids``, in the caller's transaction,
    which holds those pairs' locks exclusive. Returns the number of rows written."""
    if connection.vendor != "postgresql" or not tenant_ids:
        return 0
    params = {"meter": meter_id, "start": start, "end": end, "tenants": tenant_ids, "zones": zone_ids}
    parts = {
        "tenant": "AND r.tenant_id = ANY(%(tenants)s::uuid[])",
        "zone": "AND z.id = ANY(%(zones)s::bigint[])" if zone_ids is not None else "",
        "bucket_seconds": BUCKET_SECONDS,
    }
    with connection.cursor() as cursor:
        cursor.execute(ZONE_DAYS_DELETE_SQL.format(**parts), params)
        cursor.execute(ZONE_DAYS_INSERT_SQL.format(**parts), params)
        return cursor.rowcount


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
    # the rollup time zones' rows of these days go too (and the rest of their local days is
    # recomputed below)
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
    # only the locked tenants: another tenant's rows may be under an ingestion's upsert
    zone_rows = rollup_zones_refresh(meter_id=meter_id, start=start, end=end, tenant_ids=list(tenants))
    return len(partials) + zone_rows
