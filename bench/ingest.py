"""Ingestion benchmark (not a test): prints figures and ratios measured side by side.

    .venv/bin/python bench/ingest.py [--batches 200] [--clients 4] [--single-seconds 10] [--file-mb 200]
                                     [--workers 2] [--threads 32] [--single-clients 64]
                                     [--prepared-statements on|off|both]

1. batch ingestion over HTTP: gunicorn with 2 worker processes (32 threads each), batches of
   1,000 events (dedup keys, raw partitioned table, rollups); its ceiling, the same writes
   without HTTP, is bench/ingest_ceiling.py (which reuses this module's setup);
2. single-event ingestion: one event per request, concurrent clients;
3. memory: resident size of `manage.py usage_ingest` on a generated JSON-lines file.

``--prepared-statements both`` instead measures what ``DATABASE_PREPARED_STATEMENTS=false`` (the
setting for PgBouncer in transaction mode before 1.21) costs: batch and single-event ingestion
with the server's hot-path statements prepared, then unprepared, each on a server of its own,
in the same run (``on`` or ``off`` runs the whole benchmark in that mode).

The API's rate limit and the tenants' ingestion quota are turned off for the server it starts.
"""

import argparse
import asyncio
import contextlib
import http.client
import io
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    PYTHON,
    ROOT,
    SERVERS,
    cpu_report,
    cpu_seconds,
    server_env,
    setup_django,
    start_gunicorn,
    start_postgres,
)
from bench.pgstats import with_application_name


def make_events(tenants: list[str], count: int, start_index: int) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {
            "eventId": f"bench-{index}",
            "meterApiName": "bench",
            "tenantId": tenants[index % len(tenants)],
            "meterValue": index % 97,
            # real-time traffic: most events are minutes old, one in twenty is up to a day late
            "timestamp": (now - timedelta(seconds=index % 86400 if index % 20 == 0 else index % 300)).isoformat(),
            "dimensions": {"region": ("eu", "us", "ap")[index % 3]},
        }
        for index in range(start_index, start_index + count)
    ]


def batch_bodies(tenants: list[str], batches: int, start: int) -> tuple[list[dict], list[bytes], list[bytes]]:
    """(measured events, warm-up bodies, measured bodies): bodies of 1,000 new events each, their
    ids numbered from ``start`` (the warm-up's ten batches, then ``batches`` to measure)."""
    warmup = [json.dumps({"events": make_events(tenants, 1000, start + i * 1000)}).encode() for i in range(10)]
    events = make_events(tenants, batches * 1000, start + 10_000_000)
    return (
        events,
        warmup,
        [json.dumps({"events": events[i : i + 1000]}).encode() for i in range(0, len(events), 1000)],
    )


def ingestion_setup(statement_stats: bool = False, application_name: str | None = None) -> tuple[str, list[str]]:
    """A throwaway PostgreSQL, migrated, with 100 tenants and the meter ``bench``: (its URL, the
    tenant ids). Servers started afterwards have the API's rate limit and the ingestion quota
    off: one token sends every request, far past the default rate per client and quota per
    tenant (docs/operations.md "Throttling and lockout"), and the figures measure ingestion.
    ``statement_stats`` preloads pg_stat_statements; this process's connections name themselves
    ``application_name`` (bench/pgstats.py tells the backends apart by it)."""
    os.environ["SBT_API_RATE_LIMIT"] = ""  # inherited through bench.common.server_env
    os.environ["SBT_USAGE_EVENTS_PER_MINUTE_PER_TENANT"] = "0"
    database_url = start_postgres(statement_stats)
    setup_django(with_application_name(database_url, application_name) if application_name else database_url)
    from metering.interface import MeterSpec
    from metering.services import meter_create
    from metering.tasks import ensure_partitions
    from tenants.models import Tenant

    ensure_partitions()
    tenants = [str(Tenant.objects.create(name=f"tenant-{index}").pk) for index in range(100)]
    meter_create(spec=MeterSpec(api_name="bench", label="bench", aggregation="SUM", dimensions=("region",)))
    return database_url, tenants


