"""The outbox: publishing an event in the caller's transaction, dispatching it after commit to
the in-process subscribers (one HandlerRun each), the webhook subscriptions and the external
bus when one is configured (events/services/bus.py), the sweep that re-dispatches what a crash
left behind, and replays."""

import logging
import traceback
from datetime import timedelta
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from events.catalogue import control_plane_source
from events.models import Delivery, Event, HandlerRun
from events.registry import handler_by_name, subscribers_for
from events.services.bus import (
    _bus_publication_create,
    _bus_publication_replay,
    _bus_publications_due_or_lost,
    _bus_publish_enqueue,
)
from events.services.common import HANDLER_BACKOFF_MAX_SECONDS, _attempt_record
from events.services.deliveries import _deliveries_create, _deliveries_enqueue, _due_deliveries
from sbt_site.conf import sbt_settings
from sbt_site.metrics import HANDLER_RUNS_DEAD

logger = logging.getLogger(__name__)


def event_publish(
    *,
    detail_type: str,
    detail: dict,
    source: str | None = None,
    direction: str = Event.Direction.OUTBOUND,
    sender: str = "",
) -> Event:
    """Write an event to the outbox, inside the caller's transaction.

    It is dispatched after that transaction commits; if the transaction rolls back, nobody ever
    sees the event. If the process dies between commit and enqueue, the periodic sweep
    dispatches it. ``sender`` is the client id of who sent an inbound event.
    """
    event = Event.objects.create(
        detail_type=detail_type,
        detail=detail,
        source=source or control_plane_source(),
        direction=direction,
        sender=sender,
    )
    if sbt_settings.EVENT_DISPATCH_ON_COMMIT:
        event_id = str(event.id)
        transaction.on_commit(lambda: _dispatch_enqueue(event_id), robust=True)
    return event


# What the enqueue after commit may spend on the broker. It runs on the request path, so a broker
# that is down or out of reach gets one short try (issue 18): Celery's defaults retried a refused
# connection for about a second and a connection that hangs for 40 s (redis-py's own retries of
# the 10 s socket timeout the worker needs). What is not enqueued stays undispatched in the outbox
# and the sweep (beat, every 15 s) dispatches it; the dispatch task itself retries as usual.
_ENQUEUE_TRANSPORT_OPTIONS = {
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
    "retry_on_timeout": False,
    "max_retries": 0,  # kombu's own reconnect loop when the producer takes its channel
}


def _dispatch_enqueue(event_id: str) -> None:
    from celery import current_app
    from kombu.exceptions import LimitExceeded, OperationalError
    from kombu.pools import producers

    from events.tasks import dispatch_event

    # kombu keeps one producer pool per broker URL and options (10 producers), shared by the
    # threads of a process; a healthy broker holds one for about a millisecond, so a thread that
    # waits a second for one is behind a broker in trouble and leaves the event to the sweep.
    connection = current_app.connection_for_write(transport_options=_ENQUEUE_TRANSPORT_OPTIONS)
    try:
        with producers[connection].acquire(block=True, timeout=1) as producer:
            dispatch_event.apply_async((event_id,), producer=producer, retry=True, retry_policy={"max_retries": 0})
    except (OperationalError, LimitExceeded) as exc:  # the broker's connection errors, as kombu raises them
        logger.warning("Event %s not enqueued, the sweep will dispatch it (broker: %r)", event_id, exc)


def handler_run_execute(*, event: Event, handler_name: str) -> HandlerRun:
    """Run one subscriber for one event unless it already succeeded (idempotent, concurrency-safe)."""
    handler = handler_by_name(handler_name)
    with transaction.atomic():
        try:
            with transaction.atomic():
                run, _ = HandlerRun.objects.get_or_create(event=event, handler=handler_name)
        except IntegrityError:
            pass  # another dispatcher created it first
        run = HandlerRun.objects.select_for_update().get(event=event, handler=handler_name)
        if run.status in (HandlerRun.Status.SUCCEEDED, HandlerRun.Status.DEAD):
            return run
        run.attempts += 1
        error = None
        try:
            if handler is None:
                raise LookupError(f"No subscriber named {handler_name} is registered any more")
            with transaction.atomic():
                handler(event)
        except Exception as exc:  # noqa: BLE001 - a failing subscriber must not stop the others
            logger.warning("Subscriber %s failed on %s (attempt %s): %s", handler_name, event, run.attempts, exc)
            error = "".join(traceback.format_exception_only(exc)).strip()
        _attempt_record(
            run,
            error=error,
            max_attempts=sbt_settings.EVENT_HANDLER_MAX_ATTEMPTS,
            base=sbt_settings.EVENT_HANDLER_BACKOFF_SECONDS,
            cap=HANDLER_BACKOFF_MAX_SECONDS,
        )
        run.save()
    if run.status == HandlerRun.Status.DEAD:
        HANDLER_RUNS_DEAD.labels(handler_name).inc()
    return run


