"""Faults heal by themselves (issue 18): Redis killed and restarted under a busy worker, and a
broker out of reach on the request path.

A real `celery worker` delivers webhooks from a Redis of this test's own (killing the suite's
Redis would disturb other tests). Redis runs without persistence, the harsher case: what was
queued dies with it, and the outbox sweep (run here by a loop standing in for beat) sends it
again. Every event must reach the receiver, and the worker must still be running afterwards.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from events.models import Delivery, Event
from events.services import events_sweep, subscription_create
from events.tests.conftest import application_plane_scopes
from events.tests.subprocesses import (
    ROOT,
    Processes,
    free_port,
    gunicorn_command,
    port_open,
    process_env,
    wait_for,
    worker_command,
)

BIN = Path(sys.executable).parent
DETAIL_TYPE = "brokerFaultProbe"

PUBLISH = """
import sys, django
django.setup()
from django.db import transaction
from events.services import event_publish
for index in range(int(sys.argv[1]), int(sys.argv[2])):
    with transaction.atomic():
        event_publish(detail_type=sys.argv[3], detail={"index": index})
"""

# What beat does every 15 s, faster and without the grace period, so the test need not wait.
SWEEP_LOOP = """
import time, django
django.setup()
from datetime import timedelta
from django.utils import timezone
from events.services import events_sweep
while True:
    print(events_sweep(now=timezone.now() + timedelta(minutes=1)), flush=True)
    time.sleep(4)
"""


def redis_command(port: int) -> list[str]:
    return [
        shutil.which("redis-server"),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]


@pytest.fixture
def broker_fault_setup(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run the suite with ./sbt test, which installs it")
    port = free_port()
    group = Processes(env=process_env(broker_url=f"redis://127.0.0.1:{port}/0", var_dir=tmp_path), log_dir=tmp_path)
    yield group, port
    group.stop_all()


def publish(processes: Processes, start: int, stop: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PUBLISH, str(start), str(stop), DETAIL_TYPE],
        cwd=ROOT,
        env=processes.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.broker
@pytest.mark.faults
@pytest.mark.django_db(transaction=True)
def test_deliveries_resume_after_redis_is_killed_and_restarted_under_a_busy_worker(broker_fault_setup, receiver):
    processes, port = broker_fault_setup
    receiver.on_request = lambda received: time.sleep(0.05)  # a receiver that takes its time
    subscription_create(url=receiver.url, event_types=[DETAIL_TYPE])
    redis = processes.start("redis", *redis_command(port))
    wait_for(lambda: port_open(port), timeout=20, what="Redis")
    worker = processes.start("worker", *worker_command(BIN, f"faults-{port}"))
    wait_for(lambda: "ready." in worker.log.read_text(errors="replace"), timeout=60, what="the worker")

    published = publish(processes, 0, 100)
    assert published.returncode == 0, published.stderr
    wait_for(lambda: len(receiver.requests) >= 15, timeout=60, what="the worker to be busy delivering")

    os.kill(redis.pid, signal.SIGKILL)
    redis.wait(timeout=10)
    killed_after = len(receiver.requests)
    # Publishing while the broker is down still succeeds: the event is in the outbox, the
    # enqueue after commit fails (logged), and the sweep dispatches it later.
    published = publish(processes, 100, 110)
    assert published.returncode == 0, published.stderr
    time.sleep(3)
    processes.start("redis", *redis_command(port))
    wait_for(lambda: port_open(port), timeout=20, what="Redis to come back")
    processes.start("sweep", sys.executable, "-c", SWEEP_LOOP)

    def all_delivered():
        return Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() == 110

    wait_for(all_delivered, timeout=90, what="every delivery to succeed after the restart")
    assert killed_after < 110, "Redis must die while deliveries are still under way"
    assert worker.poll() is None, "the worker must ride out the broker restart"
    assert "Connection to broker lost" in worker.log.read_text(errors="replace")

    event_ids = {
        str(event_id) for event_id in Event.objects.filter(detail_type=DETAIL_TYPE).values_list("id", flat=True)
    }
    received = Counter(request.headers["X-SBT-Event-Id"] for request in receiver.requests)
    assert len(event_ids) == 110
    assert set(received) == event_ids
    # A repeated POST is an attempt the delivery recorded (docs/events.md: at least once, same event id).
    attempts = sum(Delivery.objects.values_list("attempts", flat=True))
    assert sum(received.values()) == attempts


class Blackhole:
    """A TCP listener that accepts connections and never answers: a broker out of reach as a hung
    Redis or a half-dropped route is, where every try waits for its socket timeout."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.accepted.append(connection)

    def close(self):
        self.listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def blackhole():
    hole = Blackhole()
    yield hole
    hole.close()


@pytest.mark.broker
@pytest.mark.faults
@pytest.mark.django_db(transaction=True)
def test_a_broker_out_of_reach_gets_one_short_try_per_event_and_the_sweep_dispatches_later(
    tmp_path, blackhole, make_token
):
    processes = Processes(
        env=process_env(broker_url=f"redis://127.0.0.1:{blackhole.port}/0", var_dir=tmp_path), log_dir=tmp_path
    )
    try:
        port = free_port()
        web = processes.start("web", *gunicorn_command(BIN, port))
        wait_for(lambda: port_open(port), timeout=60, what="the web process")  # not /healthz: it asks the broker
        token = make_token(scopes=application_plane_scopes())
        for index in range(3):
            sent = requests.post(
                f"http://127.0.0.1:{port}/api/v1/events",
                json={"detail-type": DETAIL_TYPE, "source": "sbt.application.plane", "detail": {"index": index}},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,  # a guard only: Celery's default policy held each of these requests 40 s
            )
            assert sent.status_code in (200, 201, 202), sent.text
        # One connection per event and no retry (Celery's default tried each event four times,
        # each try waiting for the 10 s socket timeout the worker's connection needs).
        assert len(blackhole.accepted) == 3
        assert "not enqueued, the sweep will dispatch it" in web.log.read_text(errors="replace")
    finally:
        processes.stop_all()

    events = Event.objects.filter(detail_type=DETAIL_TYPE)
    assert events.count() == 3
    assert not events.filter(dispatched_at__isnull=False).exists()
    # The sweep (beat's, on a reachable broker; eager here) dispatches every one of them.
    assert events_sweep(now=timezone.now() + timedelta(minutes=1))["dispatched"] == 3
    assert not events.filter(dispatched_at__isnull=True).exists()
