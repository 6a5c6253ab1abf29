"""Soak of the scale-out topology (not a test): mixed traffic for ``--minutes`` through nginx,
printing every minute the resident memory of each process and PostgreSQL's connection count,
and at the end the errors (there must be none).

    .venv/bin/python bench/soak.py [--minutes 30]

The topology is the scale-out test's (bench/topology.py: the files under deploy/ rendered and
started): nginx terminating TLS in front of two gunicorn nodes (2 workers x 8 threads each),
two Celery workers and one beat on Redis, PostgreSQL (fsync on) behind PgBouncer in transaction
mode. The traffic, each kind in its own client threads through nginx:

- ingest: batches of 200 usage events, 2 clients, and single events, 2 clients;
- queries: ``GET /tenants`` (page of 100) and ``GET /usage/{meterId}`` for one tenant over 30 days;
- onboarding: ``POST /tenant-registrations`` every 2 s, each delivered as onboardingRequest;
- deliveries: ``POST /events`` (application-plane events) every second, to two subscriptions
  of a receiver on loopback answering in 50 ms.

An error is an unexpected status, a failed request, or a delivery failed or dead at the end (a
delivery still pending a minute after the traffic stopped counts as one too). Resident memory
is the sum over a process and its children (a gunicorn master and its workers, a Celery worker
and its pool), read from /proc.
"""

import argparse
import http.client
import json
import os
import ssl
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import make_token, server_env
from bench.fanout import start_receiver, start_redis
from bench.ingest import ingestion_setup

PROBE_TYPE = "soakProbe"


def tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and its descendants, in MB (0 when it has ended)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / 1e6


class Client:
    """One keep-alive HTTPS connection to nginx per thread; counts statuses and errors."""

    def __init__(self, port: int, token: str, certificate: Path):
        self.port, self.token = port, token
        self.context = ssl.create_default_context(cafile=str(certificate))
        self.local = threading.local()
        self.lock = threading.Lock()
        self.requests: Counter = Counter()
        self.errors: list[str] = []

    def call(self, kind: str, method: str, path: str, body=None, expected=(200,)) -> dict:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=self.context, timeout=60
            )
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        try:
            connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.local.connection = None
            connection.close()
            return self._error(kind, f"{method} {path}: {exc!r}")
        with self.lock:
            self.requests[kind] += 1
        if response.status not in expected:
            return self._error(kind, f"{method} {path}: {response.status} {raw[:300]!r}")
        return json.loads(raw) if raw else {}

    def _error(self, kind: str, message: str) -> dict:
        with self.lock:
            self.errors.append(f"{kind}: {message}")
            if len(self.errors) <= 5:
                print(f"  error: {self.errors[-1]}", flush=True)
        return {}


def traffic(client: Client, stop: threading.Event, tenants: list[str], meter_id: str) -> list[threading.Thread]:
    run = uuid.uuid4().hex[:8]
    counter = iter(range(10**12))
    counter_lock = threading.Lock()

    def events(count: int) -> list[dict]:
        with counter_lock:
            numbers = [next(counter) for _ in range(count)]
        now = datetime.now(UTC).isoformat()
        return [
            {"eventId": f"soak-{run}-{number}", "meterApiName": "bench", "tenantId": tenants[number % len(tenants)],
             "meterValue": number % 7 + 1, "timestamp": now, "dimensions": {"region": "eu"}}
            for number in numbers
        ]  # fmt: skip

    def every(seconds: float, work):
        def loop():
            while not stop.is_set():
                started = time.monotonic()
                work()
                stop.wait(max(0.0, seconds - (time.monotonic() - started)))

        return loop

    now = int(time.time())
    usage_path = (
        f"/api/v1/usage/{meter_id}?tenantId={{}}&startTimeInSeconds={now - 30 * 86400}&timeGroupingInterval=DAY"
    )
    onboarded = iter(range(10**9))
    work = [
        every(0.2, lambda: client.call("ingest batch", "POST", "/api/v1/usage", {"events": events(200)}, (201,))),
        every(0.2, lambda: client.call("ingest batch", "POST", "/api/v1/usage", {"events": events(200)}, (201,))),
        every(0.05, lambda: client.call("ingest single", "POST", "/api/v1/usage", events(1)[0], (201,))),
        every(0.05, lambda: client.call("ingest single", "POST", "/api/v1/usage", events(1)[0], (201,))),
        every(0.5, lambda: client.call("query tenants", "GET", "/api/v1/tenants?limit=100")),
        every(
            0.5,
            lambda: client.call("query usage", "GET", usage_path.format(tenants[int(time.time()) % len(tenants)])),
        ),
        every(
            2,
            lambda: client.call(
                "onboarding",
                "POST",
                "/api/v1/tenant-registrations",
                {"tenantData": {"tenantName": f"soak-{run}-{next(onboarded)}", "tier": "basic"}},
                (201,),
            ),
        ),
        every(
            1,
            lambda: client.call(
                "publish event",
                "POST",
                "/api/v1/events",
                {"detail-type": PROBE_TYPE, "source": "sbt.application.plane", "detail": {"at": time.time()}},
                (200, 201, 202),
            ),
        ),
    ]
    threads = [threading.Thread(target=loop, daemon=True) for loop in work]
    for thread in threads:
        thread.start()
    return threads


