"""Usage-query benchmark (not a test): prints figures and ratios measured side by side.

    .venv/bin/python bench/query.py [--events 10000000] [--tenants 1000] [--runs 200]

Generates the events with one INSERT … SELECT over generate_series (the fastest bulk path; the
rollups are then built with the same aggregation the ingestion performs), checks a sample of
answers against the raw events, and times a 30-day daily query for one tenant and for all
tenants, from the rollups and from the raw events; then adds New York and Kolkata as rollup time
zones and times their queries again, side by side.
"""

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, setup_django, start_postgres

GENERATE_SQL = """
INSERT INTO metering_usageevent
    (tenant_id, meter_id, event_id, "timestamp", value, unique_value, dimensions, ingested_at)
SELECT tenants.ids[1 + g %% %(tenants)s], %(meter)s, 'gen-' || g,
       %(end)s - (random() * interval '30 days'), (g %% 100)::numeric, '', '{}'::jsonb, %(end)s
FROM generate_series(1, %(events)s) g,
     (SELECT array_agg(id ORDER BY id) AS ids FROM tenants_tenant) tenants
"""

ROLLUP_SQL = """
INSERT INTO metering_usagerollup
    (meter_id, tenant_id, span, bucket, dimensions, total, count, minimum, maximum, last_at, last_event_id, last_value)
SELECT meter_id, tenant_id, span, to_timestamp(floor(extract(epoch FROM "timestamp") / span) * span), dimensions,
       sum(value), count(*), min(value), max(value),
       max("timestamp"), (array_agg(event_id ORDER BY "timestamp" DESC, event_id DESC))[1],
       (array_agg(value ORDER BY "timestamp" DESC, event_id DESC))[1]
FROM metering_usageevent CROSS JOIN (VALUES (86400), (3600), (900)) AS spans (span)
WHERE cancelled_at IS NULL
GROUP BY meter_id, tenant_id, span, 4, dimensions
ORDER BY span, 4  -- live ingestion writes rollups as time goes by: time-ordered, as here
"""

RAW_SQL = """
SELECT tenant_id, width_bucket("timestamp", %(bounds)s::timestamptz[]) AS window, sum(value), count(*)
FROM metering_usageevent
WHERE meter_id = %(meter)s AND cancelled_at IS NULL AND "timestamp" >= %(start)s AND "timestamp" < %(end)s {tenant}
GROUP BY 1, 2
"""


ZONES = ("America/New_York", "Asia/Kolkata")


