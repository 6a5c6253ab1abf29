"""Fault benchmark (not a test): kill -9 under load on the production topology, and count what held.

    .venv/bin/python bench/faults.py [--scenarios gunicorn,postgres,worker,redis] [--seconds 15] [--down 5]
                                     [--usage-clients 8] [--batch 100]

The topology runs on loopback: PostgreSQL with fsync on, Redis (without persistence: what was
queued dies with it, the harsher case), gunicorn 2 workers x 32 threads, one Celery worker
(prefork, 2 processes) and beat, all on the production settings (DATABASE_POOL and the rest from
the environment, as a deployment sets them; the rate limit and quota are off).

Each scenario runs two independent clients that retry as real clients do — on a connection
error, a 5xx, a 503 after its Retry-After — resending the same request, so a resend is
idempotent: a usage client (batches of --batch events, eventIds fixed per batch) and an
onboarding client (tenant registrations; the tenant name is the key, so a 409 on a resend means
the first try landed). After --seconds of load comes the fault:

- gunicorn: kill -9 of one gunicorn worker (its master starts another);
- postgres: kill -9 of the PostgreSQL postmaster, started again after --down seconds;
- worker: kill -9 of the Celery worker's processes, started again after --down seconds (as
  systemd's Restart=always would);
- redis: kill -9 of Redis, started again after --down seconds.

Load goes on for --seconds more; then the clients stop, the outbox sweep (beat, every 15 s) is
given time to deliver what is due, and the scenario prints: usage events sent / acknowledged /
stored / lost (acknowledged, not stored) / doubled (counted twice in the rollups); the
client-visible error rate (failed tries / tries) before, during and after the fault window
(kill to restart); and the webhook deliveries of onboardingRequest to a loopback receiver:
expected / received / missing / duplicated (the same event id received again).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    PYTHON,
    ROOT,
    free_port,
    postgres_start_again,
    server_env,
    setup_django,
    start_gunicorn,
    start_postgres,
)
from bench.topology import WebhookReceiver

SCENARIOS = ("gunicorn", "postgres", "worker", "redis")
METER = "faults"
CELERY = str(Path(PYTHON).parent / "celery")


class Process:
    """A server the benchmark kills and starts again, in its own session (kill -9 reaches all of it)."""

    def __init__(self, name: str, command: list[str], env: dict, log_dir: Path):
        self.name, self.command, self.env, self.log = name, command, env, log_dir / f"{name}.log"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class Tries:
    """Every try of every client: (monotonic time, succeeded)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.log: list[tuple[float, bool]] = []

    def add(self, succeeded: bool) -> None:
        with self.lock:
            self.log.append((time.monotonic(), succeeded))

    def error_rate(self, start: float, end: float) -> str:
        window = [succeeded for at, succeeded in self.log if start <= at < end]
        failed = window.count(False)
        return f"{failed}/{len(window)} = {failed / len(window):.1%}" if window else "no tries"


def retrying_post(address: str, path: str, body: bytes, token: str, tries: Tries, stop: threading.Event):
    """POST until answered with something other than a connection error, a 5xx or a 429 (as a
    client with retries does, honouring Retry-After); the answer's status, or None if stopped."""
    host, port = address.split(":")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection = None
    while not stop.is_set():
        wait = 0.2
        try:
            connection = connection or http.client.HTTPConnection(host, int(port), timeout=30)
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status < 500 and response.status != 429:
                tries.add(True)
                return response.status
            wait = float(response.headers.get("Retry-After") or wait)
        except (OSError, http.client.HTTPException):
            connection = None  # a new connection for the next try
        tries.add(False)
        stop.wait(wait)
    return None


def usage_client(address, token, tenant_id, prefix, batch, tries, stop, counts):
    """Batches of events until stopped; ``counts`` is this client's own (no two threads add to one)."""
    counts["ids"] = set()
    sequence = 0
    while not stop.is_set():
        events = [
            {"eventId": f"{prefix}-{sequence}-{index}", "meterApiName": METER, "tenantId": tenant_id, "meterValue": 1,
             "timestamp": datetime.now(UTC).isoformat()}
            for index in range(batch)
        ]  # fmt: skip
        counts["sent"] += batch
        status = retrying_post(address, "/api/v1/usage", json.dumps({"events": events}).encode(), token, tries, stop)
        if status == 201:
            counts["acknowledged"] += batch
            counts["ids"].update(event["eventId"] for event in events)
        elif status is not None:
            counts[f"refused {status}"] += batch  # a 4xx: printed, as the benchmark sends only valid batches
        sequence += 1


