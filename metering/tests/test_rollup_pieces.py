"""How a usage query cuts its windows into pieces, each read from the coarsest rollup span that
tiles it (``rollup_pieces``): the pieces tile [b0, bn) exactly, every piece is whole buckets of
its span, every bucket lies in one window, and a finer span is used only where no coarser bucket
fits inside the window."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metering.models import ROLLUP_SPANS
from metering.providers.native import rollup_pieces
from metering.windows import INTERVALS, window_boundaries

DAY, HOUR, QUARTER = ROLLUP_SPANS
ZONES = [
    "UTC",
    "America/New_York",  # whole hours, DST
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # +10:30, and a 30-minute DST change
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/St_Johns",  # -03:30 / -02:30
]


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def assert_pieces_are_exact_and_coarsest(boundaries: list[datetime]) -> list[tuple]:
    pieces = rollup_pieces(boundaries)
    assert pieces is not None
    edges = [epoch(boundary) for boundary in boundaries]
    # sorted, contiguous, covering [b0, bn) and nothing else
    assert epoch(pieces[0][1]) == edges[0] and epoch(pieces[-1][2]) == edges[-1]
    for (_, _, end), (_, start, _) in pairwise(pieces):
        assert end == start
    for span, start, end in pieces:
        lo, hi = epoch(start), epoch(end)
        assert span in ROLLUP_SPANS and lo < hi
        assert lo % span == 0 and hi % span == 0, "a piece is whole buckets of its span"
        # every bucket of the piece lies in one window: a boundary inside it is a bucket edge
        assert all(edge % span == 0 for edge in edges if lo < edge < hi)
    # coarsest: inside any window, a finer span never covers a whole bucket of a coarser one
    for window_start, window_end in pairwise(edges):
        for span, start, end in pieces:
            lo, hi = max(epoch(start), window_start), min(epoch(end), window_end)
            for coarser in (s for s in ROLLUP_SPANS if s > span):
                first = -(-lo // coarser) * coarser
                assert first + coarser > hi, (span, start, end, coarser)
    return pieces


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("interval", INTERVALS)
def test_pieces_of_a_month_of_windows(zone, interval):
    start = datetime(2025, 9, 20, tzinfo=UTC)
    end = start + (timedelta(days=3) if interval == "HOUR" else timedelta(days=75))
    assert_pieces_are_exact_and_coarsest(window_boundaries(start, end, interval, ZoneInfo(zone)))


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    interval=st.sampled_from(INTERVALS),
    start=st.integers(
        min_value=epoch(datetime(2024, 1, 1, tzinfo=UTC)), max_value=epoch(datetime(2027, 1, 1, tzinfo=UTC))
    ),
    hours=st.integers(min_value=1, max_value=24 * 100),
)
def test_pieces_of_any_range(zone, interval, start, hours):
    begin = datetime.fromtimestamp(start, UTC)
    if interval == "HOUR":
        hours = min(hours, 24 * 5)
    assert_pieces_are_exact_and_coarsest(
        window_boundaries(begin, begin + timedelta(hours=hours), interval, ZoneInfo(zone))
    )


def test_a_kolkata_day_is_two_quarters_hours_and_two_quarters():
    boundaries = window_boundaries(
        datetime(2025, 11, 10, 18, 30, tzinfo=UTC),
        datetime(2025, 11, 12, 18, 30, tzinfo=UTC),
        "DAY",
        ZoneInfo("Asia/Kolkata"),
    )
    assert [
        (span, start.strftime("%d %H:%M"), end.strftime("%d %H:%M")) for span, start, end in rollup_pieces(boundaries)
    ] == [
        (QUARTER, "10 18:30", "10 19:00"),
        (HOUR, "10 19:00", "11 18:00"),
        (QUARTER, "11 18:00", "11 19:00"),  # the end of one day and the start of the next
        (HOUR, "11 19:00", "12 18:00"),
        (QUARTER, "12 18:00", "12 18:30"),
    ]


def test_kolkata_weeks_and_months_read_whole_utc_days_from_the_daily_rows():
    zone = ZoneInfo("Asia/Kolkata")
    for interval in ("WEEK", "MONTH"):
        boundaries = window_boundaries(
            datetime(2025, 10, 1, tzinfo=UTC), datetime(2025, 11, 30, tzinfo=UTC), interval, zone
        )
        spans = [span for span, _, _ in assert_pieces_are_exact_and_coarsest(boundaries)]
        assert set(spans) == {DAY, HOUR, QUARTER}
        # per window: one daily range, hours and two quarters at each edge
        assert spans.count(DAY) == len(boundaries) - 1


def test_utc_and_whole_hour_zones_need_one_range():
    start, end = datetime(2025, 10, 1, tzinfo=UTC), datetime(2025, 11, 30, tzinfo=UTC)
    assert [span for span, _, _ in rollup_pieces(window_boundaries(start, end, "DAY", ZoneInfo("UTC")))] == [DAY]
    assert [
        span for span, _, _ in rollup_pieces(window_boundaries(start, end, "DAY", ZoneInfo("America/New_York")))
    ] == [HOUR]
    # a New York week across the fall-back change (2025-11-02): hours, whole UTC days, hours
    week = window_boundaries(
        datetime(2025, 10, 29, tzinfo=UTC), datetime(2025, 10, 30, tzinfo=UTC), "WEEK", ZoneInfo("America/New_York")
    )
    assert (week[0], week[1]) == (datetime(2025, 10, 27, 4, tzinfo=UTC), datetime(2025, 11, 3, 5, tzinfo=UTC))
    assert [span for span, _, _ in assert_pieces_are_exact_and_coarsest(week)] == [HOUR, DAY, HOUR]


def test_windows_that_are_not_whole_quarters_have_no_pieces():
    # Liberia's local mean time (-00:44:30) until 1972
    boundaries = window_boundaries(
        datetime(1971, 3, 1, tzinfo=UTC), datetime(1971, 3, 3, tzinfo=UTC), "DAY", ZoneInfo("Africa/Monrovia")
    )
    assert rollup_pieces(boundaries) is None