def post_all(
    address: str, token: str, bodies: list[bytes], clients: int, tls: ssl.SSLContext | None = None
) -> tuple[float, list[int]]:
    """Send every body with ``clients`` keep-alive connections (over TLS with ``tls``); (seconds, statuses)."""
    host, port = address.split(":")
    queue = list(reversed(bodies))
    lock = threading.Lock()
    statuses: list[int] = []

    def client():
        if tls:
            connection = http.client.HTTPSConnection(host, int(port), timeout=120, context=tls)
        else:
            connection = http.client.HTTPConnection(host, int(port), timeout=120)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            connection.request("POST", "/api/v1/usage", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            with lock:
                statuses.append(response.status)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, statuses


def single_events(
    address: str,
    token: str,
    tenants: list[str],
    seconds: float,
    clients: int,
    run: str = "single",
    tls: ssl.SSLContext | None = None,
) -> tuple[int, int]:
    """One event per request from ``clients`` concurrent keep-alive connections for ``seconds``;
    (events stored, requests that failed).

    The clients are asyncio streams in one thread writing HTTP/1.1 by hand: a thread per client
    with http.client spent about 2 ms of CPU per request on this 2-core machine (mostly GIL
    hand-offs), CPU the server under test then did not get. Each client starts at its own
    tenant, so the load is spread over the tenants as real traffic is, not all clients writing
    the same tenant in lockstep.
    """
    return asyncio.run(_single_events(address, token, tenants, seconds, clients, run, tls))


async def _single_events(
    address: str, token: str, tenants: list[str], seconds: float, clients: int, run: str, tls: ssl.SSLContext | None
):
    host, port = address.split(":")
    stop_at = time.perf_counter() + seconds
    stored, failed = 0, 0
    head = (
        f"POST /api/v1/usage HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )

    async def client(number: int):
        nonlocal stored, failed
        reader, writer = await asyncio.open_connection(host, int(port), ssl=tls)
        sent = 0
        while time.perf_counter() < stop_at:
            body = json.dumps(
                {"eventId": f"{run}-{number}-{sent}", "meterApiName": "bench",
                 "tenantId": tenants[(number * 7 + sent) % len(tenants)], "meterValue": 1}
            ).encode()  # fmt: skip
            writer.write(head.replace("{length}", str(len(body))).encode() + body)
            status_line = await reader.readline()
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"connection" and value.strip().lower() == b"close":
                    close = True  # a sync worker closes after each response: connect again
            await reader.readexactly(length)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port), ssl=tls)
            if status_line.split()[1] == b"201":
                stored += 1
            else:
                failed += 1
            sent += 1
        writer.close()

    await asyncio.gather(*(client(number) for number in range(clients)))
    return stored, failed


def memory_run(database_url: str, tenants: list[str], megabytes: int) -> tuple[float, int, float]:
    """(file size MB, peak RSS MB of usage_ingest, seconds)."""
    path = Path(tempfile.mkdtemp(prefix="sbt-bench-file.")) / "usage.jsonl"
    now = datetime.now(UTC)
    target = megabytes * 1024 * 1024
    with path.open("w") as handle:
        index = 0
        while handle.tell() < target:
            lines = io.StringIO()
            for _ in range(10000):
                lines.write(
                    json.dumps(
                        {"eventId": f"file-{index}", "meterApiName": "bench", "tenantId": tenants[index % len(tenants)],
                         "meterValue": index % 13, "timestamp": (now - timedelta(seconds=index % 86400)).isoformat(),
                         "dimensions": {"region": "eu"}}
                    ) + "\n"
                )  # fmt: skip
                index += 1
            handle.write(lines.getvalue())
    size = path.stat().st_size / 1024 / 1024
    started = time.perf_counter()
    process = subprocess.Popen(
        [PYTHON, "manage.py", "usage_ingest", str(path), "--no-progress"],
        cwd=ROOT, env=server_env(database_url), stdout=subprocess.DEVNULL,
    )  # fmt: skip
    peak_kb = 0
    while process.poll() is None:
        # VmHWM is the process's own peak resident size so far
        with contextlib.suppress(OSError), open(f"/proc/{process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        time.sleep(0.2)
    shutil.rmtree(path.parent, ignore_errors=True)
    if process.returncode != 0:
        sys.exit(f"usage_ingest failed with exit code {process.returncode}")
    return size, peak_kb // 1024, time.perf_counter() - started


def stop_gunicorn() -> None:
    """Stop the server start_gunicorn started last, so the next one has the CPU to itself."""
    pid = SERVERS.pop("gunicorn")
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)


