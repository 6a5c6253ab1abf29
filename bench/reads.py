"""Authenticated-read benchmark (not a test): the real ``GET /api/v1/tenants`` (a page of 100)
and ``GET /api/v1/usage/{meterId}`` (one tenant, 30 daily windows) against bare Django views
returning the same JSON from the same rows (bench/reads_urls.py), served by the same gunicorn
and measured alternately in one run: requests/s and gunicorn CPU per request side by side.

    .venv/bin/python bench/reads.py [--tenants 1000] [--seconds 10] [--clients 16] [--rounds 2]
    .venv/bin/python bench/reads.py --in-process [--requests 100] [--rounds 5]

``--in-process`` serves the same reads through Django's test client in this process instead,
and reports the CPU per request (``time.process_time``, after 20 to warm up, the lowest of
``--rounds``): waiting for a core does not count, so the figure holds on a busy machine where
the rates do not.

The API's rate limit per client is off for the server (``SBT_API_RATE_LIMIT=``): one token sends
every request, and the figure is the cost of a read, not of the limit.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import cpu_seconds, setup_django, start_gunicorn, start_postgres


def reads_setup(tenant_count: int) -> tuple[str, str, str, str]:
    """A migrated PostgreSQL with ``tenant_count`` tenants and one tenant's 30 days of usage of
    the meter ``bench`` (an event every 10 minutes): (database URL, meter id, tenant id, query)."""
    os.environ["SBT_API_RATE_LIMIT"] = ""  # inherited through bench.common.server_env
    database_url = start_postgres()
    setup_django(database_url)
    from metering.interface import MeterSpec
    from metering.partitions import partitions_ensure_ahead
    from metering.services import meter_create, usage_events_ingest
    from tenants.models import Tenant

    tenants = Tenant.objects.bulk_create(
        [Tenant(name=f"tenant-{index}", email=f"ops@tenant-{index}.test", data={"plan": "gold"})
         for index in range(tenant_count)]
    )  # fmt: skip
    meter = meter_create(spec=MeterSpec(api_name="bench", label="bench", aggregation="SUM"))
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=30)
    partitions_ensure_ahead(now=start - timedelta(days=1), months_ahead=2)  # the 30 days measured
    tenant_id = str(tenants[0].pk)
    events = [
        {"eventId": f"read-{minute}", "meterApiName": "bench", "tenantId": tenant_id, "meterValue": minute % 7,
         "timestamp": (start + timedelta(minutes=minute)).isoformat()}
        for minute in range(0, 30 * 24 * 60, 10)
    ]  # fmt: skip
    for first in range(0, len(events), 1000):
        usage_events_ingest(events=events[first : first + 1000], enforce_quota=False)
    query = f"tenantId={tenant_id}&startTimeInSeconds={int(start.timestamp())}&endTimeInSeconds={int(end.timestamp())}"
    return database_url, str(meter.id), tenant_id, query


async def _get(reader, writer, request: bytes) -> tuple[bytes, bytes]:
    """One keep-alive GET: (status code, body)."""
    writer.write(request)
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status_line.split()[1], await reader.readexactly(length)


def get_once(address: str, path: str, token: str | None) -> bytes:
    async def once():
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        status, body = await _get(reader, writer, _request(address, path, token))
        writer.close()
        if status != b"200":
            sys.exit(f"GET {path} answered {status.decode()}: {body[:300]!r}")
        return body

    return asyncio.run(once())


def _request(address: str, path: str, token: str | None) -> bytes:
    authorization = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: {address}\r\n{authorization}\r\n".encode()


def load(address: str, path: str, token: str | None, seconds: float, clients: int) -> tuple[int, int]:
    """GET ``path`` from ``clients`` concurrent keep-alive connections (asyncio, one thread)
    for ``seconds``: (requests answered 200, other answers)."""

    async def run():
        host, port = address.split(":")
        request = _request(address, path, token)
        stop_at = time.perf_counter() + seconds
        done, failed = 0, 0

        async def client():
            nonlocal done, failed
            reader, writer = await asyncio.open_connection(host, int(port))
            while time.perf_counter() < stop_at:
                status, _ = await _get(reader, writer, request)
                if status == b"200":
                    done += 1
                else:
                    failed += 1
            writer.close()

        await asyncio.gather(*(client() for _ in range(clients)))
        return done, failed

    return asyncio.run(run())


def _without_token(body: bytes) -> dict:
    document = json.loads(body)
    document.pop("next_token", None)  # signed with a timestamp: differs from second to second
    return document


def in_process(requests: int, rounds: int, routes: dict, token: str) -> None:
    """CPU per request of each read through Django's test client (no server, no sockets): the
    lowest of ``rounds`` alternating measurements, the one least disturbed by other work."""
    from django.test import Client
    from django.test.utils import override_settings

    client = Client(HTTP_HOST="localhost")
    authorization = {"authorization": f"Bearer {token}"}
    print(f"in process, Django's test client: CPU per request, lowest of {rounds} rounds of {requests} requests")
    with override_settings(ROOT_URLCONF="bench.reads_urls"):
        for name, (real, bare) in routes.items():
            real_body, bare_body = client.get(real, headers=authorization).content, client.get(bare).content
            if _without_token(real_body) != _without_token(bare_body):
                sys.exit(f"{name}: the bare view's JSON differs from the API's")
            lowest = {}
            for _ in range(rounds):
                for label, path, headers in (("bare view", bare, {}), ("API", real, authorization)):
                    for _ in range(20):
                        client.get(path, headers=headers)
                    started = time.process_time()
                    for _ in range(requests):
                        if client.get(path, headers=headers).status_code != 200:
                            sys.exit(f"{name} ({label}): a request did not answer 200")
                    per_request = (time.process_time() - started) / requests * 1e3
                    lowest[label] = min(lowest.get(label, per_request), per_request)
            print(f"{name}: bare view {lowest['bare view']:.2f} ms, API {lowest['API']:.2f} ms, "
                  f"bare / API {lowest['bare view'] / lowest['API']:.2f}")  # fmt: skip


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--in-process", action="store_true", help="CPU per request through Django's test client")
    parser.add_argument("--requests", type=int, default=100, help="with --in-process: requests per measurement")
    args = parser.parse_args()

    database_url, meter_id, _, query = reads_setup(args.tenants)
    from bench.common import make_token

    token = make_token()
    routes = {
        "tenants, page of 100": ("/api/v1/tenants?limit=100", "/bare/tenants"),
        "usage, one tenant, 30 days": (
            f"/api/v1/usage/{meter_id}?{query}&limit=100",
            f"/bare/usage/{meter_id}?{query}",
        ),
    }
    if args.in_process:
        in_process(args.requests, args.rounds, routes, token)
        return
    address = start_gunicorn(database_url, workers=2, threads=32, settings="bench.reads_settings")
    for name, (real, bare) in routes.items():
        real_body, bare_body = get_once(address, real, token), get_once(address, bare, None)
        if _without_token(real_body) != _without_token(bare_body) or ("next_token" in json.loads(real_body)) != (
            "next_token" in json.loads(bare_body)
        ):
            sys.exit(f"{name}: the bare view's JSON differs from the API's:\n{real_body[:400]!r}\n{bare_body[:400]!r}")
        print(f"{name}: the bare view returns the same JSON ({len(real_body):,} bytes)")

    print(f"gunicorn 2 workers x 32 threads, {args.clients} keep-alive clients, {args.seconds:.0f} s per measurement")
    for round_number in range(1, args.rounds + 1):
        for name, (real, bare) in routes.items():
            rates = {}
            for label, path, bearer in (("bare view", bare, None), ("API", real, token)):
                before = cpu_seconds()
                started = time.perf_counter()
                done, failed = load(address, path, bearer, args.seconds, args.clients)
                elapsed = time.perf_counter() - started
                after = cpu_seconds()
                if failed:
                    sys.exit(f"{name} ({label}): {failed} requests did not answer 200")
                rates[label] = done / elapsed
                # PostgreSQL's CPU is left out: a backend that exits meanwhile takes its CPU with it
                per_request = {key: (after[key] - before[key]) / done * 1e3 for key in ("gunicorn", "benchmark client")}
                print(f"round {round_number}, {name}, {label}: {rates[label]:,.0f} requests/s; CPU per request: "
                      + ", ".join(f"{key} {value:.2f} ms" for key, value in per_request.items()))  # fmt: skip
            print(f"round {round_number}, {name}: API / bare view {rates['API'] / rates['bare view']:.2f}")


if __name__ == "__main__":
    main()
