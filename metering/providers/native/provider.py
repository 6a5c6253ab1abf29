"""The native metering provider: everything in our own database.

PostgreSQL hot path (see docs/metering.md): the validated batch is COPYed into a session
temporary staging table, then ONE statement inserts the new (tenant, eventId) keys with
``ON CONFLICT DO NOTHING RETURNING`` (exactly-once under concurrency: a concurrent writer of the
same key waits on the unique index and then skips it), inserts only those events into the
partitioned raw table and upserts the 15-minute rollups and distinct-value store, all in the
caller's transaction. Other databases (the embedded SQLite default) take a plain ORM path.
"""

import gc
import itertools
import json
import re
from bisect import bisect_right
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import pairwise
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from metering.interface import (
    CancelFilter,
    IngestResult,
    MeterInfo,
    MeteringProvider,
    MeterSpec,
    UsageEventIn,
    UsageQuery,
    UsageWindow,
    usage_window_order,
)
from metering.models import (
    BUCKET_SECONDS,
    ROLLUP_SPANS,
    Meter,
    MeteringCustomer,
    UsageEvent,
    UsageEventKey,
    UsageRollup,
    UsageUniqueValue,
)
from metering.partitions import month_start, partitions_ensure
from metering.windows import bucket_of, window_boundaries, window_index

BUCKET = timedelta(seconds=BUCKET_SECONDS)

STAGING_SQL = """
CREATE TEMP TABLE IF NOT EXISTS metering_usage_staging (
    tenant_id uuid, event_id varchar(255), meter_id uuid, ts timestamptz, value numeric(38, 9),
    unique_value text, dimensions jsonb
) ON COMMIT DELETE ROWS
"""

# Shared advisory locks per (meter, tenant), taken in sorted order: ingestions never wait for
# each other on them, but a cancellation or rebuild (exclusive) never recomputes a bucket while
# an ingestion of the same pair is half-way.
LOCK_SHARED_SQL = "SELECT count(pg_advisory_xact_lock_shared(hashtextextended(key, 0))) FROM unnest(%s::text[]) key"

# Small batches (a single event per request is common) skip the staging table: a VALUES list
# costs one round trip instead of three.
SMALL_BATCH = 50
STAGING_COLUMNS = "tenant_id, event_id, meter_id, ts, value, unique_value, dimensions"
VALUES_ROW = "(%s::uuid, %s, %s::uuid, %s::timestamptz, %s::numeric, %s, %s::jsonb)"

