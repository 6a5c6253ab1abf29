"""Reads of the event bus."""

from datetime import datetime

from django.db.models import QuerySet

from events.models import Delivery, HandlerRun


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
