"""The outbox core: publish inside the caller's transaction, dispatch once, sweep what was left."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from events import registry
from events.models import Event, HandlerRun
from events.services import event_dispatch, event_publish, events_sweep

pytestmark = pytest.mark.django_db

calls: list[tuple[str, str]] = []


@pytest.fixture(autouse=True)
def probe_subscribers():
    """Two subscribers of a test-only event type; one fails while ``fail`` is in the detail."""
    calls.clear()

    def recorder(event):
        calls.append(("recorder", event.detail["n"]))

    def flaky(event):
        if event.detail.get("fail"):
            raise RuntimeError("downstream is down")
        calls.append(("flaky", event.detail["n"]))

    registry.subscriber("probeHappened", name="tests.outbox.recorder")(recorder)
    registry.subscriber("probeHappened", name="tests.outbox.flaky")(flaky)
    yield
    registry._subscribers.pop("probeHappened", None)


def test_event_of_a_committed_transaction_is_dispatched_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            event = event_publish(detail_type="probeHappened", detail={"n": 1})
            assert calls == [], "nothing may run before commit"
    assert sorted(calls) == [("flaky", 1), ("recorder", 1)]
    event.refresh_from_db()
    assert event.dispatched_at is not None
    assert event.source == "sbt.control.plane"


def test_event_of_a_rolled_back_transaction_is_never_seen(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            event_publish(detail_type="probeHappened", detail={"n": 2})
            1 / 0  # noqa: B018
    assert callbacks == []
    assert not Event.objects.exists()
    assert calls == []


def test_dispatching_twice_runs_each_subscriber_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event = event_publish(detail_type="probeHappened", detail={"n": 3})
    event_dispatch(event_id=event.id)
    event_dispatch(event_id=event.id)
    assert sorted(calls) == [("flaky", 3), ("recorder", 3)]
    assert HandlerRun.objects.filter(event=event, status=HandlerRun.Status.SUCCEEDED).count() == 2


def test_a_failing_subscriber_does_not_stop_the_others_and_is_retried(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event = event_publish(detail_type="probeHappened", detail={"n": 4, "fail": True})
    assert calls == [("recorder", 4)]
    failed = HandlerRun.objects.get(event=event, status=HandlerRun.Status.FAILED)
    assert "downstream is down" in failed.last_error
    assert failed.next_attempt_at > timezone.now()

    # Not due yet: the sweep leaves it alone.
    assert events_sweep()["retried"] == 0
    # The downstream recovers; once due, the sweep retries only the failed subscriber.
    Event.objects.filter(pk=event.pk).update(detail={"n": 4})
    result = events_sweep(now=failed.next_attempt_at + timedelta(seconds=1))
    assert result["retried"] == 1
    assert calls == [("recorder", 4), ("flaky", 4)]
    failed.refresh_from_db()
    assert failed.status == HandlerRun.Status.SUCCEEDED and failed.attempts == 2


def test_a_subscriber_that_keeps_failing_ends_dead(settings, django_capture_on_commit_callbacks):
    settings.SBT = {"EVENT_HANDLER_MAX_ATTEMPTS": 2}
    with django_capture_on_commit_callbacks(execute=True):
        event = event_publish(detail_type="probeHappened", detail={"n": 5, "fail": True})
    run = HandlerRun.objects.get(event=event, handler__endswith="flaky")
    events_sweep(now=run.next_attempt_at + timedelta(seconds=1))
    run.refresh_from_db()
    assert run.status == HandlerRun.Status.DEAD and run.attempts == 2


def test_event_committed_but_never_dispatched_is_delivered_by_the_sweep(settings, django_capture_on_commit_callbacks):
    settings.SBT = {"EVENT_DISPATCH_ON_COMMIT": False}  # the process "dies" between commit and enqueue
    with django_capture_on_commit_callbacks(execute=True):
        event = event_publish(detail_type="probeHappened", detail={"n": 6})
    assert calls == []
    assert events_sweep()["dispatched"] == 0, "within the grace period the normal dispatch may still come"
    events_sweep(now=timezone.now() + timedelta(minutes=1))
    assert sorted(calls) == [("flaky", 6), ("recorder", 6)]
    event.refresh_from_db()
    assert event.dispatched_at is not None
