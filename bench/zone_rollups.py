"""What rollup time zones cost ingestion (not a test): the same batches stored in-process with
the provider's statements (``bench/ingest_ceiling.py``'s ceiling: 1,000 events a batch, each in
its own transaction, from 4 threads) with no rollup time zone and with New York and Kolkata
added, side by side in one run, the order alternating by round.

    .venv/bin/python bench/zone_rollups.py [--batches 100] [--rounds 4]

What they buy queries is in ``bench/query.py`` (the whole answers before and after adding them).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import cpu_seconds
from bench.ingest import batch_bodies, ingestion_setup
from bench.ingest_ceiling import ceiling_run, cpu_per_thousand, validated_batches

ZONES = ("America/New_York", "Asia/Kolkata")


def zones_set(wanted: bool) -> None:
    from metering.services import rollup_zone_add, rollup_zone_remove, rollup_zones_list

    present = {zone.name for zone in rollup_zones_list()}
    for name in ZONES:
        if wanted and name not in present:
            rollup_zone_add(name=name)
        elif not wanted and name in present:
            rollup_zone_remove(name=name)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=100, help="batches of 1,000 events per side and round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    _, tenants = ingestion_setup()
    from django.db import connection

    _, _, warmup = batch_bodies(tenants, 5 * args.threads, 950_000_000)
    ceiling_run(validated_batches(warmup), args.threads)
    figures = {False: [], True: []}
    for number in range(args.rounds):
        for with_zones in (False, True) if number % 2 == 0 else (True, False):
            zones_set(with_zones)
            _, _, bodies = batch_bodies(tenants, args.batches, (2 * number + with_zones) * 100_000_000)
            batches = validated_batches(bodies)
            events = sum(len(batch) for batch in batches)
            before = cpu_seconds()
            # read before the threads give their connections back (see ceiling_run)
            seconds, after = ceiling_run(batches, args.threads, measure=cpu_seconds)
            cpu = cpu_per_thousand(before, after, events)
            figures[with_zones].append((events / seconds, cpu["postgres"], cpu["benchmark client"]))
        print(f"round {number + 1} of {args.rounds} done", file=sys.stderr)
    with connection.cursor() as cursor:
        cursor.execute("SELECT span < 0, count(*) FROM metering_usagerollup GROUP BY 1 ORDER BY 1")
        rows = dict(cursor.fetchall())
    print(f"in-process ingestion, batches of 1,000 from {args.threads} threads, {args.batches} batches a side:")
    for number, (without, with_zones) in enumerate(zip(figures[False], figures[True], strict=True), start=1):
        print(f" round {number}:")
        for label, (rate, postgres, python) in (("no rollup time zone", without), ("New York + Kolkata", with_zones)):
            print(f"  {label}: {rate:,.0f} events/s; CPU per 1,000 events: PostgreSQL {postgres:.1f} ms, "
                  f"Python {python:.1f} ms")  # fmt: skip
        print(f"  with / without: {with_zones[0] / without[0]:.2f} by rate, "
              f"{(without[1] + without[2]) / (with_zones[1] + with_zones[2]):.2f} by CPU")  # fmt: skip
    print(f"rollup rows at the end: {rows.get(False, 0):,} UTC-aligned, {rows.get(True, 0):,} of the two zones")


if __name__ == "__main__":
    main()
