"""Rollup time zones (``RollupZone``): answers read from a zone's local-day rows are exactly the
reference's, whether the rows were backfilled or written by ingestion, after cancellations and
rebuilds, with a zone added while clients ingest; the query really reads them; the command."""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.db.models import F

from metering.models import Meter, RollupZone, UsageRollup
from metering.selectors import usage_windows
from metering.services import rollup_zone_add, rollup_zone_remove, rollup_zones_list, usage_events_ingest
from metering.tests.reference import run_threads
from metering.tests.test_usage_correctness import (
    INTERVALS,
    LONG_BACKDATING,
    MIXED_STRETCHES,
    aggregation_meter,
    all_pages,
    assert_matches_reference,
    cancel_some,
    edge_events,
    ingest_shuffled,
    random_events,
)
from metering.windows import window_boundaries
from sbt_site.errors import InvalidInput, NotFound

# New York changes its offset at 02:00 local, Lord Howe by 30 minutes, Kathmandu is +05:45
ZONES = ["America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe"]
RANGE = (datetime(2025, 9, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))


def zone_rows(name: str) -> int:
    return UsageRollup.objects.filter(span=RollupZone.objects.get(name=name).span).count()


@pytest.mark.django_db
@LONG_BACKDATING
@pytest.mark.parametrize("aggregation", Meter.Aggregation.values)
def test_answers_from_zone_days_match_the_reference(aggregation, make_tenant, make_meter):
    rng = random.Random(f"zones-{aggregation}")
    tenants = [make_tenant("a"), make_tenant("b"), make_tenant("c")]
    meter = aggregation_meter(make_meter, "z-" + aggregation.lower(), aggregation)
    events = random_events(rng, tenants, meter.api_name, 300, MIXED_STRETCHES)
    events += edge_events(rng, tenants, meter.api_name, 300)
    first, second = events[::2], events[1::2]
    ingest_shuffled(rng, first)
    for name in ZONES[:2]:
        rollup_zone_add(name=name)  # backfilled from the first half
    ingest_shuffled(rng, second)  # written by ingestion
    for name in ZONES[2:]:
        rollup_zone_add(name=name)  # backfilled from both halves
    live = cancel_some(rng, events, 40)  # rebuilt days: every zone's local days refreshed
    assert all(zone.ready for zone in rollup_zones_list())
    for name in ZONES:
        assert zone_rows(name) > 0
        # hours never read the zone rows (test_usage_correctness covers them)
        for interval in ("DAY", "WEEK", "MONTH"):
            assert_matches_reference(meter, live, name, interval, "region" if interval == "DAY" else None, RANGE)


@pytest.mark.django_db
@LONG_BACKDATING
def test_day_week_and_month_answers_read_the_zone_rows(make_tenant, make_meter):
    rng = random.Random("zone-reads")
    tenants = [make_tenant("a"), make_tenant("b")]
    meter = make_meter("reads", "SUM", dimensions=("region",))
    ingest_shuffled(rng, random_events(rng, tenants, meter.api_name, 400, MIXED_STRETCHES))
    query = {"meter": meter, "tenant_id": None, "start": RANGE[0], "end": RANGE[1]}
    answers = {
        (interval, zone): usage_windows(**query, interval=interval, time_zone=zone)
        for interval in INTERVALS
        for zone in ("UTC", "America/New_York")
    }
    rollup_zone_add(name="America/New_York")
    for key, answer in answers.items():
        assert usage_windows(**query, interval=key[0], time_zone=key[1]) == answer, key
    # Skew the New York rows by one per row (test data, not code): only New York's days, weeks
    # and months change, by as many rows as each window has; hours and UTC read other rows.
    span = RollupZone.objects.get(name="America/New_York").span
    UsageRollup.objects.filter(span=span).update(total=F("total") + 1)
    for (interval, zone), answer in answers.items():
        skewed = usage_windows(**query, interval=interval, time_zone=zone)
        if zone == "UTC" or interval == "HOUR":
            assert skewed == answer, (interval, zone)
        else:
            assert [window.event_count for window in skewed] == [window.event_count for window in answer]
            assert all(new.value > old.value for new, old in zip(skewed, answer, strict=True)), interval
    # the rebuild command repairs them from the raw events, as it does every span
    call_command("usage_rollup_rebuild", "--meter", "reads", "--from", "2025-09-01", "--to", "2026-05-01",
                 "--no-progress")  # fmt: skip
    for (interval, zone), answer in answers.items():
        assert usage_windows(**query, interval=interval, time_zone=zone) == answer, (interval, zone)
    # removed: its rows are gone and the answers are read from the UTC-aligned rows again
    rollup_zone_remove(name="America/New_York")
    assert not UsageRollup.objects.filter(span=span).exists()
    for (interval, zone), answer in answers.items():
        assert usage_windows(**query, interval=interval, time_zone=zone) == answer, (interval, zone)


