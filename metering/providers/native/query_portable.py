"""Usage queries of the native provider computed in Python: the path of databases other than
PostgreSQL (the embedded SQLite default), and the exact fallback for windows that are not whole
rollup buckets (read from the raw events)."""

from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from metering.interface import UsageQuery, UsageWindow, usage_window_order
from metering.models import UsageEvent, UsageRollup, UsageUniqueValue
from metering.providers.native.rollups import Partial
from metering.windows import rollup_span, window_boundaries, window_index


def usage_windows_portable(query: UsageQuery) -> list[UsageWindow]:
    """The query computed in Python from rollup rows (or raw events when the zone's windows are
    not whole buckets): the path of non-PostgreSQL databases, and the exact fallback."""
    boundaries = window_boundaries(query.start, query.end, query.interval, ZoneInfo(query.time_zone))
    partials: dict[tuple, Partial] = defaultdict(Partial)
    # The dimension is read in Python from the whole ``dimensions`` object, never named in the
    # query: a ``dimensions__<name>`` lookup would refuse names with quotes or spaces (Django
    # checks column aliases) and read "a__b" as the key "b" inside "a".
    group_field = "dimensions" if query.group_by else None
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
        key = (row[0], _group_value(row[2], query.group_by), index)
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
                partials[(row[0], _group_value(row[2], query.group_by), index)].uniques.add(row[3])
    if time_field == "timestamp" and query.aggregation == "LATEST":
        # raw rows carry no event id above: redo LATEST with the (timestamp, eventId) order
        for row in rows.values_list(*head, "event_id", "value").iterator(chunk_size=10000):
            index = window_index(boundaries, row[1])
            key = (row[0], _group_value(row[2], query.group_by), index)
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


def _group_value(dimensions: dict | None, group_by: str | None) -> str | None:
    """The group of a row: its value of the ``group_by`` dimension, as a string (how values are
    stored); rows without the dimension group under None, and so does every row without groupBy."""
    value = (dimensions or {}).get(group_by) if group_by else None
    return value if value is None else str(value)
