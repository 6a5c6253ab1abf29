"""Batch ingestion over HTTP against its ceiling, the same writes without HTTP (not a test):

    .venv/bin/python bench/ingest_ceiling.py [--batches 200] [--clients 4] [--rounds 1]
                                             [--workers 2] [--threads 32]
    .venv/bin/python bench/ingest_ceiling.py --profile [--profile-runs 100] [--against ../other-checkout]

The ceiling runs the native provider's ingestion statements (metering/providers/native/ingest.py:
the dedup keys, the partitioned raw table, the rollups) in this process, on batches of 1,000
events already validated, from as many threads (each with its own connection) as the HTTP run
has clients, each batch in its own transaction as ``usage_events_ingest`` stores it. The HTTP
run sends the same kind of batches (new event ids, same tenants, meter, timestamps and
dimensions) to gunicorn as ``POST /api/v1/usage``: everything the ceiling does, plus HTTP, JSON
parsing, authentication and validation. Both run in the same process against the same
PostgreSQL, ``--rounds`` times (the ceiling first in odd rounds, HTTP first in even ones), and
print events/s, the ratio and the CPU per 1,000 events of each side.

On a machine shared with other work a rate tells little; the CPU per 1,000 events does better,
so the ratio is also printed from CPU: the ceiling's CPU (PostgreSQL + this process) over the
HTTP path's (PostgreSQL + gunicorn), what the rates' ratio would be with the cores to itself.

``--profile`` profiles (cProfile) what the web side does to a 1,000-event body before the writes:
the strict JSON parse and the validation (``usage_events_validate``), and the whole request in
Django's test client, then prints the CPU of each per batch (``time.process_time``). With
``--against``, another checkout's parser and validation are timed in turn with this one's, in
the same process.
"""

import argparse
import cProfile
import importlib.util
import pstats
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SERVERS, cpu_seconds, make_token, start_gunicorn
from bench.ingest import batch_bodies, ingestion_setup, post_all, stop_gunicorn
from bench.pgstats import PostgresMonitor, counters_delta, cpu_by_role, with_application_name


def validated_batches(bodies: list[bytes]) -> list[list]:
    """Each body's events as validation returns them (UsageEventIn), ready for the provider."""
    from metering.services.validation import usage_events_validate
    from sbt_site import strict_json

    return [usage_events_validate(events=strict_json.loads(body)["events"], client_tenant_id=None) for body in bodies]


def ceiling_run(batches: list[list], threads: int, measure: Callable = lambda: None) -> tuple[float, object]:
    """(seconds, what ``measure`` returned) to store ``batches`` with the provider's statements
    from ``threads`` threads, each batch in its own transaction
    (``metering.services.ingest._store``). ``measure`` runs once every batch is stored and
    before the threads give their connections back: without the pool (DATABASE_POOL=false)
    their backends then end, as the HTTP side's never do."""
    from django.db import connection, transaction

    from metering.services.common import provider

    queue = list(reversed(batches))
    lock = threading.Lock()
    failures: list[BaseException] = []
    stored, release = threading.Barrier(threads + 1), threading.Event()

    def worker():
        try:
            while True:
                with lock:
                    if not queue:
                        break
                    batch = queue.pop()
                with transaction.atomic():
                    (result,) = provider().ingest_many([batch])
                assert result.accepted == len(batch), result
        except BaseException as exc:  # noqa: BLE001 (reported by the main thread)
            failures.append(exc)
        finally:
            stored.wait()
            release.wait()
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    stored.wait()
    seconds = time.perf_counter() - started
    measured = measure()
    release.set()
    for thread in workers:
        thread.join()
    if failures:
        raise failures[0]
    return seconds, measured


def cpu_per_thousand(before: dict, after: dict, events: int) -> dict[str, float]:
    return {name: (after[name] - before.get(name, 0)) / events * 1e6 for name in after}


def describe(cpu: dict[str, float], names: dict[str, str]) -> str:
    return ", ".join(f"{label} {cpu[name]:.1f} ms" for name, label in names.items())


CEILING_NAME, HTTP_NAME = "bench-ceiling", "bench-http"  # application_name of each side's connections
BACKGROUND = ("checkpointer", "walwriter", "background writer", "autovacuum launcher", "autovacuum worker")