def timed(function, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()

    setup_django(start_postgres())
    from zoneinfo import ZoneInfo

    from django.db import connection

    from metering.api.serializers import usage_window_data
    from metering.interface import MeterSpec, usage_window_order
    from metering.models import Meter
    from metering.partitions import partitions_ensure_ahead
    from metering.selectors import usage_windows
    from metering.services import meter_create, rollup_zone_add
    from metering.windows import window_boundaries
    from tenants.models import Tenant

    Tenant.objects.bulk_create([Tenant(name=f"tenant-{index}") for index in range(args.tenants)])
    meter = Meter.objects.get(pk=meter_create(spec=MeterSpec(api_name="bench", label="bench", aggregation="SUM")).id)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=30)
    partitions_ensure_ahead(now=start - timedelta(days=1), months_ahead=2)  # the 30 days measured

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(GENERATE_SQL, {"tenants": args.tenants, "meter": meter.pk, "end": end, "events": args.events})
        generated = time.perf_counter() - started
        cursor.execute(ROLLUP_SQL)
        cursor.execute("VACUUM ANALYZE metering_usageevent")
        cursor.execute("VACUUM ANALYZE metering_usagerollup")
    print(f"generated {args.events:,} events for {args.tenants} tenants over 30 days in {generated:.0f} s; "
          f"rollups and VACUUM ANALYZE in {time.perf_counter() - started - generated:.0f} s")  # fmt: skip

    tenants = list(Tenant.objects.values_list("pk", flat=True))
    rng = random.Random(1)

    def raw(tenant_id=None, zone="UTC"):
        bounds = window_boundaries(start, end, "DAY", ZoneInfo(zone))
        with connection.cursor() as cursor:
            cursor.execute(
                RAW_SQL.format(tenant="AND tenant_id = %(tenant)s" if tenant_id else ""),
                {"bounds": bounds, "meter": meter.pk, "start": bounds[0], "end": bounds[-1], "tenant": tenant_id},
            )
            return {(row[0], bounds[row[1] - 1]): (row[2], row[3]) for row in cursor.fetchall()}

    def rollup(tenant_id=None, zone="UTC"):
        windows = usage_windows(meter=meter, tenant_id=tenant_id, start=start, end=end, interval="DAY", time_zone=zone)
        return {(window.tenant_id, window.window_start): (window.value, window.event_count) for window in windows}

    for zone in ("UTC", "Asia/Kolkata"):
        for tenant_id in rng.sample(tenants, 5):
            assert rollup(tenant_id, zone) == raw(tenant_id, zone), f"rollup and raw answers differ ({zone})"
        assert rollup(None, zone) == raw(None, zone), f"rollup and raw answers differ (all tenants, {zone})"
    print("answers from rollups and from raw events are identical (5 tenants and all tenants, UTC and Kolkata)")

    for zone in ("UTC", "America/New_York", "Asia/Kolkata"):
        one = timed(lambda zone=zone: rollup(rng.choice(tenants), zone), args.runs)
        print(f"one tenant, 30 daily windows, {zone}: p50 {statistics.median(one):.1f} ms, "
              f"p95 {percentile(one, 0.95):.1f} ms")  # fmt: skip
    one_raw = timed(lambda: raw(rng.choice(tenants)), max(20, args.runs // 4))
    one = timed(lambda: rollup(rng.choice(tenants)), args.runs)
    one_ratio = percentile(one_raw, 0.95) / percentile(one, 0.95)
    print(
        f"one tenant from raw events (UTC): p50 {statistics.median(one_raw):.1f} ms, "
        f"p95 {percentile(one_raw, 0.95):.1f} ms; ratio raw/rollup (p95) {one_ratio:.1f}x"
    )

    # The whole all-tenants answer as the selector returns it (a list of 30,000 results). Until
    # 2026-11-25 22:53 the figure also included this script turning it into a dict keyed by
    # (tenant, window) for the comparisons above: printed too, for comparison with older runs.
    def answer(zone="UTC"):
        return usage_windows(meter=meter, tenant_id=None, start=start, end=end, interval="DAY", time_zone=zone)

    every = timed(answer, 20)
    every_dict = timed(rollup, 10)
    every_raw = timed(raw, 3)
    every_ratio = statistics.median(every_raw) / statistics.median(every)
    print(
        f"all tenants, 30 daily windows (UTC): p50 {statistics.median(every):.0f} ms, "
        f"p95 {percentile(every, 0.95):.0f} ms; from raw events p50 {statistics.median(every_raw):.0f} ms; "
        f"ratio {every_ratio:.1f}x (with this script's dict of the answer, as timed before: "
        f"p50 {statistics.median(every_dict):.0f} ms)"
    )
    zoned_raw = {zone: statistics.median(timed(lambda zone=zone: raw(None, zone), 3)) for zone in ZONES}

    def zoned_figures() -> dict[str, tuple[float, float, float, float]]:
        """Per zone: the whole answer's p50 and p95, one tenant's p95, a page of 100's p95 (ms)."""
        figures = {}
        for zone in ZONES:
            whole = timed(lambda zone=zone: answer(zone), 20)
            one = timed(lambda zone=zone: rollup(rng.choice(tenants), zone), args.runs)
            paged = timed(lambda zone=zone: answer_page(zone), args.runs)
            figures[zone] = (statistics.median(whole), percentile(whole, 0.95), percentile(one, 0.95),
                             percentile(paged, 0.95))  # fmt: skip
        return figures

    def answer_page(zone):
        return usage_windows(
            meter=meter, tenant_id=None, start=start, end=end, interval="DAY", time_zone=zone, limit=101,
            after=rng.choice(zone_cursors[zone]),
        )  # fmt: skip

    zone_cursors = {}
    for zone in ZONES:
        whole = answer(zone)
        zone_cursors[zone] = [None] + [usage_window_order(whole[rng.randrange(len(whole))]) for _ in range(50)]
    before = zoned_figures()
    # Rollup time zones (docs/metering.md): the same queries after adding New York and Kolkata,
    # whose local days are then backfilled from the 15-minute rows
    added = {}
    for zone in ZONES:
        started = time.perf_counter()
        rollup_zone_add(name=zone)
        added[zone] = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE metering_usagerollup")
    for zone in ZONES:
        assert rollup(None, zone) == raw(None, zone), f"answers from the zone rows and raw events differ ({zone})"
        for tenant_id in rng.sample(tenants, 5):
            assert rollup(tenant_id, zone) == raw(tenant_id, zone), f"one tenant's answers differ ({zone})"
    print("answers from the rollup time zones' rows and from raw events are identical (all tenants and 5)")
    after = zoned_figures()
    for zone in ZONES:
        (whole_50, whole_95, one_95, page_95), (zone_50, zone_95, zone_one_95, zone_page_95) = before[zone], after[zone]
        print(f"all tenants, 30 daily windows ({zone}): p50 {whole_50:.0f} ms, p95 {whole_95:.0f} ms; "
              f"from raw events p50 {zoned_raw[zone]:.0f} ms")  # fmt: skip
        print(f"  with {zone} as a rollup time zone (backfilled in {added[zone]:.1f} s): p50 {zone_50:.0f} ms, "
              f"p95 {zone_95:.0f} ms ({whole_50 / zone_50:.1f}x faster at p50); "
              f"one tenant p95 {one_95:.1f} -> {zone_one_95:.1f} ms; "
              f"a page of 100 p95 {page_95:.1f} -> {zone_page_95:.1f} ms")  # fmt: skip

    # What a client gets per request: GET /usage/{meterId} without tenantId returns one page
    # (limit default 10, max 100) and a next_token; the view asks the selector for limit + 1
    # results after the cursor and serialises the page, as timed here (first page, and pages
    # from cursors spread over the answer). Until this change the view computed the whole answer
    # above and sliced it, so its per-request cost was the whole-answer figure.
    whole = usage_windows(meter=meter, tenant_id=None, start=start, end=end, interval="DAY")
    utc = ZoneInfo("UTC")

    def page(limit, after, zone="UTC"):
        windows = usage_windows(
            meter=meter, tenant_id=None, start=start, end=end, interval="DAY", time_zone=zone,
            after=after, limit=limit + 1,
        )  # fmt: skip
        return [usage_window_data(window, utc) for window in windows[:limit]]

    cursors = [None] + [usage_window_order(whole[rng.randrange(len(whole))]) for _ in range(50)]
    for first, after in zip(page(10, None), whole[:10], strict=True):
        assert first == usage_window_data(after, utc), "the first page differs from the whole answer"
    for zone in ("UTC", *ZONES):
        for limit in (10, 100):
            paged = timed(lambda limit=limit, zone=zone: page(limit, rng.choice(cursors), zone), args.runs)
            print(f"all tenants, one page of {limit} ({zone}), as the API serves it: "
                  f"p50 {statistics.median(paged):.1f} ms, p95 {percentile(paged, 0.95):.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
