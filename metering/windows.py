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
        floor = floor if floor <= moment else floor - timedelta(hours=1)
        # an HOUR window is one wall-clock hour at one UTC offset: when the offset changed since
        # the hour began (Lord Howe's 30-minute fall-back repeats 01:30-02:00), the window
        # starts at the change
        offset = local.utcoffset()
        if floor.astimezone(zone).utcoffset() != offset:
            floor = _offset_change(floor, moment, zone, offset)
        return floor
    day = local.date()
    if interval == "WEEK":
        day -= timedelta(days=day.weekday())  # ISO weeks start on Monday
    elif interval == "MONTH":
        day = day.replace(day=1)
    floor = _local_midnight(day, zone)
    return floor if floor <= moment else _local_midnight(day - timedelta(days=1), zone)


def _offset_change(before: datetime, after: datetime, zone: ZoneInfo, offset: timedelta) -> datetime:
    """The first second in (before, after] at which ``zone`` has ``offset`` (it has another at
    ``before`` and this one at ``after``)."""
    while after - before > timedelta(seconds=1):
        middle = before + (after - before) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).utcoffset() == offset:
            after = middle
        else:
            before = middle
    return after


def _next_boundary(start: datetime, interval: str, zone: ZoneInfo) -> datetime:
    if interval == "HOUR":
        # HOUR windows last 30 minutes to 1.5 hours around DST changes: the first window start
        # after ``start``, probed every 30 minutes
        for minutes in (30, 60, 90, 120):
            candidate = window_floor(start + timedelta(minutes=minutes), interval, zone)
            if candidate > start:
                return candidate
        return start + timedelta(hours=1)
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


def window_index(boundaries: list[datetime], moment: datetime) -> int | None:
    """Index of the window holding ``moment``, or None outside [b0, bn)."""
    if moment < boundaries[0] or moment >= boundaries[-1]:
        return None
    return bisect_right(boundaries, moment) - 1