INGEST_SQL = """
WITH staged AS (
    -- bucket: the 15-minute rollup bucket (metering.windows.bucket_of)
    SELECT DISTINCT ON (tenant_id, event_id) tenant_id, event_id, meter_id, ts, value, unique_value, dimensions,
           date_bin(make_interval(secs => {bucket_seconds}), ts, TIMESTAMPTZ 'epoch') AS bucket
    FROM {source} ORDER BY tenant_id, event_id
), new_keys AS (
    INSERT INTO metering_usageeventkey (tenant_id, event_id, "timestamp")
    SELECT tenant_id, event_id, ts FROM staged ORDER BY tenant_id, event_id
    ON CONFLICT (tenant_id, event_id) DO NOTHING
    RETURNING tenant_id, event_id
), fresh AS (
    SELECT s.* FROM staged s JOIN new_keys k USING (tenant_id, event_id)
), raw AS (
    INSERT INTO metering_usageevent
        (tenant_id, meter_id, event_id, "timestamp", value, unique_value, dimensions, ingested_at)
    SELECT tenant_id, meter_id, event_id, ts, value, unique_value, dimensions, %s FROM fresh
    RETURNING 1
), per_bucket AS (
    -- the new events of each 15-minute bucket, and the latest of them, in one sort
    SELECT DISTINCT ON (meter_id, tenant_id, bucket, dimensions)
        meter_id, tenant_id, bucket, dimensions,
        sum(value) OVER w AS total, count(*) OVER w AS count, min(value) OVER w AS minimum,
        max(value) OVER w AS maximum, ts AS last_at, event_id AS last_event_id, value AS last_value
    FROM fresh
    WINDOW w AS (PARTITION BY meter_id, tenant_id, bucket, dimensions ORDER BY ts DESC, event_id DESC
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ORDER BY meter_id, tenant_id, bucket, dimensions, ts DESC, event_id DESC
), per_span AS (
    -- each span's buckets from the 15-minute ones (fewer rows than events), again in one sort
    SELECT DISTINCT ON (meter_id, tenant_id, span, span_bucket, dimensions)
        meter_id, tenant_id, span, span_bucket, dimensions,
        sum(total) OVER w AS total, sum(count) OVER w AS count, min(minimum) OVER w AS minimum,
        max(maximum) OVER w AS maximum, last_at, last_event_id, last_value
    FROM (
        SELECT per_bucket.*, spans.span,
               date_bin(make_interval(secs => spans.span), bucket, TIMESTAMPTZ 'epoch') AS span_bucket
        FROM per_bucket CROSS JOIN (VALUES {spans}) AS spans (span)
    ) spanned
    WINDOW w AS (PARTITION BY meter_id, tenant_id, span, span_bucket, dimensions
                 ORDER BY last_at DESC, last_event_id DESC
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ORDER BY meter_id, tenant_id, span, span_bucket, dimensions, last_at DESC, last_event_id DESC
), rollup AS (
    INSERT INTO metering_usagerollup AS r
        (meter_id, tenant_id, span, bucket, dimensions, total, count, minimum, maximum, last_at, last_event_id,
         last_value)
    SELECT meter_id, tenant_id, span, span_bucket, dimensions, total, count, minimum, maximum, last_at,
           last_event_id, last_value
    FROM per_span
    ON CONFLICT (meter_id, tenant_id, span, bucket, dimensions) DO UPDATE SET
        total = r.total + EXCLUDED.total,
        count = r.count + EXCLUDED.count,
        minimum = LEAST(r.minimum, EXCLUDED.minimum),
        maximum = GREATEST(r.maximum, EXCLUDED.maximum),
        last_value = CASE WHEN (EXCLUDED.last_at, EXCLUDED.last_event_id) > (r.last_at, r.last_event_id)
                     THEN EXCLUDED.last_value ELSE r.last_value END,
        last_event_id = CASE WHEN (EXCLUDED.last_at, EXCLUDED.last_event_id) > (r.last_at, r.last_event_id)
                        THEN EXCLUDED.last_event_id ELSE r.last_event_id END,
        last_at = GREATEST(r.last_at, EXCLUDED.last_at)
    RETURNING 1
), uniques AS (
    INSERT INTO metering_usageuniquevalue AS u (meter_id, tenant_id, bucket, dimensions, unique_value, count)
    SELECT meter_id, tenant_id, bucket, dimensions, unique_value, count(*)
    FROM fresh WHERE unique_value <> ''
    GROUP BY meter_id, tenant_id, bucket, dimensions, unique_value
    ORDER BY meter_id, tenant_id, bucket, dimensions, unique_value
    ON CONFLICT (meter_id, tenant_id, bucket, dimensions, unique_value) DO UPDATE SET count = u.count + EXCLUDED.count
    RETURNING 1
)
SELECT (SELECT count(*) FROM new_keys), (SELECT count(*) FROM raw), (SELECT count(*) FROM rollup),
       (SELECT count(*) FROM uniques){returning}
"""
# ingest_many needs to know which keys were new, to say which batch each accepted event was in
RETURNING_KEYS = ", (SELECT array_agg(ARRAY[tenant_id::text, event_id::text]) FROM new_keys)"


def meter_info(meter: Meter) -> MeterInfo:
    return MeterInfo(
        id=meter.id,
        api_name=meter.api_name,
        label=meter.label,
        aggregation=meter.aggregation,
        value_property=meter.value_property,
        unique_property=meter.unique_property,
        dimensions=tuple(meter.dimensions),
        unit=meter.unit,
        description=meter.description,
        active=meter.active,
        created=meter.created,
        modified=meter.modified,
    )


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


