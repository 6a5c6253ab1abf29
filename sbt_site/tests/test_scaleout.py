"""The scale-out topology, run for real from the files under deploy/ (issue 17): nginx (TLS)
load-balancing two gunicorn nodes, two Celery workers and one beat on the suite's Redis, the
suite's PostgreSQL reached through PgBouncer in transaction mode, every process in production
mode (SBT_ENV=production) with the settings docs/operations.md gives. The units' User= is not
applied (the commands run as the test's user); everything else is the rendered files.

It proves what several processes must not break: each usage event stored once when the same
events arrive through both nodes at once (group commit in each), each webhook delivered once
per subscription across two workers with beat's sweep running, each beat job run once, and
PostgreSQL's connections bounded by PgBouncer's pool while the clients hold many more.
"""

import http.client
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import psycopg
import pytest
from django.conf import settings

from bench.common import server_env
from bench.topology import PGBOUNCER_POOL_SIZE, PGBOUNCER_RESERVE_POOL_SIZE, Topology, WebhookReceiver
from events.tests.subprocesses import ROOT, free_port, wait_for

pytestmark = pytest.mark.scaleout

PROBE_TYPE = "scaleoutProbe"
SEED = """
import json, sys, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from bench.common import make_token
from events.services import subscription_create
from metering.interface import MeterSpec
from metering.services import meter_create
from metering.tasks import ensure_partitions
from tenants.models import Tenant
ensure_partitions()
meter_create(spec=MeterSpec(api_name="scaleout", label="scaleout", aggregation="SUM", dimensions=()))
print(json.dumps({
    "tenants": [str(Tenant.objects.create(name=f"scaleout-{index}").pk) for index in range(4)],
    "subscriptions": [str(subscription_create(url=sys.argv[1], event_types=[sys.argv[2]])[0].pk) for _ in range(2)],
    "token": make_token(),
}))
"""


def _postgres_url(database: str) -> str:
    db = settings.DATABASES["default"]
    return f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{database}"


class ConnectionSampler(threading.Thread):
    """Counts PostgreSQL's backends on the app database (what PgBouncer opened) every 0.2 s."""

    def __init__(self, database: str):
        super().__init__(daemon=True)
        self.database, self.samples, self.stop = database, [], threading.Event()

    def run(self):
        with psycopg.connect(_postgres_url("postgres"), autocommit=True) as admin:
            while not self.stop.wait(0.2):
                (count,) = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
                    [self.database],
                ).fetchone()
                self.samples.append(count)