def ready(port: int, certificate: Path) -> bool:
    connection = http.client.HTTPSConnection(
        "127.0.0.1", port, context=ssl.create_default_context(cafile=str(certificate)), timeout=10
    )
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def postgres_connections(database_url: str) -> int:
    import psycopg

    url = urlsplit(database_url)
    with psycopg.connect(f"postgresql://{url.username}@{url.hostname}:{url.port}/postgres", autocommit=True) as admin:
        (count,) = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
            [url.path.lstrip("/")],
        ).fetchone()
    return count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--pool-size", type=int, default=20, help="PgBouncer's default_pool_size")
    args = parser.parse_args()
    # The receiver is on loopback; inherited by every process (bench.common.server_env).
    os.environ["EVENT_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.0/8"
    database_url, tenants = ingestion_setup()
    from events.models import Delivery
    from events.services import subscription_create
    from metering.models import Meter

    receiver_url = f"http://127.0.0.1:{start_receiver(0.05)}/hook"
    for event_type in (PROBE_TYPE, "onboardingRequest"):
        for _ in range(2):
            subscription_create(url=receiver_url, event_types=[event_type])
    meter_id = str(Meter.objects.get(api_name="bench").pk)
    token = make_token()

    from bench.topology import Topology

    topology = Topology.behind_pgbouncer(
        database_url,
        workdir=Path(tempfile.mkdtemp(prefix="sbt-bench-soak.")),
        env=server_env(database_url)
        | {"SECURE_PROXY_SSL_HEADER": "true", "SBT_TRUSTED_PROXY_COUNT": "1", "CELERY_BROKER_URL": start_redis()},
        pool_size=args.pool_size,
    )
    client, statuses = None, Counter()
    try:
        nodes = [topology.start_web(f"web-{index}", workers=2, threads=8) for index in (1, 2)]
        for name in ("w1", "w2"):
            topology.start_worker(name)
        topology.start_beat()
        topology.start_nginx(nodes)
        names = ["pgbouncer", "web-1", "web-2", "worker-w1", "worker-w2", "beat", "nginx"]
        processes = dict(zip(names, (process for process, _ in topology.processes.started), strict=True))
        client = Client(topology.https_port, token, topology.certificate)
        deadline = time.monotonic() + 120
        while not ready(topology.https_port, topology.certificate) and time.monotonic() < deadline:
            time.sleep(1)
        client.errors.clear()
        client.requests.clear()

        stop = threading.Event()
        print(f"soak for {args.minutes:g} minutes; every minute: resident MB per process, PostgreSQL connections")
        print("minute " + " ".join(f"{name:>10}" for name in names) + "  pg-conns  requests  errors", flush=True)
        threads = traffic(client, stop, tenants, meter_id)
        started = time.monotonic()
        minute = 0
        while minute < args.minutes:
            minute += 1
            time.sleep(max(0.0, started + minute * 60 - time.monotonic()))
            memory = " ".join(f"{tree_rss_mb(process.pid):>10.0f}" for process in processes.values())
            dead = [name for name, process in processes.items() if process.poll() is not None]
            if dead:
                client.errors.append(f"processes ended: {', '.join(dead)}")
            print(
                f"{minute:>6} {memory}  {postgres_connections(database_url):>8}"
                f"  {sum(client.requests.values()):>8}  {len(client.errors):>6}",
                flush=True,
            )
        stop.set()
        for thread in threads:
            thread.join(60)
        # Deliveries of the last events: every one must succeed within a minute.
        deadline = time.monotonic() + 60
        unfinished = Delivery.objects.exclude(status=Delivery.Status.SUCCEEDED)
        while unfinished.exists() and time.monotonic() < deadline:
            time.sleep(2)
        statuses = Counter(Delivery.objects.values_list("status", flat=True))
        for status, count in statuses.items():
            if status != Delivery.Status.SUCCEEDED:
                client.errors.append(f"{count} deliveries {status} at the end")
    finally:
        topology.stop_all()

    print(f"\nrequests: {dict(client.requests)}")
    print(f"deliveries: {dict(statuses)}")
    print(f"errors: {len(client.errors)}")
    for error in client.errors[:20]:
        print(f"  {error}")
    sys.exit(1 if client.errors else 0)


if __name__ == "__main__":
    main()
