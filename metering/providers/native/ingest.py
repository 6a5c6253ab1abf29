"""PostgreSQL ingestion of the native provider (the hot path, see docs/metering.md).

The validated batch is COPYed into a session temporary staging table (a small batch is sent as
a VALUES list instead), then ONE statement inserts the new (tenant, eventId) keys with
``ON CONFLICT DO NOTHING RETURNING`` (exactly-once under concurrency: a concurrent writer of the
same key waits on the unique index and then skips it), inserts only those events into the
partitioned raw table and upserts the 15-minute, hourly and daily rollups (and the local days of
each rollup time zone, ``RollupZone``) and the distinct-value store, all in the caller's
transaction. Its statements are prepared (sbt_site/db.py).
"""

import json
from functools import lru_cache
from uuid import UUID

from django.utils import timezone

from metering.interface import UsageEventIn
from metering.models import BUCKET_SECONDS, ROLLUP_SPANS
from metering.providers.native.rollups import rollup_locks_take
from sbt_site.db import execute_prepared, raw_cursor

STAGING_SQL = """
CREATE TEMP TABLE IF NOT EXISTS metering_usage_staging (
    tenant_id uuid, event_id varchar(255), meter_id uuid, ts timestamptz, value numeric(38, 9),
    unique_value text, dimensions jsonb
) ON COMMIT DELETE ROWS
"""

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
               CASE WHEN spans.zone IS NULL
                    THEN date_bin(make_interval(secs => spans.span), bucket, TIMESTAMPTZ 'epoch')
                    -- a rollup time zone's local day (rollups.py: the same expression)
                    ELSE date_trunc('day', bucket, spans.zone) END AS span_bucket
        FROM per_bucket CROSS JOIN (
            SELECT span, NULL::text FROM (VALUES {spans}) AS fixed (span)
            UNION ALL SELECT -id, name FROM metering_rollupzone
        ) AS spans (span, zone)
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
    return sql


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


def ingest_postgresql(events: list[UsageEventIn], return_keys: bool = False) -> tuple[int, list]:
    """Store ``events`` in the caller's transaction: (how many were new, and with
    ``return_keys`` [[tenant id text, eventId], ...] of those; else [])."""
    rows = _staging_rows(events)
    rollup_locks_take(((event.meter_id, event.tenant_id) for event in events), mode="shared")
    if len(rows) <= SMALL_BATCH:
        # one prepared statement per batch size up to SMALL_BATCH
        params = [value for row in rows for value in row]
        sql = _ingest_statement(len(rows), return_keys)
    else:
        with raw_cursor() as cursor:
            cursor.execute(STAGING_SQL)
            cursor.execute("DELETE FROM metering_usage_staging")  # empty unless this transaction used it
            with cursor.copy(f"COPY metering_usage_staging ({STAGING_COLUMNS}) FROM STDIN") as copy:
                copy.write(_copy_text(rows))
        params, sql = [], _ingest_statement(None, return_keys)
    row = execute_prepared(sql, [*params, timezone.now()], fetch="one")
    return row[0], (row[4] or []) if return_keys else []