@pytest.fixture
def topology(tmp_path):
    redis_url = os.environ.get("SBT_TEST_REDIS_URL")
    if not redis_url:
        pytest.fail("SBT_TEST_REDIS_URL is not set: run the suite with ./sbt test, which starts Redis")
    redis_base = redis_url.rsplit("/", 1)[0]
    database = f"sbt_scaleout_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_postgres_url("postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    receiver = WebhookReceiver()
    db = settings.DATABASES["default"]
    env = {
        key: value
        for key, value in server_env(f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{database}").items()
        if not key.startswith(("SBT_TEST_", "PYTEST", "DATABASE_"))
    }
    env |= {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{database}",
        "SBT_VAR_DIR": str(tmp_path),
        # databases of the suite's Redis that no other test uses
        "CELERY_BROKER_URL": f"{redis_base}/7",
        "CACHE_URL": f"{redis_base}/8",
        "LOG_LEVEL": "INFO",
        "SECURE_PROXY_SSL_HEADER": "true",
        "SBT_TRUSTED_PROXY_COUNT": "1",
        "EVENT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "SBT_API_RATE_LIMIT": "",
        "SBT_USAGE_EVENTS_PER_MINUTE_PER_TENANT": "0",
    }
    seeded = subprocess.run(
        [sys.executable, "-c", SEED, receiver.url, PROBE_TYPE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert seeded.returncode == 0, seeded.stderr
    seed = json.loads(seeded.stdout.strip().splitlines()[-1])
    running = Topology(workdir=tmp_path, env=env, postgres_host=db["HOST"], postgres_port=int(db["PORT"]))
    try:
        running.start_pgbouncer()
        # From here on every process reaches PostgreSQL through PgBouncer only (migrations ran directly).
        running.pgbouncer_route(user=db["USER"], database=database)
        yield running, seed, receiver, database
    finally:
        running.stop_all()
        receiver.close()
        with psycopg.connect(_postgres_url("postgres"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


class Https:
    """Requests to nginx over TLS (the certificate the topology made), or straight to a node."""

    def __init__(self, port: int, token: str, certificate=None):
        self.port, self.token = port, token
        self.context = ssl.create_default_context(cafile=str(certificate)) if certificate else None
        self.local = threading.local()

    def request(self, method: str, path: str, body=None, headers=None) -> tuple[int, dict, dict]:
        if getattr(self.local, "connection", None) is None:
            self.local.connection = (
                http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=60)
                if self.context
                else http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            )
        all_headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        if not self.context:
            all_headers["X-Forwarded-Proto"] = "https"  # what nginx tells a node; production redirects otherwise
        self.local.connection.request(method, path, body=json.dumps(body) if body is not None else None,
                                      headers=all_headers | (headers or {}))  # fmt: skip
        response = self.local.connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}, dict(response.getheaders())


def _events(tenants: list[str], prefix: str, count: int) -> list[dict]:
    now = datetime.now(UTC).isoformat()
    return [
        {"eventId": f"{prefix}-{index}", "meterApiName": "scaleout", "tenantId": tenants[index % len(tenants)],
         "meterValue": index % 7 + 1, "timestamp": now}
        for index in range(count)
    ]  # fmt: skip


def _in_threads(work, items, threads: int = 8) -> list:
    results, lock, queue = [], threading.Lock(), list(items)

    def run():
        while True:
            with lock:
                if not queue:
                    return
                item = queue.pop()
            outcome = work(item)
            with lock:
                results.append(outcome)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(120)
    return results


@pytest.mark.broker
def test_two_web_nodes_two_workers_one_beat_behind_nginx_and_pgbouncer(topology):
    running, seed, receiver, database = topology
    sampler = ConnectionSampler(database)
    sampler.start()
    web_ports = [running.start_web(f"web-{index}", workers=2, threads=8) for index in (1, 2)]
    workers = [running.start_worker(name) for name in ("w1", "w2")]
    beat = running.start_beat()
    https_port = running.start_nginx(web_ports)
    proxy = Https(https_port, seed["token"], running.certificate)
    nodes = [Https(port, seed["token"]) for port in web_ports]

    def ready():
        try:
            return proxy.request("GET", "/readyz")[0] == 200
        except OSError:
            return False

    wait_for(ready, timeout=120, what="/readyz through nginx")
    for worker in workers:
        wait_for(lambda worker=worker: "ready." in worker.log.read_text(errors="replace"), timeout=120, what="a worker")
    status, body, _ = proxy.request("GET", "/readyz")
    assert body["migrations"] == {"status": "ok"} and body["broker"] == {"status": "ok", "transport": "redis"}
    # Probes come over plain HTTP too and are not redirected; everything else is, to HTTPS.
    plain = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=30)
    plain.request("GET", "/readyz")
    answer = plain.getresponse()
    assert (answer.status, json.loads(answer.read())["status"]) == (200, "ok")
    plain.request("GET", "/api/v1/tenants")
    redirect = plain.getresponse()
    assert redirect.status == 301 and redirect.getheader("Location") == "https://127.0.0.1/api/v1/tenants"
    plain.close()
    # Behind nginx a request is secure (X-Forwarded-Proto): an API call is answered, not redirected.
    assert proxy.request("GET", "/api/v1/tenants")[0] == 200

    # nginx's limit is Django's: one byte over it is the API's 413 envelope, from nginx.
    too_large = {"events": [{"eventId": "x" * 1_000_000}]}
    status, body, _ = proxy.request("POST", "/api/v1/usage", too_large)
    assert (status, body["code"]) == (413, "request_too_large")

    # Exactly-once ingestion across nodes: every batch sent to both nodes at the same moment.
    tenants = seed["tenants"]
    batches = [_events(tenants, f"batch{number}", 50) for number in range(12)]

    def both_nodes(events):
        barrier, answers = threading.Barrier(2), []

        def send(node):
            barrier.wait()
            answers.append(node.request("POST", "/api/v1/usage", {"events": events}))

        senders = [threading.Thread(target=send, args=(node,)) for node in nodes]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(60)
        return answers

    accepted = duplicates = 0
    for answers in _in_threads(both_nodes, batches, threads=4):
        for status, body, _ in answers:
            assert status == 201, body
            accepted += body["data"]["accepted"]
            duplicates += body["data"]["duplicates"]
    assert (accepted, duplicates) == (600, 600)

    # Single events through nginx, many at once (each node groups them into one commit), each
    # sent twice: the second time through whichever node nginx picks.
    singles = _events(tenants, "single", 240)
    answers = _in_threads(lambda event: proxy.request("POST", "/api/v1/usage", event), singles * 2, threads=16)
    assert Counter(status for status, _, _ in answers) == {201: 480}, [a for a in answers if a[0] != 201][:3]
    assert sum(body["data"]["accepted"] for _, body, _ in answers) == 240
    served_by = Counter(line.split()[0] for line in (running.workdir / "nginx" / "access.log").read_text().splitlines())
    assert {f"127.0.0.1:{port}" for port in web_ports} <= set(served_by), "nginx spreads requests over both nodes"

    # Webhooks: 30 events published through nginx, two subscriptions, two workers.
    published = _in_threads(
        lambda index: proxy.request(
            "POST",
            "/api/v1/events",
            {"detail-type": PROBE_TYPE, "source": "sbt.application.plane", "detail": {"n": index}},
        ),
        range(30),
    )
    assert {status for status, _, _ in published} <= {200, 201, 202}, published[:3]
    wait_for(lambda: len(receiver.received) >= 60, timeout=120, what="60 webhook deliveries")

    # Let beat's sweep (every 15 s) run twice more over the delivered events before counting.
    def sweeps_sent() -> int:
        return beat.log.read_text(errors="replace").count("(events.sweep)")

    sent_before = sweeps_sent()
    # At least three in all, so that "each received once" below covers several runs of beat.
    wanted = max(3, sent_before + 2)
    wait_for(lambda: sweeps_sent() >= wanted, timeout=90, what="beat to send the sweep twice more")
    time.sleep(2)
    deliveries = Counter(receiver.received)
    assert len(deliveries) == 60 and set(deliveries.values()) == {1}, "each event once per subscription"
    assert len({event_id for _, event_id in receiver.received}) == 30

    # Beat's jobs ran once each: every sweep beat sent was received by exactly one worker.
    beat.terminate()
    beat.wait(30)
    time.sleep(3)
    sent = sweeps_sent()
    received = sum(
        line.startswith("Task events.sweep[") and line.endswith("] received")
        for worker in workers
        for line in (entry.partition("] ")[2] for entry in worker.log.read_text(errors="replace").splitlines())
    )
    assert sent >= 3 and received == sent, (sent, received)
    assert all(worker.poll() is None for worker in workers)

    sampler.stop.set()
    sampler.join(10)
    with psycopg.connect(_postgres_url(database), autocommit=True) as direct:
        (stored, distinct) = direct.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM metering_usageevent"
        ).fetchone()
        rollups = direct.execute(
            "SELECT span, sum(count), sum(total) FROM metering_usagerollup GROUP BY span"
        ).fetchall()
    assert stored == distinct == 600 + 240
    expected_total = sum(event["meterValue"] for batch in [*batches, singles] for event in batch)
    assert rollups and {(int(count), int(total)) for _, count, total in rollups} == {(840, expected_total)}

    # A node that is down gets the API's 503 envelope from nginx, never an HTML error page.
    down = Https(running.start_nginx([free_port()], name="nginx-down"), seed["token"], running.certificate)
    status, body, headers = down.request("GET", "/api/v1/tenants")
    assert (status, body["code"], headers["Retry-After"]) == (503, "service_unavailable", "1")

    # PostgreSQL never saw more than PgBouncer's pool, though the clients held many more.
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{running.pgbouncer_port}/pgbouncer", autocommit=True) as pgb:
        clients = [row for row in pgb.execute("SHOW CLIENTS").fetchall() if database in row]
    assert sampler.samples and max(sampler.samples) <= PGBOUNCER_POOL_SIZE + PGBOUNCER_RESERVE_POOL_SIZE
    assert len(clients) > PGBOUNCER_POOL_SIZE + PGBOUNCER_RESERVE_POOL_SIZE, len(clients)


SETTINGS_PROBE = """
import json
from django.conf import settings
database = settings.DATABASES["default"]
print(json.dumps({"cursors_off": database["DISABLE_SERVER_SIDE_CURSORS"],
                  "prepare_threshold": database.get("OPTIONS", {}).get("prepare_threshold")}))
"""


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, {"cursors_off": False, "prepare_threshold": 5}),
        ({"DATABASE_TRANSACTION_POOLING": "true"}, {"cursors_off": True, "prepare_threshold": None}),
        # PgBouncer 1.21+ with max_prepared_statements carries them: the operator says so
        (
            {"DATABASE_TRANSACTION_POOLING": "true", "DATABASE_PREPARED_STATEMENTS": "true"},
            {"cursors_off": True, "prepare_threshold": 5},
        ),
    ],
    ids=["direct", "transaction pooling", "transaction pooling, prepared statements kept"],
)
def test_transaction_pooling_turns_off_what_cannot_cross_a_transaction(tmp_path, environment, expected):
    env = {"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "sbt_site.settings"} | {
        "DATABASE_URL": "postgres://sbt@127.0.0.1:6432/sbt",
        "SBT_VAR_DIR": str(tmp_path),
        **environment,
    }
    probe = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + SETTINGS_PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == expected
