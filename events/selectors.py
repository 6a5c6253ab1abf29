"""Reads of the event bus."""

from datetime import datetime
from uuid import UUID

from django.db.models import QuerySet

from events.models import Delivery, Event, HandlerRun
from sbt_site.errors import InvalidInput
from sbt_site.ids import parse_uuid


def event_tenant_id(event: Event, *, required: bool = False) -> UUID | None:
    """The tenant an event is about: its detail's ``tenantId``, or None when the detail has none
    or it is not a UUID. ``required``: raise InvalidInput instead of returning None, for a
    subscriber that cannot do its work without it (its run fails and the operator sees why)."""
    tenant_id = parse_uuid(event.detail.get("tenantId")) if isinstance(event.detail, dict) else None
    if tenant_id is None and required:
        raise InvalidInput(f"Event {event.pk} ({event.detail_type}) has no valid detail.tenantId")
    return tenant_id


def deliveries_to_replay(*, statuses: list[str], since: datetime | None = None) -> QuerySet[Delivery]:
    """Deliveries in one of ``statuses`` whose event was created at or after ``since``, oldest first."""
    deliveries = Delivery.objects.filter(status__in=statuses).select_related("event", "subscription")
    if since is not None:
        deliveries = deliveries.filter(event__created__gte=since)
    return deliveries.order_by("event__created", "created")


def handler_runs_to_replay(*, statuses: list[str], since: datetime | None = None) -> QuerySet[HandlerRun]:
    """In-process subscriber runs in one of ``statuses``, for events created at or after ``since``."""
    runs = HandlerRun.objects.filter(status__in=statuses).select_related("event")
    if since is not None:
        runs = runs.filter(event__created__gte=since)
    return runs.order_by("event__created", "created")


def outbox_oldest_undispatched_created() -> datetime | None:
    """When the oldest event not yet fanned out to its subscribers was written, or None when
    every event was dispatched (the outbox's lag is now minus this; a partial index serves it)."""
    return (
        Event.objects.filter(dispatched_at__isnull=True).order_by("created").values_list("created", flat=True).first()
    )
