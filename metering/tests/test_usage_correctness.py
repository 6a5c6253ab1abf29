"""Every aggregation against a plain-Python reference over the same seeded random events,
across windows, time zones (UTC, New York across a DST change, Kolkata), group-by, late
events, duplicates and cancellations."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections
from django.test import override_settings

from metering.interface import UsageQuery, usage_window_order
from metering.models import ROLLUP_SPANS, Meter, UsageEvent
from metering.providers.native import MAX_PIECES, rollup_pieces, usage_windows_portable
from metering.selectors import usage_windows
from metering.services import usage_events_cancel, usage_events_ingest
from metering.tests.reference import aggregate, assert_rollups_hold, event_pool, result_key, run_threads
from metering.windows import window_boundaries

# Two stretches of time: one crossing a month end, one crossing New York's 2025 fall-back
# (2025-11-02 06:00 UTC) — and Kolkata's +05:30 day boundaries everywhere.
STRETCHES = [
    (datetime(2025, 6, 27, tzinfo=UTC), datetime(2025, 7, 3, tzinfo=UTC)),
    (datetime(2025, 10, 30, tzinfo=UTC), datetime(2025, 11, 4, tzinfo=UTC)),
]
QUERY_RANGE = (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC))
ZONES = ["UTC", "America/New_York", "Asia/Kolkata"]
INTERVALS = ["HOUR", "DAY", "WEEK", "MONTH"]
LONG_BACKDATING = override_settings(SBT={"USAGE_MAX_BACKDATE_DAYS": 36500})


def random_events(rng: random.Random, tenants, meter_api_name: str, count: int, stretches=STRETCHES) -> list[dict]:
    events = []
    for index in range(count):
        start, end = rng.choice(stretches)
        at = start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))
        if events and rng.random() < 0.1:
            at = events[-1]["at"]  # same instant: LATEST breaks the tie by eventId
        events.append(
            {
                "eventId": f"evt-{index:05d}",
                "meterApiName": meter_api_name,
                "tenantId": str(rng.choice(tenants).pk),
                "meterValue": str(Decimal(rng.randrange(-5000, 100000)) / 1000),
                "timestamp": at.isoformat() if rng.random() < 0.5 else int(at.timestamp() * 1000),
                "dimensions": {"region": rng.choice(["eu", "us", "ap"])} if rng.random() < 0.9 else {},
                "userId": f"user-{rng.randrange(40)}",
                "at": at,
            }
        )
    return events


def aggregation_meter(make_meter, api_name: str, aggregation: str):
    """A meter of ``aggregation`` grouping by region; UNIQUE_COUNT counts ``userId``."""
    unique_property = "userId" if aggregation == "UNIQUE_COUNT" else ""
    return make_meter(api_name, aggregation, dimensions=("region",), unique_property=unique_property)


def cancel_some(rng: random.Random, events: list[dict], count: int) -> list[dict]:
    """Cancel ``count`` random events through the service; the live rest."""
    cancelled = set(rng.sample([event["eventId"] for event in events], count))
    assert usage_events_cancel(client_tenant_id=None, event_ids=sorted(cancelled)) == count
    return [event for event in events if event["eventId"] not in cancelled]


def wire(events: list[dict]) -> list[dict]:
    return [{key: value for key, value in event.items() if key != "at"} for event in events]


def ingest_shuffled(rng: random.Random, events: list[dict]) -> None:
    """In random order (late events), in batches, each batch partly resent (duplicates)."""
    shuffled = events[:]
    rng.shuffle(shuffled)
    for start in range(0, len(shuffled), 97):
        batch = wire(shuffled[start : start + 97])
        usage_events_ingest(events=batch)
        usage_events_ingest(events=batch[: len(batch) // 3])


def assert_matches_reference(meter, live, zone_name, interval, group_by, time_range=QUERY_RANGE):
    zone = ZoneInfo(zone_name)
    windows = usage_windows(
        meter=meter,
        tenant_id=None,
        start=time_range[0],
        end=time_range[1],
        interval=interval,
        time_zone=zone_name,
        group_by=group_by,
    )
    got = {
        (
            str(window.tenant_id),
            window.group.get(group_by) if group_by else None,
            result_key(window.window_start.astimezone(zone).isoformat(), interval, zone),
        ): (window.value, window.event_count)
        for window in windows
    }
    expected = aggregate(live, meter.aggregation, interval, zone, group_by)
    assert len(got) == len(windows), "each (tenant, group, window) must appear once"
    assert set(got) == set(expected)
    for key, (value, count) in expected.items():
        got_value, got_count = got[key]
        assert got_count == count, key
        if meter.aggregation == "AVG":
            assert abs(got_value - value) < Decimal("1e-9"), key
        else:
            assert got_value == value, key
    for window in windows:
        assert window.window_start < window.window_end
    portable = usage_windows_portable(
        UsageQuery(
            meter_id=meter.pk,
            aggregation=meter.aggregation,
            tenant_id=None,
            start=time_range[0],
            end=time_range[1],
            interval=interval,
            time_zone=zone_name,
            group_by=group_by,
        )
    )
    assert portable == windows, "the SQLite/fallback path must give the same answer"
    # keyset pages (computed in SQL on PostgreSQL) concatenate to the whole answer
    pages = all_pages(
        7, meter=meter, start=time_range[0], end=time_range[1], interval=interval, time_zone=zone_name,
        group_by=group_by,
    )  # fmt: skip
    assert pages == windows, "paging must neither skip nor repeat a result"


def all_pages(limit: int, **query) -> list:
    """Every all-tenants usage window of ``query``, read page by page (``limit`` per page)."""
    pages, after = [], None
    while True:
        page = usage_windows(tenant_id=None, after=after, limit=limit, **query)
        pages += page
        if len(page) < limit:
            return pages
        after = usage_window_order(page[-1])


@pytest.mark.django_db
@LONG_BACKDATING
@pytest.mark.parametrize("aggregation", Meter.Aggregation.values)  # every aggregation a meter can have
def test_every_aggregation_matches_the_reference(aggregation, make_tenant, make_meter):
    rng = random.Random(f"metering-{aggregation}")
    tenants = [make_tenant("a"), make_tenant("b")]
    meter = aggregation_meter(make_meter, "m-" + aggregation.lower(), aggregation)
    events = random_events(rng, tenants, meter.api_name, 600)
    ingest_shuffled(rng, events)
    live = cancel_some(rng, events, 60)
    cancelled = sorted({event["eventId"] for event in events} - {event["eventId"] for event in live})
    assert usage_events_cancel(client_tenant_id=None, event_ids=cancelled) == 0, "cancelling twice"
    assert UsageEvent.objects.filter(cancelled_at__isnull=True).count() == len(live)
    assert UsageEvent.objects.count() == len(events), "cancelled events stay stored"
    for zone_name in ZONES:
        for interval in INTERVALS:
            for group_by in (None, "region"):
                assert_matches_reference(meter, live, zone_name, interval, group_by)


# Windows read from mixed spans (``rollup_pieces``): 15-minute rows at unaligned window edges,
# hourly rows, daily rows for the whole UTC days inside — over ranges short enough that the
# query does not fall back to one span (MAX_PIECES). Nepal is +05:45, Lord Howe +10:30 with
# 30-minute DST changes (forward 2025-10-05: a 30-minute HOUR window 02:30-03:00; back 2026-04-05:
# 01:30-02:00 twice, the second time its own window), New York changes on 2025-11-02.
MIXED_ZONES = ["Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Australia/Lord_Howe"]
MIXED_STRETCHES = [
    (datetime(2025, 10, 1, tzinfo=UTC), datetime(2025, 10, 8, tzinfo=UTC)),
    (datetime(2025, 10, 29, tzinfo=UTC), datetime(2025, 11, 5, tzinfo=UTC)),
    (datetime(2026, 4, 2, tzinfo=UTC), datetime(2026, 4, 7, tzinfo=UTC)),
]


def edge_events(rng: random.Random, tenants, meter_api_name: str, count: int) -> list[dict]:
    """Events on and around the windows' boundaries in every zone: one second before, on, after,
    and a quarter or an hour away (the last or first bucket of a piece)."""
    instants = sorted(
        {
            boundary
            for zone in MIXED_ZONES
            for start, end in MIXED_STRETCHES
            for interval in ("HOUR", "DAY")
            for boundary in window_boundaries(start, end, interval, ZoneInfo(zone))
            if start <= boundary < end
        }
    )
    events = random_events(rng, tenants, meter_api_name, count, MIXED_STRETCHES)
    for index, event in enumerate(events):
        offset = rng.choice([-3600, -901, -900, -899, -1, 0, 1, 899, 900, 3599, 3600])
        event["eventId"] = f"edge-{index:05d}"
        event["at"] = rng.choice(instants) + timedelta(seconds=offset)
        event["timestamp"] = event["at"].isoformat()
    return events


@pytest.mark.django_db
@LONG_BACKDATING
@pytest.mark.parametrize("aggregation", Meter.Aggregation.values)  # every aggregation a meter can have
def test_windows_read_from_mixed_spans_match_the_reference(aggregation, make_tenant, make_meter):
    rng = random.Random(f"pieces-{aggregation}")
    tenants = [make_tenant("a"), make_tenant("b")]
    meter = aggregation_meter(make_meter, "p-" + aggregation.lower(), aggregation)
    events = random_events(rng, tenants, meter.api_name, 300, MIXED_STRETCHES)
    events += edge_events(rng, tenants, meter.api_name, 300)
    ingest_shuffled(rng, events)
    live = cancel_some(rng, events, 40)
    spans_read = set()
    for zone_name in MIXED_ZONES:
        for interval in INTERVALS:
            # a window starting and ending mid-range: the stretches start and end at UTC midnight,
            # mid-window for every zone here
            for start, end in MIXED_STRETCHES if interval in ("HOUR", "DAY") else [QUERY_RANGE]:
                boundaries = window_boundaries(start, end, interval, ZoneInfo(zone_name))
                pieces = rollup_pieces(boundaries)
                assert len(pieces) <= MAX_PIECES, "this test is about the pieces, not the one-span fallback"
                spans_read |= {span for span, _, _ in pieces}
                inside = [event for event in live if boundaries[0] <= event["at"] < boundaries[-1]]
                for group_by in (None, "region"):
                    assert_matches_reference(meter, inside, zone_name, interval, group_by, (start, end))
    assert spans_read == set(ROLLUP_SPANS)


@pytest.mark.django_db
@LONG_BACKDATING
@pytest.mark.parametrize("zone_name", ["UTC", "Asia/Kolkata"])
def test_pages_skip_tenants_without_usage_in_the_range(zone_name, make_tenant, make_meter):
    # a page's tenants are found one index descent at a time: tenants whose usage of the meter is
    # all outside the range, and other meters' tenants, must neither appear nor end paging early
    rng = random.Random(f"page-tenants-{zone_name}")
    tenants = [make_tenant(f"t{index}") for index in range(8)]
    meter, other = (
        make_meter("paged", "SUM", dimensions=("region",)),
        make_meter("other", "SUM", dimensions=("region",)),
    )
    inside, outside = MIXED_STRETCHES[:2]
    by_uuid = sorted(tenants, key=lambda tenant: str(tenant.pk))
    events = []
    for position, tenant in enumerate(by_uuid):
        # in uuid order: both stretches, outside only (twice in a row), inside only, ...
        stretches = [[inside, outside], [outside], [outside], [inside]][position % 4]
        events += random_events(rng, [tenant], meter.api_name, 30, stretches)
        events += random_events(rng, [tenant], other.api_name, 10, [inside])
    for index, event in enumerate(events):
        event["eventId"] = f"pt-{index:05d}"
    ingest_shuffled(rng, events)
    boundaries = window_boundaries(*inside, "DAY", ZoneInfo(zone_name))
    live = [
        event
        for event in events
        if event["meterApiName"] == meter.api_name and boundaries[0] <= event["at"] < boundaries[-1]
    ]
    assert {event["tenantId"] for event in live} != {str(tenant.pk) for tenant in tenants}
    for group_by in (None, "region"):
        assert_matches_reference(meter, live, zone_name, "DAY", group_by, inside)
        whole = usage_windows(
            meter=meter, tenant_id=None, start=inside[0], end=inside[1], time_zone=zone_name, group_by=group_by
        )
        for limit in (1, 2):
            query = {"meter": meter, "start": inside[0], "end": inside[1], "time_zone": zone_name, "group_by": group_by}
            assert all_pages(limit, **query) == whole, f"pages of {limit}"


@pytest.mark.django_db
@LONG_BACKDATING
def test_new_york_days_around_the_dst_change_are_23_24_and_25_hours(tenant, make_meter):
    meter = make_meter("dst", "COUNT")
    hours = [datetime(2025, 11, 1, 4, tzinfo=UTC) + timedelta(minutes=30 * step) for step in range(4 * 48)]
    usage_events_ingest(
        events=[{"meterApiName": "dst", "tenantId": str(tenant.pk), "timestamp": at.isoformat()} for at in hours]
    )
    windows = usage_windows(
        meter=meter,
        tenant_id=tenant.pk,
        start=datetime(2025, 11, 1, 4, tzinfo=UTC),
        end=datetime(2025, 11, 4, 5, tzinfo=UTC),
        time_zone="America/New_York",
    )
    lengths = [(window.window_end - window.window_start) for window in windows]
    assert lengths[:3] == [timedelta(hours=24), timedelta(hours=25), timedelta(hours=24)]
    assert [window.value for window in windows[:3]] == [48, 50, 48]


@pytest.mark.django_db
@LONG_BACKDATING
@pytest.mark.parametrize("aggregation", ["SUM", "LATEST", "UNIQUE_COUNT"])
def test_a_zone_whose_windows_are_not_whole_buckets_is_read_exactly_from_raw_events(
    aggregation, make_tenant, make_meter
):
    # Liberia kept its local mean time (-00:44:30) until 1972: its days start at 00:44:30 UTC.
    rng = random.Random(f"monrovia-{aggregation}")
    tenants = [make_tenant("a")]
    meter = aggregation_meter(make_meter, "m", aggregation)
    stretch = [(datetime(1971, 3, 1, tzinfo=UTC), datetime(1971, 3, 5, tzinfo=UTC))]
    events = random_events(rng, tenants, meter.api_name, 200, stretch)
    ingest_shuffled(rng, events)
    time_range = (datetime(1971, 2, 25, tzinfo=UTC), datetime(1971, 3, 10, tzinfo=UTC))
    for interval in ("HOUR", "DAY"):
        assert_matches_reference(meter, events, "Africa/Monrovia", interval, None, time_range)


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_clients_with_overlapping_batches_count_each_event_once(make_tenant, make_meter):
    tenants = [make_tenant("a"), make_tenant("b")]
    meter = make_meter("concurrent", "SUM")
    pool = event_pool("c", meter, tenants, 1500, newest_minutes=5, spread_minutes=240)
    failures = []

    def client(number: int) -> None:
        rng = random.Random(number)
        try:
            for _ in range(4):
                start = rng.randrange(0, 1200)
                batch = pool[start : start + 300]
                rng.shuffle(batch)
                usage_events_ingest(events=batch)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)
        finally:
            connections.close_all()

    run_threads(client, 10)
    assert failures == []
    sent = set()
    for number in range(10):
        rng = random.Random(number)
        for _ in range(4):
            start = rng.randrange(0, 1200)
            sent |= {event["eventId"] for event in pool[start : start + 300]}
            rng.shuffle(pool[start : start + 300])
    assert UsageEvent.objects.count() == len(sent)
    expected_total = sum(int(event_id.split("-")[1]) for event_id in sent)
    assert_rollups_hold(meter, expected_total, len(sent))
    assert connection.vendor == "postgresql"
