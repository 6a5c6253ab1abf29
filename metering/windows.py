"""Time windows of usage queries: HOUR/DAY/WEEK/MONTH boundaries in any IANA time zone."""

from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from metering.models import BUCKET_SECONDS

INTERVALS = ("HOUR", "DAY", "WEEK", "MONTH")


def bucket_of(moment: datetime) -> datetime:
    """The start of the 15-minute rollup bucket holding ``moment`` (UTC)."""
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % BUCKET_SECONDS, tz=UTC)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def window_floor(moment: datetime, interval: str, zone: ZoneInfo) -> datetime:
    """The start (UTC) of the ``interval`` window of ``zone`` that holds ``moment``."""
    local = moment.astimezone(zone)
    if interval == "HOUR":
        floor = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        # a wall-clock hour can start after ``moment`` around a half-hour DST shift
        return floor if floor <= moment else floor - timedelta(hours=1)
    day = local.date()
    if interval == "WEEK":
        day -= timedelta(days=day.weekday())  # ISO weeks start on Monday
    elif interval == "MONTH":
        day = day.replace(day=1)
    floor = _local_midnight(day, zone)
    return floor if floor <= moment else _local_midnight(day - timedelta(days=1), zone)


def _next_boundary(start: datetime, interval: str, zone: ZoneInfo) -> datetime:
    if interval == "HOUR":
        candidate = window_floor(start + timedelta(hours=1, minutes=59), interval, zone)
        return candidate if candidate > start else start + timedelta(hours=1)
    local_day = start.astimezone(zone).date()
    if interval == "DAY":
        day = local_day + timedelta(days=1)
    elif interval == "WEEK":
        day = local_day + timedelta(days=7)
    else:
        day = (local_day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return _local_midnight(day, zone)


def window_boundaries(start: datetime, end: datetime, interval: str, zone: ZoneInfo) -> list[datetime]:
    """Boundaries b0 < b1 < ... < bn of the windows that cover [start, end)."""
    boundaries = [window_floor(start, interval, zone)]
    while boundaries[-1] < end:
        boundaries.append(_next_boundary(boundaries[-1], interval, zone))
    return boundaries


def is_bucket_aligned(boundaries: list[datetime]) -> bool:
    """Whether every window is a whole number of rollup buckets (true for every zone in use
    today; false for some historical local mean times, which are then read from raw events)."""
    return all(int(boundary.timestamp()) % BUCKET_SECONDS == 0 for boundary in boundaries)


def window_index(boundaries: list[datetime], moment: datetime) -> int | None:
    """Index of the window holding ``moment``, or None outside [b0, bn)."""
    if moment < boundaries[0] or moment >= boundaries[-1]:
        return None
    return bisect_right(boundaries, moment) - 1
