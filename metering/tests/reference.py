"""An independent reference for usage queries: aggregation computed in plain Python from the
live events, with windows keyed by local wall-clock fields (not by our window arithmetic); and
the helpers the concurrency tests share."""

import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo


def window_key(moment: datetime, interval: str, zone: ZoneInfo) -> tuple:
    local = moment.astimezone(zone)
    if interval == "HOUR":
        # two wall-clock hours 01:00 exist on a fall-back day; the UTC offset tells them apart
        return (local.date(), local.hour, local.utcoffset())
    if interval == "DAY":
        return (local.date(),)
    if interval == "WEEK":
        return tuple(local.isocalendar()[:2])
    return (local.year, local.month)


def result_key(window_start_iso: str, interval: str, zone: ZoneInfo) -> tuple:
    return window_key(datetime.fromisoformat(window_start_iso), interval, zone)


def aggregate(events: list[dict], aggregation: str, interval: str, zone: ZoneInfo, group_by: str | None) -> dict:
    """{(tenantId, group value, window key): (value, count)} for the given live events."""
    buckets = defaultdict(list)
    for event in events:
        group = event["dimensions"].get(group_by) if group_by else None
        buckets[(event["tenantId"], group, window_key(event["at"], interval, zone))].append(event)
    result = {}
    for key, members in buckets.items():
        values = [Decimal(str(event["meterValue"])) for event in members]
        if aggregation == "SUM":
            value = sum(values)
        elif aggregation == "COUNT":
            value = Decimal(len(members))
        elif aggregation == "MIN":
            value = min(values)
        elif aggregation == "MAX":
            value = max(values)
        elif aggregation == "AVG":
            value = sum(values) / len(values)
        elif aggregation == "LATEST":
            value = Decimal(str(max(members, key=lambda event: (event["at"], event["eventId"]))["meterValue"]))
        else:
            value = Decimal(len({event["userId"] for event in members}))
        result[key] = (value, len(members))
    return result


def assert_rollups_hold(meter, total, count: int) -> None:
    """Every rollup span of ``meter`` adds up to ``total`` over ``count`` events."""
    from metering.models import ROLLUP_SPANS, UsageRollup

    for span in ROLLUP_SPANS:
        rows = UsageRollup.objects.filter(meter=meter, span=span)
        assert sum(row.total for row in rows) == total, span
        assert sum(row.count for row in rows) == count, span


def event_pool(prefix: str, meter, tenants, count: int, *, newest_minutes: int, spread_minutes: int) -> list[dict]:
    """``count`` events ``{prefix}-{index}`` of value ``index``, round-robin over ``tenants``,
    from ``newest_minutes`` ago back over ``spread_minutes``: for clients sending overlapping
    picks of them."""
    now = datetime.now(UTC) - timedelta(minutes=newest_minutes)
    return [
        {
            "eventId": f"{prefix}-{index}",
            "meterApiName": meter.api_name,
            "tenantId": str(tenants[index % len(tenants)].pk),
            "meterValue": index,
            "timestamp": (now - timedelta(minutes=index % spread_minutes)).isoformat(),
        }
        for index in range(count)
    ]


def run_threads(target, count: int) -> None:
    """``target(number)`` in ``count`` threads at once; fails if one is still running after 60 s."""
    threads = [threading.Thread(target=target, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a caller was left waiting"
