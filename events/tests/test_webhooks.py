"""Outbound webhook deliveries against a real HTTP receiver on loopback."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import Delivery, Event
from events.services import (
    delivery_replay,
    event_dispatch,
    event_publish,
    event_replay,
    events_sweep,
    subscription_create,
    subscription_send_test_event,
)
from events.tests.conftest import verify_signature
from events.webhooks import post_event

pytestmark = pytest.mark.django_db


def sweep_until_settled(delivery: Delivery, capture, *, rounds: int = 20) -> Delivery:
    """Run the periodic sweep until the delivery succeeds or is dead (backoff is tiny in tests)."""
    for _ in range(rounds):
        delivery.refresh_from_db()
        if delivery.status in (Delivery.Status.SUCCEEDED, Delivery.Status.DEAD):
            return delivery
        time.sleep(0.05)
        with capture(execute=True):
            events_sweep()
    delivery.refresh_from_db()
    return delivery


def test_delivery_is_signed_and_shaped_like_an_eventbridge_event(receiver, django_capture_on_commit_callbacks):
    subscription, secret = subscription_create(url=receiver.url, event_types=["onboardingRequest"])
    with django_capture_on_commit_callbacks(execute=True):
        event = event_publish(detail_type="onboardingRequest", detail={"tenantId": "t-1", "tier": "basic"})

    assert len(receiver.requests) == 1
    received = receiver.requests[0]
    assert verify_signature(secret, received.headers, received.body)
    assert not verify_signature("whsec_some-other-secret-value", received.headers, received.body)
    assert received.headers["X-SBT-Event-Id"] == str(event.id)
    assert abs(int(received.headers["X-SBT-Timestamp"]) - time.time()) < 60
    assert received.headers["Content-Type"] == "application/json"
    body = received.json
    assert body["id"] == str(event.id)
    assert body["detail-type"] == "sbt_aws_onboardingRequest", "current SBT's spelling is the default"
    assert body["source"] == "sbt.control.plane"
    assert body["detail"] == {"tenantId": "t-1", "tier": "basic"}
    assert body["time"].endswith("Z")

    delivery = Delivery.objects.get(event=event, subscription=subscription)
    assert delivery.status == Delivery.Status.SUCCEEDED
    assert (delivery.attempts, delivery.last_status_code) == (1, 200)
    assert delivery.delivered_at is not None


@pytest.mark.parametrize(
    ("style", "onboarding", "source"),
    [
        ("sbt_aws", "sbt_aws_onboardingRequest", "sbt.control.plane"),
        ("legacy", "onboardingRequest", "controlPlaneEventSource"),
        ("plain", "onboardingRequest", "controlPlaneEventSource"),  # the old name of legacy
    ],
)
def test_wire_spelling_and_source_follow_the_name_style_setting(
    settings, receiver, django_capture_on_commit_callbacks, style, onboarding, source
):
    settings.SBT = {"EVENT_NAME_STYLE": style}
    subscription_create(url=receiver.url, event_types=["onboardingRequest", "myCustomEvent"])
    with django_capture_on_commit_callbacks(execute=True):
        event_publish(detail_type="onboardingRequest", detail={})
        event_publish(detail_type="myCustomEvent", detail={})
    assert [(received.json["detail-type"], received.json["source"]) for received in receiver.requests] == [
        (onboarding, source),
        ("myCustomEvent", source),  # custom events keep their name
    ]


def test_signing_secret_is_stored_encrypted(receiver):
    subscription, secret = subscription_create(url=receiver.url, event_types=[], secret="s3cr3t-chosen-by-operator")
    assert secret == "s3cr3t-chosen-by-operator"
    subscription.refresh_from_db()
    assert secret not in subscription.secret_encrypted
    generated = subscription_create(url=receiver.url, event_types=[])[1]
    assert generated.startswith("whsec_") and len(generated) > 32


def test_receiver_failing_twice_gets_exactly_one_successful_delivery(
    fast_retries, receiver, django_capture_on_commit_callbacks
):
    receiver.answers = [500, 500]
    subscription_create(url=receiver.url, event_types=[])
    with django_capture_on_commit_callbacks(execute=True):
        event = event_publish(detail_type="onboardingRequest", detail={"n": 1})
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.last_status_code == 500 and "receiver is unhappy" in delivery.last_error

    delivery = sweep_until_settled(delivery, django_capture_on_commit_callbacks)

    assert delivery.status == Delivery.Status.SUCCEEDED
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (3, 200, "")
    assert len(receiver.requests) == 3
    assert {received.headers["X-SBT-Event-Id"] for received in receiver.requests} == {str(event.id)}
    # Later sweeps and dispatches send nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        events_sweep(now=timezone.now() + timedelta(hours=2))
        event_dispatch(event_id=event.id)
    assert len(receiver.requests) == 3


def test_hanging_receiver_ends_dead_and_replay_delivers(fast_retries, receiver, django_capture_on_commit_callbacks):
    receiver.default = "hang"
    subscription_create(url=receiver.url, event_types=["onboardingRequest"])
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        event = event_publish(detail_type="onboardingRequest", detail={"n": 2})
    assert time.monotonic() - started < 3, "a hanging receiver must not block the dispatch"
    delivery = sweep_until_settled(Delivery.objects.get(event=event), django_capture_on_commit_callbacks)

    assert delivery.status == Delivery.Status.DEAD
    assert delivery.attempts == 3  # EVENT_DELIVERY_MAX_ATTEMPTS in fast_retries
    assert delivery.last_status_code is None and "No answer within" in delivery.last_error
    assert delivery.next_attempt_at is None
    assert len(receiver.requests) == 3
    with django_capture_on_commit_callbacks(execute=True):
        events_sweep(now=timezone.now() + timedelta(hours=2))
    assert len(receiver.requests) == 3, "a dead delivery is not retried by the sweep"

    receiver.default = 200
    with django_capture_on_commit_callbacks(execute=True):
        delivery_replay(delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED and delivery.attempts == 1
    assert len(receiver.requests) == 4


@pytest.mark.parametrize("drip", ["drip-headers", "drip-body"])
def test_a_dripping_receiver_cannot_hold_the_worker_past_the_total_deadline(settings, receiver, drip):
    """Each read gets a byte well within the read timeout, so only the total deadline ends it."""
    settings.SBT = {
        **getattr(settings, "SBT", {}),
        "EVENT_DELIVERY_CONNECT_TIMEOUT_SECONDS": 1.0,
        "EVENT_DELIVERY_READ_TIMEOUT_SECONDS": 1.0,
        "EVENT_DELIVERY_TOTAL_TIMEOUT_SECONDS": 1.5,
    }
    receiver.default = drip
    receiver.drip_seconds = 0.1
    event = Event.objects.create(detail_type="onboardingRequest", detail={"n": 1})
    started = time.monotonic()
    outcome = post_event(url=receiver.url, event=event, secret="s3cret", delivery_id="d-1")
    elapsed = time.monotonic() - started
    assert 1.4 < elapsed < 3, elapsed
    assert not outcome.ok and outcome.status_code is None
    assert "No complete answer within 1.5s (total)" in outcome.error


def test_dispatching_twice_delivers_once_per_subscription(receiver, django_capture_on_commit_callbacks):
    subscription_create(url=receiver.url, event_types=[])
    subscription_create(url=receiver.url, event_types=["onboardingRequest"])
    with django_capture_on_commit_callbacks(execute=True):
        event = event_publish(detail_type="onboardingRequest", detail={})
        event_dispatch(event_id=event.id)
    with django_capture_on_commit_callbacks(execute=True):
        event_dispatch(event_id=event.id)
    assert Delivery.objects.filter(event=event).count() == 2
    assert len(receiver.requests) == 2, "one request per subscription, whatever the number of dispatches"


def test_event_committed_but_never_dispatched_is_delivered_by_the_sweep(
    settings, receiver, django_capture_on_commit_callbacks
):
    settings.SBT = {"EVENT_DISPATCH_ON_COMMIT": False}  # the process "dies" between commit and enqueue
    _, secret = subscription_create(url=receiver.url, event_types=[])
    with django_capture_on_commit_callbacks(execute=True):
        event = event_publish(detail_type="offboardingRequest", detail={"tenantId": "t-2"})
    assert receiver.requests == []
    with django_capture_on_commit_callbacks(execute=True):
        events_sweep(now=timezone.now() + timedelta(minutes=1))
    assert len(receiver.requests) == 1
    assert verify_signature(secret, receiver.requests[0].headers, receiver.requests[0].body)
    assert receiver.requests[0].json["id"] == str(event.id)


def test_which_subscriptions_receive_what(receiver, django_capture_on_commit_callbacks):
    everything, _ = subscription_create(url=receiver.url, event_types=[])
    billing_only, _ = subscription_create(url=receiver.url, event_types=["billingSuccess"])
    inbound_named, _ = subscription_create(url=receiver.url, event_types=["provisionSuccess"])
    disabled, _ = subscription_create(url=receiver.url, event_types=[], enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        outbound = event_publish(detail_type="onboardingRequest", detail={})
        inbound = event_publish(detail_type="provisionSuccess", detail={}, direction=Event.Direction.INBOUND)
    assert set(Delivery.objects.filter(event=outbound).values_list("subscription", flat=True)) == {everything.pk}
    assert set(Delivery.objects.filter(event=inbound).values_list("subscription", flat=True)) == {inbound_named.pk}
    assert not Delivery.objects.filter(subscription__in=[billing_only, disabled]).exists()


def test_replay_event_retries_dead_deliveries_and_reaches_new_subscriptions(
    fast_retries, receiver, django_capture_on_commit_callbacks
):
    receiver.answers = [503, 503, 503]
    first, _ = subscription_create(url=receiver.url, event_types=[])
    with django_capture_on_commit_callbacks(execute=True):
        event = event_publish(detail_type="activateRequest", detail={})
    delivery = sweep_until_settled(Delivery.objects.get(event=event), django_capture_on_commit_callbacks)
    assert delivery.status == Delivery.Status.DEAD

    second, _ = subscription_create(url=receiver.url, event_types=[])
    with django_capture_on_commit_callbacks(execute=True):
        event_replay(event=event)
    statuses = dict(Delivery.objects.filter(event=event).values_list("subscription", "status"))
    assert statuses == {first.pk: Delivery.Status.SUCCEEDED, second.pk: Delivery.Status.SUCCEEDED}
    assert len(receiver.requests) == 5


def test_send_test_event_reaches_only_that_subscription(receiver, django_capture_on_commit_callbacks):
    subscription, secret = subscription_create(url=receiver.url, event_types=[])
    subscription_create(url=receiver.url + "/other", event_types=[])
    with django_capture_on_commit_callbacks(execute=True):
        delivery = subscription_send_test_event(subscription=subscription)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED
    assert len(receiver.requests) == 1
    assert receiver.requests[0].json["detail-type"] == "subscriptionTest"
    assert verify_signature(secret, receiver.requests[0].headers, receiver.requests[0].body)


def test_the_receiver_example_in_the_docs_verifies_a_real_delivery(receiver, django_capture_on_commit_callbacks):
    import re
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()
    (example,) = [block for block in re.findall(r"```python\n(.*?)```", docs, re.S) if "def verify" in block]
    example = example[: example.index("HTTPServer((")]  # define the receiver, don't serve it
    namespace: dict = {}
    _, secret = subscription_create(url=receiver.url, event_types=[])
    exec(compile(example.replace('"whsec_…"', repr(secret)), "docs/events.md", "exec"), namespace)
    with django_capture_on_commit_callbacks(execute=True):
        event_publish(detail_type="onboardingRequest", detail={"tenantName": "acme"})
    received = receiver.requests[0]
    assert namespace["verify"](received.headers, received.body)
    assert not namespace["verify"](received.headers, received.body + b" ")
    assert not namespace["verify"]({**received.headers, "X-SBT-Timestamp": "1000"}, received.body)


def test_a_delivery_whose_enqueue_was_lost_is_sent_by_the_sweep(receiver, django_capture_on_commit_callbacks):
    subscription, _ = subscription_create(url=receiver.url, event_types=[])
    # Dispatch created the delivery row, then the process died before enqueueing its task.
    event = Event.objects.create(
        detail_type="onboardingRequest", source="sbt.control.plane", dispatched_at=timezone.now()
    )
    delivery = Delivery.objects.create(event=event, subscription=subscription)
    with django_capture_on_commit_callbacks(execute=True):
        assert events_sweep()["deliveries"] == 0, "within the grace period the normal enqueue may still come"
        assert events_sweep(now=timezone.now() + timedelta(minutes=1))["deliveries"] == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED
    assert len(receiver.requests) == 1


def test_a_delivery_still_waiting_in_the_queue_is_not_queued_again_by_every_sweep(
    settings, receiver, django_capture_on_commit_callbacks
):
    settings.SBT = {**settings.SBT, "EVENT_DELIVERY_REQUEUE_SECONDS": 60}
    subscription, _ = subscription_create(url=receiver.url, event_types=[])
    event = Event.objects.create(
        detail_type="onboardingRequest", source="sbt.control.plane", dispatched_at=timezone.now()
    )
    now = timezone.now()
    # queued 10 s ago behind a backlog, created before the grace period: its task is still coming
    delivery = Delivery.objects.create(event=event, subscription=subscription, enqueued_at=now - timedelta(seconds=10))
    Delivery.objects.filter(pk=delivery.pk).update(created=now - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert events_sweep(now=now)["deliveries"] == 0
        assert events_sweep(now=now + timedelta(seconds=45))["deliveries"] == 0
        # its task was due 60 s ago and has not sent it (lost with the broker, or a killed worker)
        assert events_sweep(now=now + timedelta(seconds=51))["deliveries"] == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED
    assert len(receiver.requests) == 1
    assert delivery.enqueued_at > now, "the sweep's enqueue is recorded once the broker took it"


def test_a_retry_is_recorded_as_queued_for_its_due_time(fast_retries, receiver, django_capture_on_commit_callbacks):
    receiver.answers = [500]
    subscription_create(url=receiver.url, event_types=[])
    with django_capture_on_commit_callbacks(execute=True):
        event_publish(detail_type="onboardingRequest", detail={"tenantId": "t1"})
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.enqueued_at == delivery.next_attempt_at, "the retry's task starts at its backoff"


@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_the_same_delivery_at_once_send_it_once(receiver):
    import threading

    from django.db import connection

    from events.services import delivery_attempt

    first_may_answer = threading.Event()
    receiver.on_request = lambda received: first_may_answer.wait(10)  # the first sender stays in flight
    subscription, _ = subscription_create(url=receiver.url, event_types=[])
    event = Event.objects.create(
        detail_type="onboardingRequest", source="sbt.control.plane", dispatched_at=timezone.now()
    )
    delivery = Delivery.objects.create(event=event, subscription=subscription)
    results = {}

    def worker(name):
        try:
            results[name] = delivery_attempt(delivery_id=delivery.pk)
        finally:
            connection.close()

    first = threading.Thread(target=worker, args=("first",))
    first.start()
    deadline = time.monotonic() + 10
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    second = threading.Thread(target=worker, args=("second",))
    second.start()
    second.join(10)
    assert results == {"second": None}, "the second sender skips the delivery instead of waiting or sending"
    first_may_answer.set()
    first.join(10)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SUCCEEDED, 1)
    assert len(receiver.requests) == 1
    # A later attempt (a retry task, the sweep) sees the success and sends nothing.
    delivery_attempt(delivery_id=delivery.pk)
    assert len(receiver.requests) == 1


def test_replay_event_retries_dead_in_process_subscribers(settings, django_capture_on_commit_callbacks):
    from events import registry
    from events.models import HandlerRun

    settings.SBT = {"EVENT_HANDLER_MAX_ATTEMPTS": 1}
    downstream = {"up": False}
    calls = []

    def flaky_downstream(event):
        if not downstream["up"]:
            raise RuntimeError("downstream is down")
        calls.append(event.pk)

    registry.subscriber("replayProbe", name="tests.webhooks.flaky_downstream")(flaky_downstream)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            event = event_publish(detail_type="replayProbe", detail={})
        run = HandlerRun.objects.get(event=event)
        assert run.status == HandlerRun.Status.DEAD
        downstream["up"] = True
        with django_capture_on_commit_callbacks(execute=True):
            event_replay(event=event)
        run.refresh_from_db()
        assert run.status == HandlerRun.Status.SUCCEEDED and calls == [event.pk]
    finally:
        registry._subscribers.pop("replayProbe", None)
