"""Usage queries of the native provider on PostgreSQL: the rollups aggregated per (tenant, group,
window) in SQL, each window read from the coarsest rollup rows that tile its pieces
(``metering.windows.rollup_pieces``), a page's tenants found by a loose index scan, and the
rows turned into results without the garbage collector (docs/metering.md "Queries").
"""

import gc
from bisect import bisect_right
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.db import connection, transaction

from metering.interface import UsageQuery, UsageWindow
from metering.models import ROLLUP_SPANS
from metering.windows import rollup_pieces, rollup_span

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


# The span of a ready rollup time zone (``RollupZone``) whose local midnights, as PostgreSQL
# computes them for its rows, include every boundary computed in Python: then each of its local
# days lies inside one window, whatever the two time-zone databases say about other days.
ZONE_SPAN_SQL = """
SELECT -id FROM metering_rollupzone zone
WHERE zone.name = %(time_zone)s AND zone.ready
  AND NOT EXISTS (SELECT FROM unnest(%(bounds)s::timestamptz[]) boundary
                  WHERE date_trunc('day', boundary, zone.name) <> boundary)
"""


def _zone_span(cursor, query: UsageQuery, params: dict) -> int | None:
    """The span of the rollup time zone rows that tile the query's windows, or None: only for
    days, weeks and months not already on UTC midnights (those read the daily rows)."""
    if query.interval == "HOUR" or params["span"] == ROLLUP_SPANS[0]:
        return None
    cursor.execute(ZONE_SPAN_SQL, params)
    row = cursor.fetchone()
    return row[0] if row else None


def _pieces_sql(boundaries: list[datetime], params: dict, zone_span: int | None = None) -> str:
    """The WHERE condition selecting the rollup rows of every piece (see ``rollup_pieces``): an
    OR of (span, bucket range) conditions, each an index range scan of (meter, span, bucket);
    with a rollup time zone's ``zone_span``, its local days as one range."""
    pieces = rollup_pieces(boundaries)
    if zone_span is not None:
        pieces = [(zone_span, boundaries[0], boundaries[-1])]
    elif len(pieces) > MAX_PIECES:
        pieces = [(rollup_span(boundaries, "SUM"), boundaries[0], boundaries[-1])]
    conditions = []
    for number, (span, lo, hi) in enumerate(pieces):
        params[f"piece_start_{number}"], params[f"piece_end_{number}"] = lo, hi
        conditions.append(
            f"(span = {int(span)} AND bucket >= %(piece_start_{number})s AND bucket < %(piece_end_{number})s)"
        )
    return f"({' OR '.join(conditions)})"


def usage_windows_postgresql(query: UsageQuery, boundaries: list[datetime]) -> list[UsageWindow]:
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
        "time_zone": query.time_zone,
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
        zone_span = _zone_span(cursor, query, params)
        parts["pieces"] = _pieces_sql(boundaries, params, zone_span)
        if zone_span is not None:
            params["span"] = zone_span  # the tenants of a page: those with rows of that zone
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