def onboarding_client(address, token, prefix, tries, stop, counts):
    sequence = 0
    while not stop.is_set():
        body = json.dumps({"tenantData": {"tenantName": f"{prefix}-{sequence}", "tier": "basic"}}).encode()
        status = retrying_post(address, "/api/v1/tenant-registrations", body, token, tries, stop)
        if status in (201, 409):  # 409 on a resend: the first try created it
            counts["onboarded"] += 1
        elif status is not None:
            counts[f"onboarding refused {status}"] += 1
        sequence += 1
        stop.wait(0.05)


def healthy(address: str) -> None:
    """Wait for /healthz to answer 200 (database and broker), then warm every gunicorn thread up."""
    host, port = address.split(":")
    for _ in range(600):
        try:
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("the web process did not become healthy (see the logs)")


def gunicorn_worker_pids(master_pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == master_pid:
                        children.append(int(entry))
            except OSError:
                continue
    return children


def run_scenario(name, args, address, token, gunicorn_master, worker, redis, receiver):
    from django.db import connection
    from django.db.models import Sum

    from events.models import Event
    from metering.models import ROLLUP_SPANS, UsageEventKey, UsageRollup
    from tenants.models import Tenant

    connection.close()
    tenant_id = str(Tenant.objects.create(name=f"faults-usage-{name}-{time.time_ns()}").pk)
    since = datetime.now(UTC)
    tries = {"usage": Tries(), "onboarding": Tries()}
    client_counts = [Counter() for _ in range(args.usage_clients + 2)]
    stop = threading.Event()
    threads = [
        threading.Thread(target=usage_client,
                         args=(address, token, tenant_id, f"{name}-{number}", args.batch, tries["usage"], stop,
                               client_counts[number]))
        for number in range(args.usage_clients)
    ] + [
        threading.Thread(target=onboarding_client,
                         args=(address, token, f"faults-{name}-{time.time_ns()}-{number}", tries["onboarding"], stop,
                               client_counts[args.usage_clients + number]))
        for number in range(2)
    ]  # fmt: skip
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(args.seconds)

    killed = time.monotonic()
    if name == "gunicorn":
        workers = gunicorn_worker_pids(gunicorn_master)
        os.kill(workers[0], signal.SIGKILL)
        while len(set(gunicorn_worker_pids(gunicorn_master)) - {workers[0]}) < len(workers):
            time.sleep(0.1)  # until the master has started another
    elif name == "postgres":
        from bench.common import SERVERS

        os.kill(SERVERS["postgres"], signal.SIGKILL)
        time.sleep(args.down)
        postgres_start_again()
    elif name in ("worker", "redis"):
        process = worker if name == "worker" else redis
        process.kill()
        time.sleep(args.down)
        process.start()
    restored = time.monotonic()
    time.sleep(args.seconds)
    stop.set()
    for thread in threads:
        thread.join()
    ended = time.monotonic()
    counts, acknowledged_ids = Counter(), set()
    for own in client_counts:
        acknowledged_ids |= own.pop("ids", set())
        counts.update(own)

    connection.close()  # the benchmark's own connection may predate a restart
    stored_ids = set(UsageEventKey.objects.filter(tenant_id=tenant_id).values_list("event_id", flat=True))
    rolled_up = (
        UsageRollup.objects.filter(tenant_id=tenant_id, span=max(ROLLUP_SPANS)).aggregate(total=Sum("total"))["total"]
        or 0
    )
    lost = len(acknowledged_ids - stored_ids)
    print(f"\n== {name}: kill -9 {'and start again ' if name != 'gunicorn' else ''}"
          f"({args.usage_clients} usage clients x {args.batch} events, 2 onboarding clients)")  # fmt: skip
    print(f"  usage events: sent {counts['sent']:,}, acknowledged {counts['acknowledged']:,}, "
          f"stored {len(stored_ids):,}, lost {lost}, doubled {int(rolled_up) - len(stored_ids)}")  # fmt: skip
    if refused := {key: value for key, value in counts.items() if "refused" in key}:
        print(f"  refused (4xx, not retried): {refused}")
    for client, log in tries.items():
        print(f"  {client} client, failed tries: before {log.error_rate(started, killed)}; "
              f"fault window (kill to restart, {restored - killed:.1f} s) {log.error_rate(killed, restored)}; "
              f"first 5 s after {log.error_rate(restored, restored + 5)}; "
              f"the rest {log.error_rate(restored + 5, ended)}")  # fmt: skip
    # Deliveries still due after the restart are the sweep's (every 15 s, 30 s grace): give it time.
    onboardings = Event.objects.filter(detail_type="onboardingRequest", created__gte=since)
    expected = {str(pk) for pk in onboardings.values_list("pk", flat=True)}
    deadline = time.monotonic() + args.settle
    while time.monotonic() < deadline and not expected <= set(receiver.event_counts()):
        time.sleep(1)
    arrived = receiver.event_counts()
    received = {event_id: arrived[event_id] for event_id in expected if event_id in arrived}
    print(f"  webhook onboardingRequest: onboarded {counts['onboarded']}, expected {len(expected)}, "
          f"received {len(received)}, missing {len(expected) - len(received)}, "
          f"duplicated {sum(received.values()) - len(received)}, "
          f"all in {time.monotonic() - ended:.0f} s after the load")  # fmt: skip


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--seconds", type=float, default=15, help="load before and after the fault")
    parser.add_argument("--down", type=float, default=5, help="seconds a killed server stays down")
    parser.add_argument("--usage-clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100, help="events per usage request")
    parser.add_argument("--settle", type=float, default=120, help="longest wait for the webhooks after the load")
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed: apt-get install redis-server")
    if unknown := set(scenarios) - set(SCENARIOS):
        sys.exit(f"unknown scenarios {sorted(unknown)}: choose among {', '.join(SCENARIOS)}")
    os.environ["SBT_API_RATE_LIMIT"] = ""
    os.environ["SBT_USAGE_EVENTS_PER_MINUTE_PER_TENANT"] = "0"
    os.environ["EVENT_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.0/8"

    database_url = start_postgres()
    setup_django(database_url)
    from bench.common import make_token
    from events.services import subscription_create
    from metering.interface import MeterSpec
    from metering.services import meter_create
    from metering.tasks import ensure_partitions

    ensure_partitions()
    meter_create(spec=MeterSpec(api_name=METER, label=METER, aggregation="SUM", dimensions=()))
    receiver = WebhookReceiver()
    subscription_create(url=receiver.url, event_types=["onboardingRequest"])
    token = make_token()

    log_dir = Path(tempfile.mkdtemp(prefix="sbt-bench-faults."))  # kept: the servers' logs
    redis_port = free_port()
    broker = {"CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0"}
    env = server_env(database_url) | broker
    redis = Process("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], env, log_dir)  # fmt: skip
    worker = Process("worker", [CELERY, "-A", "sbt_site", "worker", "--concurrency", "2", "--loglevel", "WARNING",
                                "--without-gossip", "--without-mingle"], env, log_dir)  # fmt: skip
    beat = Process("beat", [CELERY, "-A", "sbt_site", "beat", "--loglevel", "WARNING"], env, log_dir)
    for process in (redis, worker, beat):
        process.start()
    try:
        address = start_gunicorn(database_url, workers=2, threads=32, env=broker, log=log_dir / "gunicorn.log")
        from bench.common import SERVERS

        healthy(address)
        from django.conf import settings

        pool = "on" if settings.DATABASES["default"].get("OPTIONS", {}).get("pool") else "off"
        print(f"topology: PostgreSQL (fsync on), Redis (no persistence), gunicorn 2 x 32 threads, Celery worker "
              f"(2 processes) and beat; connection pool {pool}; logs in {log_dir}")  # fmt: skip
        for name in scenarios:
            run_scenario(name, args, address, token, SERVERS["gunicorn"], worker, redis, receiver)
    finally:
        for process in (beat, worker, redis):
            process.stop()


if __name__ == "__main__":
    main()
