"""A subscription whose receiver hangs holds at most its in-flight limit of worker slots: with a
real Celery worker of two slots on Redis and a limit of one, the slow subscription's deliveries
queued first, a healthy subscription's deliveries all succeed while the slow one's first attempt
is still waiting for its answer, and the slow one's other deliveries wait, unattempted."""

import os
import socket
import sys
from pathlib import Path

import pytest

from events.models import Delivery, DeliveryAttempt
from events.services import _deliveries_create, event_publish, subscription_create
from events.tests.subprocesses import wait_for, worker_command
from sbt_site.celery import app

BIN = Path(sys.executable).parent


@pytest.fixture
def silent_receiver():
    """A loopback port that takes connections (the kernel completes them) and never answers:
    every delivery to it waits for the read timeout."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"


@pytest.mark.broker
@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")  # send_task goes to Redis, as meant
@pytest.mark.django_db(transaction=True)
def test_a_hanging_subscription_does_not_hold_every_worker_slot(processes, receiver, silent_receiver, settings):
    settings.SBT = {**getattr(settings, "SBT", {}), "EVENT_DISPATCH_ON_COMMIT": False}
    slow, _ = subscription_create(url=silent_receiver, event_types=["bench.slow"])
    healthy, _ = subscription_create(url=receiver.url, event_types=["bench.healthy"])
    for detail_type in ["bench.slow"] * 4 + ["bench.healthy"] * 4:
        _deliveries_create(event=event_publish(detail_type=detail_type, detail={}))
    processes.env |= {"SBT_EVENT_DELIVERY_IN_FLIGHT_PER_SUBSCRIPTION": "1"}
    command = [part for part in worker_command(BIN, "slots") if part != "--pool=solo"]
    processes.start("worker", *command, "--pool=threads", "--concurrency=2")

    # The slow subscription's deliveries first: without the limit they would take both slots.
    with app.connection_for_write(os.environ["SBT_TEST_REDIS_URL"]) as connection:
        for subscription in (slow, healthy):
            for delivery in Delivery.objects.filter(subscription=subscription).order_by("created"):
                app.send_task("events.deliver_event", args=(str(delivery.pk),), connection=connection)

    def healthy_delivered():
        statuses = Delivery.objects.filter(subscription=healthy).values_list("status", flat=True)
        return set(statuses) == {Delivery.Status.SUCCEEDED}

    wait_for(healthy_delivered, timeout=60, what="the healthy subscription's 4 deliveries")
    assert len(receiver.requests) == 4
    # The slow subscription's first attempt is still waiting for its answer (an attempt is
    # recorded when it ends), and the others were put back on the queue, not attempted.
    assert not DeliveryAttempt.objects.filter(delivery__subscription=slow).exists()
    slow_deliveries = Delivery.objects.filter(subscription=slow)
    assert set(slow_deliveries.values_list("status", flat=True)) == {Delivery.Status.PENDING}
    assert sorted(slow_deliveries.values_list("attempts", flat=True)) == [0, 0, 0, 0]