def compare_prepared(database_url: str, token: str, tenants: list[str], args) -> None:
    """Batch and single-event ingestion with prepared statements on, then off, side by side."""
    figures = {}
    for number, mode in enumerate(("true", "false")):
        os.environ["DATABASE_PREPARED_STATEMENTS"] = mode
        address = start_gunicorn(database_url, workers=args.workers, threads=args.threads)
        events, warmup, bodies = batch_bodies(tenants, args.batches, (number + 1) * 100_000_000)
        post_all(address, token, warmup, args.clients)
        before = cpu_seconds()
        seconds, statuses = post_all(address, token, bodies, args.clients)
        batch_cpu = cpu_report(before, cpu_seconds(), len(events))
        assert set(statuses) == {201}, set(statuses)
        before = cpu_seconds()
        single, failed = single_events(
            address, token, tenants, args.single_seconds, args.single_clients, run=f"prepared-{mode}"
        )
        single_cpu = cpu_report(before, cpu_seconds(), single)
        assert not failed, f"{failed} single-event requests failed"
        # CPU per event holds better than events/s on a machine others share
        figures[mode] = (len(events) / seconds, single / args.single_seconds, batch_cpu, single_cpu)
        stop_gunicorn()
    os.environ.pop("DATABASE_PREPARED_STATEMENTS")
    server = f"{args.workers} gunicorn workers x {args.threads} threads"
    print(f"prepared statements on vs off (DATABASE_PREPARED_STATEMENTS), {server}, same run:")
    for label, index in (("batches of 1,000", 0), (f"single events, {args.single_clients} clients", 1)):
        on, off = figures["true"][index], figures["false"][index]
        print(f"  {label}: on {on:,.0f} events/s, off {off:,.0f} events/s (off / on {off / on:.2f})")
        print(f"    on:  {figures['true'][index + 2]}")
        print(f"    off: {figures['false'][index + 2]}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=200, help="batches of 1,000 events sent over HTTP")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--single-seconds", type=float, default=10)
    parser.add_argument("--single-clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=32,
        help="gunicorn threads per worker, as docs/operations.md runs it (concurrent small requests share a commit)",
    )
    parser.add_argument(
        "--prepared-statements",
        choices=("on", "off", "both"),
        default="on",
        help="DATABASE_PREPARED_STATEMENTS of the server; both: compare the two side by side (only that)",
    )
    parser.add_argument("--file-only", action="store_true", help="only the file memory run")
    parser.add_argument("--file-mb", type=int, default=200, help="size of the file for the memory run (0: skip)")
    args = parser.parse_args()
    database_url, tenants = ingestion_setup()  # the usage_ingest run inherits the limits off too
    from bench.common import make_token

    if args.file_only:
        size, rss, file_seconds = memory_run(database_url, tenants, args.file_mb)
        print(f"usage_ingest of a {size:,.0f} MB JSON-lines file: peak RSS {rss} MB, {file_seconds:.0f} s")
        return
    token = make_token()
    if args.prepared_statements == "both":
        compare_prepared(database_url, token, tenants, args)
        return
    os.environ["DATABASE_PREPARED_STATEMENTS"] = "true" if args.prepared_statements == "on" else "false"
    address = start_gunicorn(database_url, workers=args.workers, threads=args.threads)

    events, warmup, bodies = batch_bodies(tenants, args.batches, 0)
    post_all(address, token, warmup, args.clients)

    cpu_before = cpu_seconds()
    seconds, statuses = post_all(address, token, bodies, args.clients)
    batch_cpu = cpu_report(cpu_before, cpu_seconds(), len(events))
    assert set(statuses) == {201}, set(statuses)
    http_rate = len(events) / seconds
    again_seconds, _ = post_all(address, token, bodies[:20], args.clients)
    server = f"{args.workers} gunicorn workers x {args.threads} threads"
    print(f"batch ingestion over HTTP: {len(events)} events in {seconds:.2f} s = {http_rate:,.0f} events/s "
          f"({server}, {args.clients} clients, batches of 1,000)")  # fmt: skip
    print(f"  {batch_cpu}")
    resent = min(20, len(bodies)) * 1000
    print(f"  resending {resent:,} events (all duplicates): {resent / again_seconds:,.0f} events/s")
    print("  (the ceiling, the same writes without HTTP, and the ratio: bench/ingest_ceiling.py)")

    cpu_before = cpu_seconds()
    single, failed = single_events(address, token, tenants, args.single_seconds, args.single_clients)
    single_cpu = cpu_report(cpu_before, cpu_seconds(), single)
    assert not failed, f"{failed} single-event requests failed"
    print(
        f"single-event ingestion: {single / args.single_seconds:,.0f} events/s ({args.single_clients} clients, "
        f"{args.workers} gunicorn workers x {args.threads} threads)"
    )
    print(f"  {single_cpu}")

    if args.file_mb:
        size, rss, file_seconds = memory_run(database_url, tenants, args.file_mb)
        print(f"usage_ingest of a {size:,.0f} MB JSON-lines file: peak RSS {rss} MB, {file_seconds:.0f} s")
    os.environ.pop("DATABASE_URL", None)


if __name__ == "__main__":
    main()
