"""Writes of the event bus: publish, dispatch to subscribers, sweep."""

import logging
import random
import traceback
from datetime import timedelta
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from events.catalogue import control_plane_source
from events.models import Event, HandlerRun
from events.registry import handler_by_name, subscribers_for
from sbt_site.conf import sbt_settings

logger = logging.getLogger(__name__)


def event_publish(
    *,
    detail_type: str,
    detail: dict,
    source: str | None = None,
    direction: str = Event.Direction.OUTBOUND,
) -> Event:
    """Write an event to the outbox, inside the caller's transaction.

    It is dispatched after that transaction commits; if the transaction rolls back, nobody ever
    sees the event. If the process dies between commit and enqueue, the periodic sweep
    dispatches it.
    """
    event = Event.objects.create(
        detail_type=detail_type, detail=detail, source=source or control_plane_source(), direction=direction
    )
    if sbt_settings.EVENT_DISPATCH_ON_COMMIT:
        from events.tasks import dispatch_event

        event_id = str(event.id)
        transaction.on_commit(lambda: dispatch_event.delay(event_id), robust=True)
    return event


def _backoff(attempts: int) -> timedelta:
    """Exponential backoff with full jitter (AWS architecture blog), capped at one hour."""
    base = sbt_settings.EVENT_HANDLER_BACKOFF_SECONDS
    ceiling = min(3600, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


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
        try:
            if handler is None:
                raise LookupError(f"No subscriber named {handler_name} is registered any more")
            with transaction.atomic():
                handler(event)
        except Exception as exc:  # noqa: BLE001 - a failing subscriber must not stop the others
            logger.warning("Subscriber %s failed on %s (attempt %s): %s", handler_name, event, run.attempts, exc)
            run.last_error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
            if run.attempts >= sbt_settings.EVENT_HANDLER_MAX_ATTEMPTS:
                run.status = HandlerRun.Status.DEAD
                run.next_attempt_at = None
            else:
                run.status = HandlerRun.Status.FAILED
                run.next_attempt_at = timezone.now() + _backoff(run.attempts)
        else:
            run.status = HandlerRun.Status.SUCCEEDED
            run.next_attempt_at = None
            run.last_error = ""
        run.save()
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
    Event.objects.filter(pk=event.pk, dispatched_at__isnull=True).update(dispatched_at=timezone.now())
    event.refresh_from_db(fields=["dispatched_at"])
    return event


def events_sweep(*, now=None) -> dict:
    """Dispatch what a crash left behind and retry failed handler runs that are due."""
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
    return {"dispatched": len(undispatched), "retried": len(due)}
