"""Time windows of usage queries (HOUR/DAY/WEEK/MONTH boundaries in any IANA time zone) and
the rollup buckets and spans that tile them. Pure time arithmetic: no database access."""

from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from metering.models import BUCKET_SECONDS, ROLLUP_SPANS

INTERVALS = ("HOUR", "DAY", "WEEK", "MONTH")


def bucket_of(moment: datetime) -> datetime:
    """The start of the 15-minute rollup bucket holding ``moment`` (UTC)."""
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % BUCKET_SECONDS, tz=UTC)


def span_bucket(moment: datetime, span: int) -> datetime:
    """The start of the ``span``-second rollup bucket holding ``moment`` (UTC-aligned)."""
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % span, tz=UTC)


def contiguous_ranges(buckets: list[datetime], length: timedelta) -> list[tuple[datetime, datetime]]:
    """Sorted ``buckets`` of ``length`` each, merged into [start, end) ranges where they touch."""
    ranges: list[list[datetime]] = []
    for bucket in buckets:
        if ranges and ranges[-1][1] == bucket:
            ranges[-1][1] = bucket + length
        else:
            ranges.append([bucket, bucket + length])
    return [(start, end) for start, end in ranges]


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


def rollup_span(boundaries: list[datetime], aggregation: str) -> int | None:
    """The coarsest rollup span whose buckets tile every window exactly, or None (raw events).

    UNIQUE_COUNT reads the 15-minute distinct-value store whatever the span."""
    spans = (BUCKET_SECONDS,) if aggregation == "UNIQUE_COUNT" else ROLLUP_SPANS
    for span in spans:
        if all(int(boundary.timestamp()) % span == 0 for boundary in boundaries):
            return span
    return None


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
