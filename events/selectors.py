"""Reads of the event bus, and of webhook endpoints' health for the operator's console."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db.models import Count, Max, Q, QuerySet

from events.models import Delivery, DeliveryAttempt, Event, HandlerRun, Subscription
from sbt_site.errors import InvalidInput
from sbt_site.ids import parse_uuid
from sbt_site.selectors import status_counts


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


def delivery_status_counts() -> dict[str, int]:
    """How many webhook deliveries are in each status (every status present, zero when none)."""
    return status_counts(Delivery.objects.all(), Delivery.Status.values)


def delivery_attempt_list(*, delivery_id) -> QuerySet[DeliveryAttempt]:
    """Every attempt of a delivery, newest first, across replays."""
    return DeliveryAttempt.objects.filter(delivery_id=delivery_id).order_by("-started_at", "-id")


def event_list_for_tenant(*, tenant_id: UUID) -> QuerySet[Event]:
    """The events about one tenant (their detail's ``tenantId``), newest first."""
    return Event.objects.filter(detail__tenantId=str(tenant_id)).order_by("-created")


def delivery_get(*, delivery_id) -> Delivery | None:
    return Delivery.objects.select_related("event", "subscription").filter(pk=parse_uuid(delivery_id)).first()


def recent_event_list(*, since: datetime) -> QuerySet[Event]:
    """Events created at or after ``since``, newest first."""
    return Event.objects.filter(created__gte=since).order_by("-created")


def delivery_list_for_events(*, event_ids) -> QuerySet[Delivery]:
    return Delivery.objects.filter(event_id__in=list(event_ids)).select_related("subscription")


@dataclass(frozen=True)
class SubscriptionHealth:
    """How one webhook endpoint has answered since a moment: attempts, their success rate
    (None without attempts), its last failed attempt, and deliveries still owed or given up."""

    subscription: Subscription
    attempts: int
    succeeded: int
    success_rate: float | None
    last_failure: DeliveryAttempt | None
    last_success_at: datetime | None
    retrying: int
    dead: int


def subscription_health_list(*, since: datetime, subscription_id: UUID | None = None) -> list[SubscriptionHealth]:
    """The health of every subscription (oldest first), or of one, from the attempts made since
    ``since``; deliveries still owed or dead are counted whenever they were created."""
    subscriptions = Subscription.objects.order_by("created", "id")
    attempt_rows = DeliveryAttempt.objects.filter(started_at__gte=since)
    if subscription_id is not None:
        subscriptions = subscriptions.filter(pk=subscription_id)
        attempt_rows = attempt_rows.filter(delivery__subscription_id=subscription_id)
    attempts = {
        row["delivery__subscription_id"]: row
        for row in attempt_rows.values("delivery__subscription_id")
        .annotate(
            total=Count("pk"),
            successes=Count("pk", filter=Q(succeeded=True)),
            last_success_at=Max("started_at", filter=Q(succeeded=True)),
        )
        .order_by()
    }
    owed = {
        row["subscription_id"]: row
        for row in Delivery.objects.values("subscription_id")
        .annotate(
            retrying=Count("pk", filter=Q(status__in=(Delivery.Status.PENDING, Delivery.Status.FAILED))),
            dead=Count("pk", filter=Q(status=Delivery.Status.DEAD)),
        )
        .order_by()
    }
    health = []
    for subscription in subscriptions:
        row = attempts.get(subscription.pk, {})
        total, succeeded = row.get("total", 0), row.get("successes", 0)
        last_failure = (
            DeliveryAttempt.objects.filter(delivery__subscription=subscription, succeeded=False)
            .order_by("-started_at", "-id")
            .first()
        )
        health.append(
            SubscriptionHealth(
                subscription=subscription,
                attempts=total,
                succeeded=succeeded,
                success_rate=succeeded / total if total else None,
                last_failure=last_failure,
                last_success_at=row.get("last_success_at"),
                retrying=owed.get(subscription.pk, {}).get("retrying", 0),
                dead=owed.get(subscription.pk, {}).get("dead", 0),
            )
        )
    return health


def outbox_oldest_undispatched_created() -> datetime | None:
    """When the oldest event not yet fanned out to its subscribers was written, or None when
    every event was dispatched (the outbox's lag is now minus this; a partial index serves it)."""
    return (
        Event.objects.filter(dispatched_at__isnull=True).order_by("created").values_list("created", flat=True).first()
    )
