"""Publishing outbound events to the external event bus (EventBridge), beside the webhooks.

At least once, never lost: dispatching an event writes its ``BusPublication`` (the sweep
dispatches events a crash left undispatched), and a worker sends the due publications in
batches the bus accepts (at most ``max_batch_entries`` entries and ``max_batch_bytes`` bytes a
call). Each entry's outcome is recorded with the retry state machine webhook deliveries use;
a publication whose send was lost (the worker died) is pending, and the sweep sends it again.
The rows of a batch stay locked while it is sent, so two workers never send the same event.
"""

import json
import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from events.catalogue import wire_name
from events.interface import BusEntry, EventBusTransport, bus_transport
from events.models import BusPublication, Event
from events.services.common import _attempt_record
from sbt_site.conf import sbt_settings

logger = logging.getLogger(__name__)


def _bus_publication_create(*, event: Event) -> bool:
    """The event's publication, when a bus is configured and the control plane published the
    event (the application plane's own events came from the bus, or would echo back to it);
    whether one is waiting to be sent."""
    if event.direction != Event.Direction.OUTBOUND or bus_transport() is None:
        return False
    # Unique per event: a repeated or concurrent dispatch creates nothing new.
    BusPublication.objects.bulk_create([BusPublication(event=event)], ignore_conflicts=True)
    return BusPublication.objects.filter(
        event=event, status__in=(BusPublication.Status.PENDING, BusPublication.Status.FAILED)
    ).exists()


def _bus_publish_enqueue() -> None:
    from events.tasks import publish_to_bus

    transaction.on_commit(publish_to_bus.delay, robust=True)


def _due_publications(now) -> Q:
    return Q(status__in=(BusPublication.Status.PENDING, BusPublication.Status.FAILED)) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def bus_entry(event: Event) -> BusEntry:
    """The event as SBT's control plane puts it on its bus: its source, its type in the
    configured spelling, its detail as JSON text."""
    return BusEntry(
        key=str(event.pk),
        source=event.source,
        detail_type=wire_name(event.detail_type),
        detail=json.dumps(event.detail, separators=(",", ":"), ensure_ascii=False),
    )


def bus_batch(entries: list[BusEntry], transport: EventBusTransport) -> tuple[list[BusEntry], list[BusEntry]]:
    """(the longest prefix of ``entries`` one call may carry, the entries too large for any
    call). The first entry always goes into the prefix unless it is too large by itself."""
    batch, too_large, size = [], [], 0
    for entry in entries:
        entry_size = transport.entry_size(entry)
        if entry_size > transport.max_batch_bytes:
            too_large.append(entry)
            continue
        if len(batch) == transport.max_batch_entries or size + entry_size > transport.max_batch_bytes:
            break
        batch.append(entry)
        size += entry_size
    return batch, too_large


def _bus_batch_send(transport: EventBusTransport, *, now) -> int:
    """Send one batch of due publications (oldest first) in its own transaction; how many were
    attempted (0: nothing due that another worker is not already sending)."""
    with transaction.atomic():
        rows = list(
            BusPublication.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event")
            .filter(_due_publications(now))
            .order_by("created")[: transport.max_batch_entries]
        )
        if not rows:
            return 0
        by_key = {str(row.event_id): row for row in rows}
        batch, too_large = bus_batch([bus_entry(row.event) for row in rows], transport)
        outcomes = transport.publish(batch) if batch else []
        attempted = []
        for entry in too_large:
            row = by_key[entry.key]
            row.attempts += 1
            row.status, row.next_attempt_at = BusPublication.Status.DEAD, None
            row.last_error = (
                f"The event is {transport.entry_size(entry)} bytes; the bus accepts at most "
                f"{transport.max_batch_bytes}: it can never be published"
            )
            attempted.append(row)
        for outcome in outcomes:
            row = by_key[outcome.key]
            row.attempts += 1
            if outcome.accepted:
                row.bus_event_id = outcome.bus_event_id[:128]
                row.published_at = timezone.now()
            _attempt_record(
                row,
                error=None if outcome.accepted else outcome.error,
                max_attempts=sbt_settings.EVENT_BUS_MAX_ATTEMPTS if outcome.retriable else row.attempts,
                base=sbt_settings.EVENT_BUS_BACKOFF_SECONDS,
                cap=sbt_settings.EVENT_BUS_BACKOFF_MAX_SECONDS,
            )
            if not outcome.accepted:
                logger.warning(
                    "Publishing event %s to the bus failed (attempt %s): %s", outcome.key, row.attempts, outcome.error
                )
            attempted.append(row)
        BusPublication.objects.bulk_update(
            attempted,
            ["status", "attempts", "next_attempt_at", "last_error", "bus_event_id", "published_at", "modified"],
        )
        return len(attempted)


def bus_publications_send(*, now=None, limit: int = 500) -> dict:
    """Send the due publications, one batch per call to the bus, until none is due or ``limit``
    were attempted; ``{"attempted": n, "more": bool}`` (more: the limit stopped it)."""
    transport = bus_transport()
    if transport is None:
        return {"attempted": 0, "more": False}
    now = now or timezone.now()
    attempted = 0
    while attempted < limit:
        sent = _bus_batch_send(transport, now=now)
        if not sent:
            return {"attempted": attempted, "more": False}
        attempted += sent
    return {"attempted": attempted, "more": True}


def _bus_publications_due_or_lost(now, grace) -> bool:
    """Whether the sweep has publications to send: failed ones that are due, pending ones whose
    send was lost (past the grace period, so the normal send is not raced)."""
    return (
        BusPublication.objects.filter(
            Q(status=BusPublication.Status.FAILED, next_attempt_at__lte=now)
            | Q(status=BusPublication.Status.PENDING, created__lte=now - grace)
        )
        .only("pk")
        .exists()
    )


def _bus_publication_replay(*, event: Event) -> bool:
    """Fresh attempts for an event's failed or dead publication; whether there was one."""
    return bool(
        BusPublication.objects.filter(
            event=event, status__in=(BusPublication.Status.FAILED, BusPublication.Status.DEAD)
        ).update(status=BusPublication.Status.PENDING, attempts=0, next_attempt_at=None, modified=timezone.now())
    )
