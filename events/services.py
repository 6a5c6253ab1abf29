"""Writes of the event bus: publish, dispatch to subscribers, sweep, webhook subscriptions and
their deliveries, and inbound events.

Longer than a module should be, on purpose for now: subscriber runs and webhook deliveries share
one retry state machine (``_attempt_record``) and one sweep, which are easiest to keep honest
side by side; the next split would move subscriptions and inbound events to modules of a
``services`` package re-exporting these names.
"""

import logging
import random
import traceback
from datetime import timedelta
from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.boundary import Caller, operation_authorize, tenant_visible
from events import crypto, egress, webhooks
from events.catalogue import (
    PUT_EVENTS_OPERATION,
    application_plane_source,
    canonical_name,
    control_plane_source,
    name_refusal,
)
from events.models import Delivery, Event, HandlerRun, Subscription
from events.registry import handler_by_name, inbound_handlers_for, inbound_operation, subscribers_for
from sbt_site.conf import sbt_settings
from sbt_site.errors import Forbidden, InvalidInput, ServiceError

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
        from events.tasks import dispatch_event

        event_id = str(event.id)
        transaction.on_commit(lambda: dispatch_event.delay(event_id), robust=True)
    return event


HANDLER_BACKOFF_MAX_SECONDS = 3600


def _backoff(attempts: int, *, base: float, cap: float) -> timedelta:
    """Exponential backoff with "equal jitter" (AWS architecture blog): half fixed, half random,
    so retries of many failures spread out but never come back immediately."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def _attempt_record(
    row: HandlerRun | Delivery, *, error: str | None, max_attempts: int, base: float, cap: float
) -> None:
    """The retry state machine of subscriber runs and webhook deliveries, for an attempt just
    made (``row.attempts`` counts it): succeeded when ``error`` is None; else failed and due
    again after the backoff, or dead once it was the ``max_attempts``-th. The caller saves."""
    if error is None:
        row.status = row.Status.SUCCEEDED
        row.next_attempt_at = None
        row.last_error = ""
        return
    row.last_error = error[:4000]
    if row.attempts >= max_attempts:
        row.status = row.Status.DEAD
        row.next_attempt_at = None
    else:
        row.status = row.Status.FAILED
        row.next_attempt_at = timezone.now() + _backoff(row.attempts, base=base, cap=cap)


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
    Event.objects.filter(pk=event.pk, dispatched_at__isnull=True).update(dispatched_at=timezone.now())
    event.refresh_from_db(fields=["dispatched_at"])
    due = Delivery.objects.filter(event=event, subscription__enabled=True).filter(_due_deliveries(timezone.now()))
    for delivery_id in due.values_list("pk", flat=True):
        _delivery_enqueue(delivery_id)
    return event


def _deliveries_create(*, event: Event) -> None:
    """One Delivery per matching enabled subscription; the unique (event, subscription) pair
    makes a repeated or concurrent dispatch create nothing new."""
    subscriptions = [
        subscription
        for subscription in Subscription.objects.filter(enabled=True)
        if event.detail_type in subscription.event_types
        # An empty list means "every control-plane event": inbound events are not echoed back
        # to the application plane unless a subscription names their type.
        or (not subscription.event_types and event.direction == Event.Direction.OUTBOUND)
    ]
    Delivery.objects.bulk_create(
        [Delivery(event=event, subscription=subscription) for subscription in subscriptions], ignore_conflicts=True
    )


def _due_deliveries(now) -> Q:
    return Q(status__in=(Delivery.Status.PENDING, Delivery.Status.FAILED)) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def _delivery_enqueue(delivery_id, *, eta=None) -> None:
    from events.tasks import deliver_event

    delivery_id = str(delivery_id)
    transaction.on_commit(lambda: deliver_event.apply_async((delivery_id,), eta=eta), robust=True)


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
    # grace period, so the normal enqueue is not raced).
    deliveries = list(
        Delivery.objects.filter(subscription__enabled=True)
        .filter(
            Q(status=Delivery.Status.FAILED, next_attempt_at__lte=now)
            | Q(status=Delivery.Status.PENDING, created__lte=now - grace)
            & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        )
        .order_by("created")
        .values_list("pk", flat=True)[:1000]
    )
    for delivery_id in deliveries:
        _delivery_enqueue(delivery_id)
    return {"dispatched": len(undispatched), "retried": len(due), "deliveries": len(deliveries)}


# --- Outbound webhook subscriptions ---------------------------------------------------------

EVENT_TYPE_MAX_LENGTH = 128
SECRET_MIN_LENGTH = 16
TEST_EVENT_TYPE = "subscriptionTest"


def subscription_url_validate(url: str) -> str:
    """The URL if a subscription may send to it: http(s), and a host whose every address the
    egress policy allows (events.egress). A name that does not resolve is refused too: it cannot
    be checked, and would only fail at delivery. Delivery checks again when it connects."""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except DjangoValidationError:
        raise InvalidInput(
            f"{url!r} is not a valid http(s) URL", detail=[{"loc": ["url"], "msg": "invalid URL", "type": "url"}]
        ) from None
    try:
        egress.url_check(url)
    except (egress.DestinationRefused, egress.DestinationUnresolved) as exc:
        raise InvalidInput(
            f"{url!r} cannot receive webhooks: {exc}",
            detail=[{"loc": ["url"], "msg": str(exc), "type": "egress_policy"}],
        ) from None
    return url


def event_types_normalize(event_types: list[str]) -> list[str]:
    """Plain, de-duplicated names; InvalidInput names the first that cannot be an event type.

    Custom names are allowed, except those ``events.catalogue.name_refusal`` refuses (the rule
    POST /events follows too): one a typo away from a standard event (``onbordingRequest``) would
    subscribe to nothing, silently."""
    names = []
    for raw in event_types:
        name = canonical_name(raw.strip())
        if not name or len(name) > EVENT_TYPE_MAX_LENGTH or any(char.isspace() for char in name):
            raise InvalidInput(
                f"{raw!r} is not an event type name (no spaces, 1 to {EVENT_TYPE_MAX_LENGTH} characters)",
                detail=[{"loc": ["eventTypes"], "msg": "invalid event type", "type": "value_error"}],
            )
        refusal = name_refusal(raw.strip())
        if refusal is not None:
            raise InvalidInput(refusal, detail=[{"loc": ["eventTypes"], "msg": refusal, "type": "value_error"}])
        names.append(name)
    return list(dict.fromkeys(names))


def _validated_secret(secret: str) -> str:
    if len(secret) < SECRET_MIN_LENGTH:
        raise InvalidInput(
            f"A signing secret needs at least {SECRET_MIN_LENGTH} characters",
            detail=[{"loc": ["secret"], "msg": "too short", "type": "value_error"}],
        )
    return secret


@transaction.atomic
def subscription_create(
    *,
    url: str,
    event_types: list[str],
    secret: str | None = None,
    description: str = "",
    enabled: bool = True,
) -> tuple[Subscription, str]:
    """Create an outbound webhook; returns it and its signing secret in clear (generated when
    not given). The secret is stored encrypted; this is the only time it is returned."""
    secret = _validated_secret(secret) if secret else crypto.secret_generate()
    subscription = Subscription.objects.create(
        url=subscription_url_validate(url),
        event_types=event_types_normalize(event_types),
        description=description,
        enabled=enabled,
        secret_encrypted=crypto.secret_encrypt(secret),
    )
    return subscription, secret


@transaction.atomic
def subscription_update(
    *,
    subscription: Subscription,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    secret: str | None = None,
) -> Subscription:
    """Change what is given; a new ``secret`` replaces the old one for every later attempt."""
    if url is not None:
        subscription.url = subscription_url_validate(url)
    if event_types is not None:
        subscription.event_types = event_types_normalize(event_types)
    if description is not None:
        subscription.description = description
    if enabled is not None:
        subscription.enabled = enabled
    if secret:
        subscription.secret_encrypted = crypto.secret_encrypt(_validated_secret(secret))
    subscription.save()
    return subscription


def delivery_attempt(*, delivery_id, now=None) -> Delivery | None:
    """Send one delivery if it is due; record the outcome and schedule the retry.

    The row stays locked during the request (bounded by the delivery timeouts), so two workers
    never send the same delivery at once; the second one skips it instead of waiting. Returns
    None when the delivery is gone or being sent by someone else.
    """
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "subscription")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return None
        not_due = delivery.next_attempt_at is not None and delivery.next_attempt_at > now
        if delivery.status in (Delivery.Status.SUCCEEDED, Delivery.Status.DEAD) or not_due:
            return delivery
        if not delivery.subscription.enabled:
            return delivery  # kept pending: re-enabling the subscription lets the sweep send it
        delivery.attempts += 1
        delivery.last_attempt_at = timezone.now()
        try:
            secret = crypto.secret_decrypt(delivery.subscription.secret_encrypted)
        except ValueError as exc:
            outcome = webhooks.Outcome(ok=False, status_code=None, error=str(exc))
        else:
            outcome = webhooks.post_event(
                url=delivery.subscription.url, event=delivery.event, secret=secret, delivery_id=str(delivery.pk)
            )
        delivery.last_status_code = outcome.status_code
        _attempt_record(
            delivery,
            error=None if outcome.ok else outcome.error,
            max_attempts=sbt_settings.EVENT_DELIVERY_MAX_ATTEMPTS,
            base=sbt_settings.EVENT_DELIVERY_BACKOFF_SECONDS,
            cap=sbt_settings.EVENT_DELIVERY_BACKOFF_MAX_SECONDS,
        )
        if outcome.ok:
            delivery.delivered_at = timezone.now()
        else:
            # The subscription id, not its URL: a URL may carry a token in its query string.
            logger.warning(
                "Delivery %s of event %s to subscription %s failed (attempt %s): %s",
                delivery.pk,
                delivery.event_id,
                delivery.subscription_id,
                delivery.attempts,
                outcome.error[:200],
            )
            if delivery.status == Delivery.Status.FAILED:
                _delivery_enqueue(delivery.pk, eta=delivery.next_attempt_at)
        delivery.save()
        return delivery


@transaction.atomic
def delivery_replay(*, delivery: Delivery, enqueue: bool = True) -> Delivery:
    """Give a failed or dead delivery a fresh set of attempts, starting now.

    A delivery that already succeeded is left alone: replay never sends an event twice to the
    same subscription.
    """
    delivery = Delivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status == Delivery.Status.SUCCEEDED:
        return delivery
    delivery.status = Delivery.Status.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = None
    delivery.save(update_fields=["status", "attempts", "next_attempt_at", "modified"])
    if enqueue:
        _delivery_enqueue(delivery.pk)
    return delivery


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
    """Retry everything of an event that did not succeed: dead or failed subscribers and
    deliveries get fresh attempts, and subscriptions created since the event also receive it."""
    HandlerRun.objects.filter(event=event, status__in=(HandlerRun.Status.FAILED, HandlerRun.Status.DEAD)).update(
        status=HandlerRun.Status.PENDING, attempts=0, next_attempt_at=None, modified=timezone.now()
    )
    Delivery.objects.filter(event=event, status__in=(Delivery.Status.FAILED, Delivery.Status.DEAD)).update(
        status=Delivery.Status.PENDING, attempts=0, next_attempt_at=None, modified=timezone.now()
    )
    from events.tasks import dispatch_event

    event_id = str(event.pk)
    transaction.on_commit(lambda: dispatch_event.delay(event_id), robust=True)
    return event


@transaction.atomic
def subscription_send_test_event(*, subscription: Subscription) -> Delivery:
    """Send a ``subscriptionTest`` event to this subscription only, to check its endpoint and
    its signature verification; the delivery is recorded like any other."""
    event = Event.objects.create(
        detail_type=TEST_EVENT_TYPE,
        source=control_plane_source(),
        detail={"subscriptionId": str(subscription.pk), "message": "Test event from the SBT control plane"},
        dispatched_at=timezone.now(),  # fanned out to this one subscription only, below
    )
    delivery = Delivery.objects.create(event=event, subscription=subscription)
    _delivery_enqueue(delivery.pk)
    return delivery


# --- Inbound events (POST /events) ----------------------------------------------------------


@transaction.atomic
def events_receive(*, entries: list[dict], caller: Caller) -> list[Event]:
    """Store events the application plane sent and apply them, all or nothing.

    Each entry is ``{"detail-type", "source"?, "detail"}``, already checked by
    ``events.api.serializers.EventEntryInput`` (shape, and no control-plane name or source).
    First every entry is authorized (``_entry_authorize``): one refusal is a ``Forbidden`` and
    nothing is stored. Then inbound handlers (``events.registry.inbound_handler``) run here,
    synchronously, with the caller's tenant binding; a ServiceError from one rolls the whole
    batch back. The events name their sender (``caller.client_id``), and the in-process
    subscribers run after commit, as for any event.
    """
    for entry in entries:
        _entry_authorize(caller, entry)
    events = []
    for index, entry in enumerate(entries):
        detail_type = canonical_name(entry["detail-type"])
        event = event_publish(
            detail_type=detail_type,
            detail=entry["detail"],
            source=entry.get("source") or application_plane_source(),
            direction=Event.Direction.INBOUND,
            sender=caller.client_id or "",
        )
        try:
            for handler in inbound_handlers_for(detail_type):
                handler(entry["detail"], client_tenant_id=caller.tenant_id)
        except ServiceError as exc:
            exc.entry_index = index  # lets the API say which entry of a batch was refused
            raise
        events.append(event)
    return events


def _entry_authorize(caller: Caller, entry: dict) -> None:
    """Raise ``Forbidden`` unless ``caller`` may send ``entry``: putEvents, and the operation its
    type performs (``events.registry.inbound_operation``: provisioning results change
    registrations, ingestUsage stores usage). A tenant-bound caller may moreover speak only of
    its own tenant: a ``detail.tenantId`` naming another (or no valid) tenant is refused, so
    subscribers never receive one tenant's event about another."""
    operation_authorize(caller, PUT_EVENTS_OPERATION)
    operation_authorize(caller, inbound_operation(canonical_name(entry["detail-type"])))
    detail = entry["detail"]
    if isinstance(detail, dict) and "tenantId" in detail and not tenant_visible(caller, detail["tenantId"]):
        raise Forbidden("Forbidden")