def postgres_lines(cpu: dict[str, float], counters: dict[str, float], own: str, events: int) -> list[str]:
    """PostgreSQL's CPU per 1,000 events split by role (``own``: this side's backends), and its
    WAL and buffer writes."""
    per = 1000 / events
    other = sum(seconds for role, seconds in cpu.items() if role not in (own, *BACKGROUND, "ended in the window"))
    background = ", ".join(f"{role} {cpu.get(role, 0.0) * per * 1000:.1f}" for role in BACKGROUND)
    return [
        f"PostgreSQL CPU per 1,000 events: this side's backends {cpu.get(own, 0.0) * per * 1000:.1f} ms; "
        f"background: {background}, ended in the window {cpu['ended in the window'] * per * 1000:.1f}, "
        f"postmaster and other backends {other * per * 1000:.1f} ms",
        "per 1,000 events: " + ", ".join(f"{name} {value * per:,.1f}" for name, value in counters.items()),
    ]


def compare(args) -> None:
    database_url, tenants = ingestion_setup(statement_stats=args.statement_stats, application_name=CEILING_NAME)
    monitor = PostgresMonitor(database_url, SERVERS["postgres"])
    token = make_token()
    address = start_gunicorn(with_application_name(database_url, HTTP_NAME), workers=args.workers, threads=args.threads)
    # Every connection's first batches pay for its start (catalog caches, the staging table, the
    # prepared statements' plans): gunicorn has a connection per thread, so its warm-up sends
    # enough batches to reach them all; the ceiling's threads have a connection each.
    _, _, warmup = batch_bodies(tenants, args.warmup_batches, 900_000_000)
    post_all(address, token, warmup, args.clients)
    _, _, ceiling_warmup = batch_bodies(tenants, 5 * args.clients, 950_000_000)
    ceiling_run(validated_batches(ceiling_warmup), args.clients)
    rows = []

    def reading_take():
        return cpu_seconds(), monitor.read()

    for round_number in range(args.rounds):
        start = round_number * 2 * 100_000_000
        http_events, _, http_bodies = batch_bodies(tenants, args.batches, start)
        _, _, ceiling_bodies = batch_bodies(tenants, args.batches, start + 100_000_000)
        ceiling_batches = validated_batches(ceiling_bodies)
        events = len(http_events)

        # PostgreSQL's background work (autovacuum, checkpoints) after a run is billed to the
        # next in the whole tree's figure: the order alternates so that neither side always pays
        # for the other, and the backends of each side are counted apart (bench/pgstats.py)
        sides = {}
        for side in ("ceiling", "http") if round_number % 2 == 0 else ("http", "ceiling"):
            monitor.statements_reset()
            before, reading = reading_take()
            if side == "ceiling":
                seconds, (after, later) = ceiling_run(ceiling_batches, args.clients, reading_take)
            else:
                seconds, statuses = post_all(address, token, http_bodies, args.clients)
                assert set(statuses) == {201}, set(statuses)
                after, later = reading_take()
            sides[side] = (
                events / seconds,
                cpu_per_thousand(before, after, events),
                cpu_by_role(reading, later),
                counters_delta(reading, later),
                monitor.statements_top(events),
            )
        rows.append(sides)
        print(f"round {round_number + 1} of {args.rounds} done", file=sys.stderr)
    stop_gunicorn()

    server = f"{args.workers} gunicorn workers x {args.threads} threads"
    print(f"batch ingestion, batches of 1,000, {args.clients} concurrent senders, {args.batches:,} batches a side:")
    for number, sides in enumerate(rows, start=1):
        (ceiling_rate, ceiling_cpu, ceiling_roles, ceiling_counters, ceiling_statements) = sides["ceiling"]
        (http_rate, http_cpu, http_roles, http_counters, http_statements) = sides["http"]
        print(f" round {number}:")
        print(f"  ceiling, the provider's statements in-process: {ceiling_rate:,.0f} events/s")
        ceiling_names = {"postgres": "PostgreSQL's whole tree", "benchmark client": "in-process Python"}
        print(f"    CPU per 1,000 events: {describe(ceiling_cpu, ceiling_names)}")
        for line in [*postgres_lines(ceiling_roles, ceiling_counters, CEILING_NAME, events), *ceiling_statements]:
            print(f"    {line}")
        print(f"  HTTP, POST /api/v1/usage ({server}): {http_rate:,.0f} events/s")
        http_names = {"postgres": "PostgreSQL's whole tree", "gunicorn": "web", "benchmark client": "HTTP client"}
        print(f"    CPU per 1,000 events: {describe(http_cpu, http_names)}")
        for line in [*postgres_lines(http_roles, http_counters, HTTP_NAME, events), *http_statements]:
            print(f"    {line}")
        tree = (ceiling_cpu["postgres"] + ceiling_cpu["benchmark client"]) / (
            http_cpu["postgres"] + http_cpu["gunicorn"]
        )
        per = 1e6 / events
        own = (ceiling_roles.get(CEILING_NAME, 0) * per + ceiling_cpu["benchmark client"]) / (
            http_roles.get(HTTP_NAME, 0) * per + http_cpu["gunicorn"]
        )
        print(
            f"  ratio HTTP / ceiling: {http_rate / ceiling_rate:.2f} by rate, {own:.2f} by CPU "
            f"(each side's own backends; {tree:.2f} billing PostgreSQL's whole tree to the side)"
        )