def event_dispatch(*, event_id: UUID | str) -> Event | None:
    """Fan one event out to its in-process subscribers (and outbound subscriptions).

    Safe to call twice, concurrently or after a crash: each subscriber succeeds at most once.
    """
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        logger.warning("Event %s to dispatch does not exist (its transaction rolled back?)", event_id)
        return None
    for name in subscribers_for(event.detail_type):
        handler_run_execute(event=event, handler_name=name)
    _deliveries_create(event=event)
    if _bus_publication_create(event=event):
        _bus_publish_enqueue()
    Event.objects.filter(pk=event.pk, dispatched_at__isnull=True).update(dispatched_at=timezone.now())
    event.refresh_from_db(fields=["dispatched_at"])
    due = Delivery.objects.filter(event=event, subscription__enabled=True).filter(_due_deliveries(timezone.now()))
    _deliveries_enqueue(list(due.values_list("pk", flat=True)))
    return event


def events_sweep(*, now=None) -> dict:
    """The periodic safety net: dispatch events a crash left undispatched, retry failed
    subscriber runs that are due, and (re-)enqueue webhook deliveries that are due or whose
    enqueue was lost. Each delivery is sent by a worker task, so a slow receiver never holds
    the sweep."""
    now = now or timezone.now()
    grace = timedelta(seconds=sbt_settings.EVENT_SWEEP_GRACE_SECONDS)
    undispatched = list(
        Event.objects.filter(dispatched_at__isnull=True, created__lte=now - grace).values_list("pk", flat=True)[:1000]
    )
    for event_id in undispatched:
        event_dispatch(event_id=event_id)
    due = list(
        HandlerRun.objects.filter(status=HandlerRun.Status.FAILED, next_attempt_at__lte=now)
        .select_related("event")
        .order_by("next_attempt_at")[:1000]
    )
    for run in due:
        handler_run_execute(event=run.event, handler_name=run.handler)
    # Deliveries: failed ones that are due, and pending ones whose enqueue was lost (past the
    # grace period, so the normal enqueue is not raced) or whose task never sent them.
    # A delivery whose last task is still in the queue (a backlog) is not queued again before
    # EVENT_DELIVERY_REQUEUE_SECONDS past the time that task was due to start.
    requeue = timedelta(seconds=sbt_settings.EVENT_DELIVERY_REQUEUE_SECONDS)
    deliveries = list(
        Delivery.objects.filter(subscription__enabled=True)
        .filter(
            Q(status=Delivery.Status.FAILED, next_attempt_at__lte=now)
            | Q(status=Delivery.Status.PENDING, created__lte=now - grace)
            & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        )
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=now - requeue))
        .order_by("created")
        .values_list("pk", flat=True)[:1000]
    )
    _deliveries_enqueue(deliveries)
    # The external bus (EventBridge): one task sends every due publication, in batches.
    bus = _bus_publications_due_or_lost(now, grace)
    if bus:
        _bus_publish_enqueue()
    return {"dispatched": len(undispatched), "retried": len(due), "deliveries": len(deliveries), "bus": bus}


def handler_run_replay(*, run: HandlerRun) -> HandlerRun:
    """Run a failed or dead in-process subscriber again now, with a fresh set of attempts."""
    updated = HandlerRun.objects.filter(
        pk=run.pk, status__in=(HandlerRun.Status.FAILED, HandlerRun.Status.DEAD)
    ).update(status=HandlerRun.Status.PENDING, attempts=0, next_attempt_at=None, modified=timezone.now())
    if not updated:
        run.refresh_from_db()
        return run
    return handler_run_execute(event=run.event, handler_name=run.handler)


@transaction.atomic
def event_replay(*, event: Event) -> Event:
    """Retry everything of an event that did not succeed: dead or failed subscribers,
    deliveries and its publication to the bus get fresh attempts, and subscriptions created
    since the event also receive it."""
    HandlerRun.objects.filter(event=event, status__in=(HandlerRun.Status.FAILED, HandlerRun.Status.DEAD)).update(
        status=HandlerRun.Status.PENDING, attempts=0, next_attempt_at=None, modified=timezone.now()
    )
    Delivery.objects.filter(event=event, status__in=(Delivery.Status.FAILED, Delivery.Status.DEAD)).update(
        status=Delivery.Status.PENDING, attempts=0, next_attempt_at=None, modified=timezone.now()
    )
    _bus_publication_replay(event=event)  # dispatch below sends it
    event_id = str(event.pk)
    transaction.on_commit(lambda: _dispatch_enqueue(event_id), robust=True)
    return event