class _Partial:
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


def _advisory_lock(meter_id, tenant_id) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s::text || %s::text, 0))",
                [str(meter_id), str(tenant_id)],
            )


def _span_bucket(moment: datetime, span: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % span, tz=UTC)


def rollups_rebuild(*, meter_id: UUID, start: datetime, end: datetime, tenant_id: UUID | None = None) -> int:
    """Recompute the rollups of every span over [start, end) — widened to whole UTC days, the
    coarsest span — from the live raw events.

    Runs in the caller's transaction, holding the (meter, tenant) locks so no ingestion of
    those pairs is half-way. Returns the number of rollup rows written.
    """
    start = _span_bucket(start, ROLLUP_SPANS[0])
    end_floor = _span_bucket(end, ROLLUP_SPANS[0])
    end = end_floor if end_floor == end else end_floor + timedelta(seconds=ROLLUP_SPANS[0])
    events = UsageEvent.objects.filter(meter_id=meter_id, timestamp__gte=start, timestamp__lt=end).order_by()
    rollups = UsageRollup.objects.filter(meter_id=meter_id, bucket__gte=start, bucket__lt=end)
    uniques = UsageUniqueValue.objects.filter(meter_id=meter_id, bucket__gte=start, bucket__lt=end)
    if tenant_id is not None:
        tenants = [tenant_id]
        events, rollups, uniques = (qs.filter(tenant_id=tenant_id) for qs in (events, rollups, uniques))
    else:
        tenants = sorted(
            set(events.values_list("tenant_id", flat=True).distinct())
            | set(rollups.values_list("tenant_id", flat=True).distinct()),
            key=str,
        )
    for tenant in tenants:
        _advisory_lock(meter_id, tenant)
    rollups.delete()
    uniques.delete()
    partials: dict[tuple, _Partial] = defaultdict(_Partial)
    unique_counts: dict[tuple, int] = defaultdict(int)
    for tenant, timestamp, event_id, value, unique_value, dimensions in (
        events.filter(cancelled_at__isnull=True)
        .values_list("tenant_id", "timestamp", "event_id", "value", "unique_value", "dimensions")
        .iterator(chunk_size=5000)
    ):
        dimensions_key = json.dumps(dimensions, sort_keys=True)
        for span in ROLLUP_SPANS:
            partials[(tenant, span, _span_bucket(timestamp, span), dimensions_key)].add(
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


@lru_cache(maxsize=256)
def _native_placeholders(sql: str) -> str:
    """``sql`` without comments or runs of whitespace, its ``%s`` numbered as $1, $2, ..."""
    numbers = itertools.count(1)
    compact = " ".join(re.sub(r"--[^\n]*", "", sql).split())
    return re.sub("%s", lambda _: f"${next(numbers)}", compact)


@lru_cache(maxsize=128)
def _ingest_statement(values_rows: int | None, return_keys: bool) -> str:
    """INGEST_SQL reading ``values_rows`` rows of parameters, or the staging table (None)."""
    if values_rows is None:
        source = "metering_usage_staging"
    else:
        source = f"(VALUES {', '.join([VALUES_ROW] * values_rows)}) AS staging ({STAGING_COLUMNS})"
    spans = ", ".join(f"({span})" for span in ROLLUP_SPANS)
    returning = RETURNING_KEYS if return_keys else ""
    sql = INGEST_SQL.format(source=source, spans=spans, bucket_seconds=BUCKET_SECONDS, returning=returning)
    return _native_placeholders(sql)


# COPY's text format: backslash, tab, newline and carriage return are escaped (NUL never gets
# here: validation refuses it)
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _staging_rows(events: list[UsageEventIn]) -> list[tuple]:
    """The staging columns of each event. A batch repeats a few dimension sets many times: each
    is encoded once."""
    dimension_texts: dict[tuple, str] = {}
    rows = []
    for event in events:
        dimensions = tuple(event.dimensions.items())
        text = dimension_texts.get(dimensions)
        if text is None:
            text = dimension_texts[dimensions] = json.dumps(event.dimensions, sort_keys=True)
        rows.append(
            (event.tenant_id, event.event_id, event.meter_id, event.timestamp, event.value, event.unique_value, text)
        )
    return rows


def _copy_text(rows: list[tuple]) -> str:
    """``rows`` in COPY's text format, built in one go: psycopg's ``write_row`` adapts value by
    value, which cost more than the rest of a batch's Python work."""
    uuids: dict[UUID, str] = {}
    lines = []
    for tenant_id, event_id, meter_id, timestamp, value, unique_value, dimensions in rows:
        tenant = uuids.get(tenant_id) or uuids.setdefault(tenant_id, str(tenant_id))
        meter = uuids.get(meter_id) or uuids.setdefault(meter_id, str(meter_id))
        escaped = (text.translate(COPY_ESCAPES) for text in (event_id, unique_value, dimensions))
        event_text, unique_text, dimensions_text = escaped
        fields = (tenant, event_text, meter, timestamp.isoformat(), str(value), unique_text, dimensions_text)
        lines.append("\t".join(fields))
    lines.append("")
    return "\n".join(lines)


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
                accepted, _ = self._ingest_postgresql(events)
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
                _, new_keys = self._ingest_postgresql(first, return_keys=True)
            for tenant_id, event_id in new_keys:
                accepted[owner[(UUID(tenant_id), event_id)]] += 1
        return [
            IngestResult(accepted=count, duplicates=len(batch) - count)
            for batch, count in zip(batches, accepted, strict=True)
        ]

    def _ingest_postgresql(self, events: list[UsageEventIn], return_keys: bool = False) -> tuple[int, list]:
        """(how many events were new, and with ``return_keys`` [[tenant id text, eventId], ...]
        of those; else [])."""
        rows = _staging_rows(events)
        lock_keys = sorted({f"{event.meter_id}{event.tenant_id}" for event in events})
        # A raw psycopg cursor on Django's connection, inside the same transaction: statements
        # prepared server-side (Django's cursors bind client-side and never prepare; planning
        # INGEST_SQL costs more than running it for a few events), written with PostgreSQL's own
        # $n placeholders so psycopg does not re-parse the long statement on every call.
        connection.ensure_connection()
        with psycopg.RawCursor(connection.connection) as cursor:
            cursor.execute(_native_placeholders(LOCK_SHARED_SQL), [lock_keys], prepare=True)
            if len(rows) <= SMALL_BATCH:
                # one prepared statement per batch size up to SMALL_BATCH
                params = [value for row in rows for value in row]
                sql = _ingest_statement(len(rows), return_keys)
            else:
                cursor.execute(STAGING_SQL)
                cursor.execute("DELETE FROM metering_usage_staging")  # empty unless this transaction used it
                with cursor.copy(f"COPY metering_usage_staging ({STAGING_COLUMNS}) FROM STDIN") as copy:
                    copy.write(_copy_text(rows))
                params, sql = [], _ingest_statement(None, return_keys)
            cursor.execute(sql, [*params, timezone.now()], prepare=True)
            row = cursor.fetchone()
            return row[0], (row[4] or []) if return_keys else []

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
            days = sorted({_span_bucket(bucket, day) for bucket in buckets})
            for start, end in _contiguous_ranges(days, timedelta(seconds=day)):
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
            for meter_id, tenant_id in sorted(touched, key=str):
                _advisory_lock(meter_id, tenant_id)
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

    # --- queries --------------------------------------------------------------------------
    def fetch_usage(self, query: UsageQuery) -> list[UsageWindow]:
        boundaries = window_boundaries(query.start, query.end, query.interval, ZoneInfo(query.time_zone))
        if connection.vendor == "postgresql" and rollup_span(boundaries, query.aggregation):
            return _usage_windows_postgresql(query, boundaries)
        windows = usage_windows_portable(query)
        first = 0 if query.after is None else bisect_right(windows, tuple(query.after), key=usage_window_order)
        return windows[first:] if query.limit is None else windows[first : first + query.limit]


def usage_windows_portable(query: UsageQuery) -> list[UsageWindow]:
    """The query computed in Python from rollup rows (or raw events when the zone's windows are
    not whole buckets): the path of non-PostgreSQL databases, and the exact fallback."""
    boundaries = window_boundaries(query.start, query.end, query.interval, ZoneInfo(query.time_zone))
    partials: dict[tuple, _Partial] = defaultdict(_Partial)
    group_field = f"dimensions__{query.group_by}" if query.group_by else None
    span = rollup_span(boundaries, query.aggregation)
    if span:
        rows = UsageRollup.objects.filter(
            meter_id=query.meter_id, span=span, bucket__gte=boundaries[0], bucket__lt=boundaries[-1]
        )
        uniques = UsageUniqueValue.objects.filter(
            meter_id=query.meter_id, bucket__gte=boundaries[0], bucket__lt=boundaries[-1]
        )
        time_field, row_fields = "bucket", ("total", "count", "minimum", "maximum", "last_at", "last_event_id")
        extra = ("last_value",)
    else:
        live = UsageEvent.objects.filter(
            meter_id=query.meter_id,
            cancelled_at__isnull=True,
            timestamp__gte=boundaries[0],
            timestamp__lt=boundaries[-1],
        ).order_by()
        rows = live
        uniques = live.exclude(unique_value="")
        time_field, row_fields, extra = "timestamp", ("value",), ()
    if query.tenant_id is not None:
        rows, uniques = rows.filter(tenant_id=query.tenant_id), uniques.filter(tenant_id=query.tenant_id)
    head = ("tenant_id", time_field, group_field or "tenant_id")
    for row in rows.values_list(*head, *row_fields, *extra).iterator(chunk_size=10000):
        index = window_index(boundaries, row[1])
        if index is None:
            continue
        key = (row[0], _group_value(row[2]) if group_field else None, index)
        if time_field == "bucket":
            total, count, minimum, maximum, last_at, last_event_id, last_value = row[3:]
            partials[key].add(total, count, minimum, maximum, (last_at, last_event_id, last_value))
        else:
            value = row[3]
            partials[key].add(value, 1, value, value, (row[1], "", value))
    if query.aggregation == "UNIQUE_COUNT":
        for row in uniques.values_list(*head, "unique_value").iterator(chunk_size=10000):
            index = window_index(boundaries, row[1])
            if index is not None:
                partials[(row[0], _group_value(row[2]) if group_field else None, index)].uniques.add(row[3])
    if time_field == "timestamp" and query.aggregation == "LATEST":
        # raw rows carry no event id above: redo LATEST with the (timestamp, eventId) order
        for row in rows.values_list(*head, "event_id", "value").iterator(chunk_size=10000):
            index = window_index(boundaries, row[1])
            key = (row[0], _group_value(row[2]) if group_field else None, index)
            candidate = (row[1], row[3], row[4])
            if partials[key].last[:2] <= candidate[:2]:
                partials[key].last = candidate
    return _usage_windows(query, boundaries, partials)


def _usage_windows(query: UsageQuery, boundaries: list[datetime], partials: dict) -> list[UsageWindow]:
    windows = []
    for (tenant_id, group, index), partial in partials.items():
        if partial.count == 0:
            continue
        windows.append(
            UsageWindow(
                tenant_id=tenant_id,
                window_start=boundaries[index],
                window_end=boundaries[index + 1],
                value=partial.value(query.aggregation),
                event_count=partial.count,
                group={query.group_by: group} if query.group_by else {},
            )
        )
    windows.sort(key=usage_window_order)
    return windows


ROLLUP_QUERY_SQL = """
SELECT * FROM (
    SELECT tenant_id, {group} AS grp, width_bucket(bucket, %(bounds)s::timestamptz[]) AS window_number,
           {value} AS value, sum(count)::bigint AS count
    FROM metering_usagerollup
    WHERE meter_id = %(meter)s AND {pieces} {tenant}
    GROUP BY 1, 2, 3
) windows
{after}
ORDER BY tenant_id, {group_order} window_number
{limit}
"""

# what each aggregation needs from the rollup rows of a window (COUNT and UNIQUE_COUNT: only the
# event count; AVG: the sum, divided by the count in Python as the portable path does)
ROLLUP_VALUE_SQL = {
    "SUM": "sum(total)",
    "AVG": "sum(total)",
    "MIN": "min(minimum)",
    "MAX": "max(maximum)",
    "LATEST": "(array_agg(last_value ORDER BY last_at DESC, last_event_id DESC))[1]",
    "COUNT": "NULL",
    "UNIQUE_COUNT": "NULL",
}

UNIQUE_QUERY_SQL = """
SELECT tenant_id, {group} AS grp, width_bucket(bucket, %(bounds)s::timestamptz[]) AS window_number,
       count(DISTINCT unique_value)
FROM metering_usageuniquevalue
WHERE meter_id = %(meter)s AND bucket >= %(start)s AND bucket < %(end)s {tenant}
GROUP BY 1, 2, 3
"""

# the tenants a page can touch: the first N (in uuid order) from the cursor's tenant on that have
# usage in the range. A loose index scan: each next tenant of the meter is one descent of the
# unique index (meter, tenant, span, bucket, ...), and whether it has usage in [b0, bn) another
# (any one span that tiles every window finds exactly those tenants); a plain scan in tenant order
# would walk every rollup row of every span of those tenants.
PAGE_TENANTS_SQL = """
WITH RECURSIVE tenants (tenant_id) AS (
    (SELECT tenant_id FROM metering_usagerollup
     WHERE meter_id = %(meter)s AND tenant_id >= %(after_tenant)s ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT next.tenant_id FROM metering_usagerollup next
            WHERE next.meter_id = %(meter)s AND next.tenant_id > tenants.tenant_id ORDER BY next.tenant_id LIMIT 1)
    FROM tenants WHERE tenants.tenant_id IS NOT NULL
)
SELECT tenant_id FROM tenants
WHERE tenant_id IS NOT NULL AND EXISTS (
    SELECT FROM metering_usagerollup used
    WHERE used.meter_id = %(meter)s AND used.tenant_id = tenants.tenant_id AND used.span = %(span)s
      AND used.bucket >= %(start)s AND used.bucket < %(end)s
)
LIMIT %(tenants)s
"""

# More pieces than this (e.g. a year of Kolkata days: two per day) cost more to plan than they
# save: the query then reads one span, the coarsest that tiles every window, as one range.
MAX_PIECES = 128


def _pieces_sql(boundaries: list[datetime], params: dict) -> str:
    """The WHERE condition selecting the rollup rows of every piece (see ``rollup_pieces``): an
    OR of (span, bucket range) conditions, each an index range scan of (meter, span, bucket)."""
    pieces = rollup_pieces(boundaries)
    if len(pieces) > MAX_PIECES:
        pieces = [(rollup_span(boundaries, "SUM"), boundaries[0], boundaries[-1])]
    conditions = []
    for number, (span, lo, hi) in enumerate(pieces):
        params[f"piece_start_{number}"], params[f"piece_end_{number}"] = lo, hi
        conditions.append(
            f"(span = {int(span)} AND bucket >= %(piece_start_{number})s AND bucket < %(piece_end_{number})s)"
        )
    return f"({' OR '.join(conditions)})"


def _usage_windows_postgresql(query: UsageQuery, boundaries: list[datetime]) -> list[UsageWindow]:
    """Aggregate the rollups per (tenant, group, window) inside PostgreSQL: ``width_bucket``
    over the window boundaries computed in Python, so no time-zone arithmetic happens in SQL.
    Each window is read from the coarsest rollup rows that tile its pieces (``rollup_pieces``).
    Rows come back already in ``usage_window_order``."""
    aggregation, group_by = query.aggregation, query.group_by
    params = {
        "span": rollup_span(boundaries, "SUM"),
        "bounds": boundaries,
        "meter": query.meter_id,
        "start": boundaries[0],
        "end": boundaries[-1],
        "tenant_id": query.tenant_id,
        "group_by": group_by,
    }
    after, limit = query.after, query.limit
    if after is not None:
        params["after_tenant"] = UUID(after[0])
        params["after_has_group"] = after[1]
        params["after_group"] = after[2]
        # windows whose start is after the cursor's: numbers above the count of boundaries <= it
        params["after_window"] = bisect_right([b.timestamp() for b in boundaries], after[3])
    else:
        params["after_tenant"] = UUID(int=0)
    parts = {
        "group": "dimensions ->> %(group_by)s" if group_by else "NULL::text",
        # a uuid sorts by its bytes, which is the order of its hex text (Python's str order); group
        # values sort byte-wise ("C"), as Python compares str
        "group_order": "grp IS NOT NULL, coalesce(grp, '') COLLATE \"C\"," if group_by else "",
        "tenant": "AND tenant_id = %(tenant_id)s" if query.tenant_id is not None else "",
        "value": ROLLUP_VALUE_SQL[aggregation],
        "pieces": _pieces_sql(boundaries, params),
        "after": (
            "WHERE (tenant_id, grp IS NOT NULL, coalesce(grp, '') COLLATE \"C\", window_number) > "
            '(%(after_tenant)s, %(after_has_group)s, %(after_group)s COLLATE "C", %(after_window)s)'
            if after is not None
            else ""
        ),
        "limit": "LIMIT %(limit)s" if limit is not None else "",
    }
    params["limit"] = limit
    # savepoint=False: inside a caller's transaction this just joins it (no extra round trips)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if query.tenant_id is None:
            # An all-tenants query costs enough for PostgreSQL to JIT-compile it, and compiling the
            # OR of pieces and the aggregates takes longer than running them: EXPLAIN ANALYZE of a
            # Kolkata month (63 pieces) showed JIT 369 ms of a 649 ms execution. For this
            # transaction only.
            cursor.execute("SET LOCAL jit = off")
        if limit is not None and query.tenant_id is None:
            # a page of ``limit`` results spans at most ``limit`` tenants after the cursor's own:
            # aggregate only those instead of every tenant
            cursor.execute(PAGE_TENANTS_SQL, {**params, "tenants": limit + 1})
            params["page_tenants"] = [row[0] for row in cursor.fetchall()]
            parts["tenant"] = "AND tenant_id = ANY(%(page_tenants)s::uuid[])"
        distinct = {}
        if aggregation == "UNIQUE_COUNT":
            cursor.execute(UNIQUE_QUERY_SQL.format(**parts), params)
            distinct = {(tenant_id, group, window): count for tenant_id, group, window, count in cursor.fetchall()}
        cursor.execute(ROLLUP_QUERY_SQL.format(**parts), params)
        # tens of thousands of rows and results are allocated below and none of them is garbage:
        # the cyclic collector would only walk the whole heap again and again (a third of the
        # time of a 30,000-result answer)
        collecting = gc.isenabled()
        gc.disable()
        try:
            return _rows_to_windows(cursor.fetchall(), aggregation, group_by, boundaries, distinct)
        finally:
            if collecting:
                gc.enable()


def _rows_to_windows(rows, aggregation, group_by, boundaries, distinct) -> list[UsageWindow]:
    """(tenant, group, window number, value, count) rows to results: one conversion per
    aggregation, no per-row branching, and the frozen dataclass filled through its ``__dict__``
    (its ``__init__`` pays an ``object.__setattr__`` per field)."""
    if aggregation == "COUNT":
        rows = [(tenant_id, group, window, Decimal(count), count) for tenant_id, group, window, _, count in rows]
    elif aggregation == "AVG":
        rows = [(tenant_id, group, window, total / count, count) for tenant_id, group, window, total, count in rows]
    elif aggregation == "UNIQUE_COUNT":
        rows = [
            (tenant_id, group, window, Decimal(distinct.get((tenant_id, group, window), 0)), count)
            for tenant_id, group, window, _, count in rows
        ]
    new = object.__new__
    windows = []
    append = windows.append
    for tenant_id, group, window, value, count in rows:
        result = new(UsageWindow)
        fields = result.__dict__
        fields["tenant_id"] = tenant_id
        fields["window_start"] = boundaries[window - 1]
        fields["window_end"] = boundaries[window]
        fields["value"] = value
        fields["event_count"] = count
        fields["group"] = {group_by: group} if group_by else {}
        append(result)
    return windows


def rollup_span(boundaries: list[datetime], aggregation: str) -> int | None:
    """The coarsest rollup span whose buckets tile every window exactly, or None (raw events).

    UNIQUE_COUNT reads the 15-minute distinct-value store whatever the span."""
    spans = (BUCKET_SECONDS,) if aggregation == "UNIQUE_COUNT" else ROLLUP_SPANS
    for span in spans:
        if all(int(boundary.timestamp()) % span == 0 for boundary in boundaries):
            return span
    return None


def _group_value(value):
    """Dimension values are stored as strings; events without the dimension group under None."""
    return value if value is None else str(value)


def _contiguous_ranges(buckets: list[datetime], length: timedelta) -> list[tuple[datetime, datetime]]:
    ranges: list[list[datetime]] = []
    for bucket in buckets:
        if ranges and ranges[-1][1] == bucket:
            ranges[-1][1] = bucket + length
        else:
            ranges.append([bucket, bucket + length])
    return [(start, end) for start, end in ranges]


def rollup_pieces(boundaries: list[datetime]) -> list[tuple[int, datetime, datetime]] | None:
    """The windows [b0, bn) cut into (span, start, end) pieces, each read from the coarsest
    rollup span whose buckets tile it, or None when a boundary is not a whole 15-minute bucket
    (raw events then).

    Each window is cut separately — whole UTC days inside it from the daily rows, whole hours
    from the hourly rows, 15-minute rows only at its unaligned edges (a Kolkata day is 18:30 to
    18:30 UTC: two 15-minute rows, 23 hourly rows, two 15-minute rows) — so every piece lies in
    one window and ``width_bucket`` over the boundaries still assigns each bucket. Adjacent
    pieces of the same span are then merged (fewer ranges to scan; a merged range crosses only
    boundaries aligned to its span, so each of its buckets still lies in one window).
    Sorted by start."""
    epochs = [int(boundary.timestamp()) for boundary in boundaries]
    finest = ROLLUP_SPANS[-1]
    if any(epoch % finest for epoch in epochs):
        return None
    pieces: list[list[int]] = []

    def cut(lo: int, hi: int, spans: tuple[int, ...]) -> None:
        span, finer = spans[0], spans[1:]
        if not finer:
            pieces.append([span, lo, hi])
            return
        inner_lo, inner_hi = -(-lo // span) * span, hi // span * span
        if inner_lo >= inner_hi:
            cut(lo, hi, finer)
            return
        if lo < inner_lo:
            cut(lo, inner_lo, finer)
        pieces.append([span, inner_lo, inner_hi])
        if inner_hi < hi:
            cut(inner_hi, hi, finer)

    for lo, hi in pairwise(epochs):
        cut(lo, hi, ROLLUP_SPANS)
    merged: list[list[int]] = []
    for piece in pieces:
        if merged and merged[-1][0] == piece[0] and merged[-1][2] == piece[1]:
            merged[-1][2] = piece[2]
        else:
            merged.append(piece)
    return [(span, datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)) for span, lo, hi in merged]