@pytest.mark.django_db
@LONG_BACKDATING
def test_pages_of_the_zone_answer_concatenate_to_the_whole(make_tenant, make_meter):
    rng = random.Random("zone-pages")
    tenants = [make_tenant(f"t{index}") for index in range(6)]
    meter = make_meter("paged", "SUM", dimensions=("region",))
    ingest_shuffled(rng, random_events(rng, tenants, meter.api_name, 300, MIXED_STRETCHES))
    rollup_zone_add(name="Asia/Kolkata")
    query = {"meter": meter, "start": RANGE[0], "end": RANGE[1], "time_zone": "Asia/Kolkata", "group_by": "region"}
    whole = usage_windows(tenant_id=None, **query)
    assert len(whole) > 10
    for limit in (1, 4):
        assert all_pages(limit, **query) == whole, f"pages of {limit}"


@pytest.mark.django_db(transaction=True)
def test_a_zone_added_while_clients_ingest_misses_no_event(make_tenant, make_meter):
    tenants = [make_tenant(f"t{index}") for index in range(4)]
    meter = make_meter("busy", "SUM")
    now = datetime.now(UTC)
    failures = []

    def client(number: int) -> None:
        try:
            if number == 0:
                rollup_zone_add(name="Asia/Kolkata")
                return
            for batch in range(12):
                usage_events_ingest(
                    events=[
                        {
                            "eventId": f"c{number}-{batch}-{index}",
                            "meterApiName": "busy",
                            "tenantId": str(tenants[index % 4].pk),
                            "meterValue": 1,
                            "timestamp": (now - timedelta(hours=index % 40)).isoformat(),
                        }
                        for index in range(60)
                    ]
                )
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)
        finally:
            connections.close_all()

    run_threads(client, 5)
    assert failures == []
    boundaries = window_boundaries(now - timedelta(days=3), now + timedelta(days=1), "DAY", ZoneInfo("Asia/Kolkata"))
    windows = usage_windows(
        meter=meter, tenant_id=None, start=boundaries[0], end=boundaries[-1], time_zone="Asia/Kolkata"
    )
    assert sum(window.value for window in windows) == 4 * 12 * 60
    kolkata = RollupZone.objects.get(name="Asia/Kolkata")
    assert kolkata.ready
    per_tenant = {}
    for row in UsageRollup.objects.filter(span=kolkata.span):
        per_tenant[row.tenant_id] = per_tenant.get(row.tenant_id, 0) + row.count
    assert per_tenant == {tenant.pk: 4 * 12 * 15 for tenant in tenants}


@pytest.mark.django_db
@LONG_BACKDATING
def test_the_command_lists_adds_and_removes_zones(capsys, tenant, make_meter):
    make_meter("cmd", "COUNT")
    usage_events_ingest(
        events=[{"meterApiName": "cmd", "tenantId": str(tenant.pk), "timestamp": "2026-03-01T12:00:00Z"}]
    )
    call_command("metering_rollup_zones", "list")
    assert "No rollup time zones" in capsys.readouterr().out
    call_command("metering_rollup_zones", "add", "America/New_York", "Asia/Kolkata")
    out = capsys.readouterr()
    assert "Added America/New_York: ready" in out.out and "Added Asia/Kolkata: ready" in out.out
    assert "backfill America/New_York" in out.err  # the progress bar
    call_command("metering_rollup_zones", "list")
    listed = capsys.readouterr().out
    assert "America/New_York\tready" in listed and "Asia/Kolkata\tready" in listed
    assert zone_rows("America/New_York") == 1
    call_command("metering_rollup_zones", "remove", "Asia/Kolkata")
    assert "Removed Asia/Kolkata" in capsys.readouterr().out
    assert [zone.name for zone in rollup_zones_list()] == ["America/New_York"]
    with pytest.raises(CommandError, match="Rollup time zone Asia/Kolkata not found"):
        call_command("metering_rollup_zones", "remove", "Asia/Kolkata")
    with pytest.raises(CommandError, match="Unknown IANA time zone 'Mars/Olympus'"):
        call_command("metering_rollup_zones", "add", "Mars/Olympus")
    assert "backfill" not in capsys.readouterr().err, "no progress bar for a zone that is refused"
    with pytest.raises(CommandError, match="Name the zones to add"):
        call_command("metering_rollup_zones", "add")


@pytest.mark.django_db
def test_bad_zones_are_refused_and_nothing_is_added():
    for name, message in [
        ("Europe/Nowhere", "Unknown IANA time zone"),
        ("../etc/passwd", "Unknown IANA time zone"),
        ("UTC", "UTC days are rolled up already"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            rollup_zone_add(name=name)
    with pytest.raises(NotFound):
        rollup_zone_remove(name="America/New_York")
    assert not RollupZone.objects.exists()


@pytest.mark.django_db
def test_the_console_lists_the_zones_and_says_how_to_add_one(admin_client):
    RollupZone.objects.create(name="Asia/Kolkata", ready=True)
    page = admin_client.get("/admin/metering/rollupzone/")
    assert page.status_code == 200
    assert "Asia/Kolkata" in page.content.decode()
    assert "manage.py metering_rollup_zones add America/New_York" in page.content.decode()
    assert page.context["has_add_permission"] is False
    assert admin_client.get("/admin/metering/rollupzone/add/").status_code == 403