def profile(args) -> None:
    """cProfile of what the web side does with one 1,000-event body, then its CPU by
    ``time.process_time``: the strict JSON parse, the validation, and the whole request in
    Django (its test client: everything gunicorn runs but the HTTP parsing, including the
    writes)."""
    _, tenants = ingestion_setup()
    from django.test import Client

    from metering.services.validation import usage_events_validate
    from sbt_site import strict_json

    token = make_token()
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
    _, _, (body,) = batch_bodies(tenants, 1, 0)
    runs = iter(range(1, 1_000_000))

    def validate():
        usage_events_validate(events=strict_json.loads(body)["events"], client_tenant_id=None)

    def request():
        # new event ids each time, so every request stores its 1,000 events
        fresh = body.replace(b'"bench-', f'"run-{next(runs)}-'.encode())
        response = client.post("/api/v1/usage", fresh, content_type="application/json")
        assert response.status_code == 201, response.content

    for name, step in (("parse + validate", validate), ("whole request", request)):
        step()
        profiler = cProfile.Profile(time.process_time)  # CPU, not waiting for PostgreSQL
        profiler.enable()
        for _ in range(20):
            step()
        profiler.disable()
        print(f"--- {name}: cProfile of 20 runs")
        pstats.Stats(profiler).sort_stats(args.profile_sort).print_stats(args.profile_lines)
    steps = [("parse", lambda: strict_json.loads(body)), ("parse + validate", validate), ("whole request", request)]
    if args.against:
        # the other checkout's parser and validation, timed in turn with this one's in this
        # process: a busy machine slows both alike
        other_json = _module_from(Path(args.against) / "sbt_site/strict_json.py", "other_strict_json")
        other_validation = _module_from(Path(args.against) / "metering/services/validation.py", "other_validation")
        steps[2:2] = [
            (f"parse, {args.against}", lambda: other_json.loads(body)),
            (
                f"parse + validate, {args.against}",
                lambda: other_validation.usage_events_validate(
                    events=other_json.loads(body)["events"], client_tenant_id=None
                ),
            ),
        ]
    spent = dict.fromkeys((name for name, _ in steps), 0.0)
    for _ in range(args.profile_runs // 10):
        for name, step in steps:
            started = time.process_time()
            for _ in range(10):
                step()
            spent[name] += time.process_time() - started
    for name, seconds in spent.items():
        print(f"{name}: {seconds / (args.profile_runs // 10 * 10) * 1000:.2f} ms of CPU per 1,000 events")


def _module_from(path: Path, name: str):
    """The module in ``path`` loaded under ``name``, beside this checkout's own."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=200, help="batches of 1,000 events on each side, per round")
    parser.add_argument("--clients", type=int, default=4, help="concurrent senders: HTTP clients, ceiling threads")
    parser.add_argument("--rounds", type=int, default=1, help="ceiling then HTTP, this many times")
    parser.add_argument(
        "--warmup-batches", type=int, default=200, help="sent over HTTP first: enough to reach every gunicorn thread"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=32, help="gunicorn threads per worker")
    parser.add_argument(
        "--statement-stats",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="preload pg_stat_statements and print each side's statements (--no-statement-stats: without it)",
    )
    parser.add_argument("--profile", action="store_true", help="profile parsing and validation instead")
    parser.add_argument("--profile-runs", type=int, default=100)
    parser.add_argument("--profile-lines", type=int, default=30)
    parser.add_argument("--against", help="with --profile: another checkout (e.g. a worktree of the code before)")
    parser.add_argument("--profile-sort", default="tottime", help="a pstats sort key: tottime, cumulative, ...")
    args = parser.parse_args()
    if args.profile:
        profile(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
