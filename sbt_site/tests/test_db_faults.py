"""Database faults heal by themselves, against a real gunicorn (threads, connection pool) on its
own database: PostgreSQL dropping every connection fails each client once at most, with the
503 envelope, and an exhausted pool answers 503 instead of 500 and shrinks back when idle."""

import http.client
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from django.conf import settings

from bench.common import PYTHON, ROOT, SERVERS, start_gunicorn

pytestmark = pytest.mark.faults

SEED = """
import json, sys
from bench.common import make_token, setup_django
setup_django(sys.argv[1])
from metering.interface import MeterSpec
from metering.services import meter_create
from metering.tasks import ensure_partitions
from tenants.models import Tenant
ensure_partitions()
meter_create(spec=MeterSpec(api_name="faults", label="faults", aggregation="SUM", dimensions=()))
print(json.dumps({"tenant": str(Tenant.objects.create(name="faults").pk), "token": make_token()}))
"""


def _server_url(database: str) -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{database}"


def _admin(database: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(_server_url(database).replace("postgres://", "postgresql://"), autocommit=True)


@pytest.fixture(scope="module")
def app_database():
    """A database of its own, migrated and seeded by a separate process: its URL, tenant, token."""
    name = f"sbt_faults_{uuid.uuid4().hex[:8]}"
    with _admin() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = _server_url(name)
    try:
        env = {**os.environ, "DATABASE_POOL": "false"}
        seeded = subprocess.run(
            [PYTHON, "-c", SEED, url], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=True
        )
        yield {"url": url, "name": name, **json.loads(seeded.stdout.strip().splitlines()[-1])}
    finally:
        with _admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def gunicorn(app_database):
    """Starts gunicorn on the app database with the given environment; stopped after the test."""
    started = []

    def start(*, workers: int, threads: int, **environment) -> str:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in {
                "SBT_API_RATE_LIMIT": "",
                "SBT_USAGE_EVENTS_PER_MINUTE_PER_TENANT": "0",
                **environment,
            }.items():
                patch.setenv(key, value)
            address = start_gunicorn(app_database["url"], workers=workers, threads=threads)
        started.append(SERVERS.pop("gunicorn"))
        return address

    yield start
    for pid in started:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)


def _backends(database: str) -> list[int]:
    with _admin() as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        ).fetchall()
    return [pid for (pid,) in rows]


def _wait_until(condition, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


class Client(threading.Thread):
    """Posts batches of ``size`` new events until stopped: (status, body, headers, eventIds) per request."""

    def __init__(self, address: str, token: str, tenant: str, size: int, stop: threading.Event):
        super().__init__()
        self.address, self.token, self.tenant, self.size, self.stop = address, token, tenant, size, stop
        self.results: list[tuple[float, int, dict, dict, list[str]]] = []

    def run(self):
        host, port = self.address.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        while not self.stop.is_set():
            ids = [f"faults-{uuid.uuid4().hex}" for _ in range(self.size)]
            now = datetime.now(UTC).isoformat()
            events = [
                {"eventId": i, "meterApiName": "faults", "tenantId": self.tenant, "meterValue": 1, "timestamp": now}
                for i in ids
            ]
            body = events[0] if self.size == 1 else {"events": events}
            connection.request("POST", "/api/v1/usage", body=json.dumps(body), headers=headers)
            response = connection.getresponse()
            answer = json.loads(response.read())
            self.results.append((time.monotonic(), response.status, answer, dict(response.getheaders()), ids))
        connection.close()


def _assert_service_unavailable(status: int, answer: dict, headers: dict):
    assert status == 503, (status, answer)
    assert answer == {"statusCode": 503, "message": answer["message"], "code": "service_unavailable"}
    assert int(headers["Retry-After"]) >= 1


@pytest.mark.parametrize("pool", ["false", "true"], ids=["persistent connections", "pooled"])
def test_terminating_every_backend_fails_each_client_once_at_most_and_loses_no_event(app_database, gunicorn, pool):
    address = gunicorn(workers=2, threads=6, DATABASE_POOL=pool)
    stop = threading.Event()
    clients = [Client(address, app_database["token"], app_database["tenant"], 1, stop) for _ in range(6)]
    clients += [Client(address, app_database["token"], app_database["tenant"], 200, stop) for _ in range(2)]
    for client in clients:
        client.start()
    try:
        _wait_until(lambda: all(len(client.results) >= 3 for client in clients))  # the workers are up
        terminated_at = time.monotonic()
        with _admin() as admin:
            (terminated,) = admin.execute(
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [app_database["name"]],
            ).fetchone()
        assert terminated > 0
        time.sleep(1)
        _wait_until(lambda: all(sum(result[0] > terminated_at for result in client.results) >= 3 for client in clients))
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)

    # At most one failed request per server thread (the one whose connection died under it, or
    # found dead), each the 503 envelope; then every client succeeds again.
    acknowledged, failed = [], []
    for client in clients:
        failed += [result for result in client.results if result[1] != 201]
        assert [result[1] for result in client.results[-2:]] == [201, 201]  # it went on, and succeeded
        acknowledged += [event_id for _, status, _, _, ids in client.results if status == 201 for event_id in ids]
    assert len(failed) <= 2 * 6, [result[1:3] for result in failed]
    for _, status, answer, headers, _ in failed:
        _assert_service_unavailable(status, answer, headers)

    with _admin(app_database["name"]) as database:
        stored = database.execute(
            "SELECT event_id, count(*) FROM metering_usageevent WHERE event_id = ANY(%s) GROUP BY event_id",
            [acknowledged],
        ).fetchall()
    assert len(stored) == len(acknowledged)
    assert {count for _, count in stored} == {1}


def test_an_exhausted_pool_answers_503_then_shrinks_to_its_minimum(app_database, gunicorn):
    address = gunicorn(
        workers=1,
        threads=8,
        DATABASE_POOL="true",
        DATABASE_POOL_MIN_SIZE="1",
        DATABASE_POOL_MAX_SIZE="2",
        DATABASE_POOL_TIMEOUT="1",
        DATABASE_POOL_MAX_IDLE="1",
    )
    stop = threading.Event()
    clients = [Client(address, app_database["token"], app_database["tenant"], 100, stop) for _ in range(8)]
    with _admin(app_database["name"]) as locker:
        # every request storing events waits on the deduplication keys, holding its pooled connection
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE metering_usageeventkey IN ACCESS EXCLUSIVE MODE")
        for client in clients:
            client.start()
        _wait_until(lambda: sum(len(client.results) for client in clients) >= 8)  # some waited past timeout
        time.sleep(1)
        stop.set()
        locker.execute("COMMIT")
    for client in clients:
        client.join(timeout=60)

    statuses = [status for client in clients for _, status, _, _, _ in client.results]
    assert 503 in statuses and 201 in statuses
    assert set(statuses) <= {201, 503}
    for client in clients:
        for _, status, answer, headers, _ in client.results:
            if status == 503:
                _assert_service_unavailable(status, answer, headers)

    _wait_until(lambda: len(_backends(app_database["name"])) <= 1, seconds=15)
    assert len(_backends(app_database["name"])) <= 1  # the pool's min_size, in its one process
