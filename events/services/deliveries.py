"""Webhook deliveries: one per (event, subscription), attempted with the egress policy and the
shared retry state machine, replayed by the operator.

A subscription has at most ``EVENT_DELIVERY_IN_FLIGHT_PER_SUBSCRIPTION`` attempts under way at
once, across every worker: a receiver that hangs until the timeout then holds that many worker
slots, never all of them, and the other subscriptions' deliveries go on (docs/performance.md
"Webhook fan-out"). An attempt over the limit is put back on the queue, not counted as an attempt.
"""

import logging
import random
import time
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from events import crypto, webhooks
from events.models import Delivery, DeliveryAttempt, Event, Subscription
from events.services.common import _attempt_record
from sbt_site.conf import sbt_settings
from sbt_site.metrics import DELIVERY_ATTEMPTS, DELIVERY_LAG_SECONDS

logger = logging.getLogger(__name__)

# What an attempt's log keeps of the answer: enough to tell what the receiver said.
ATTEMPT_RESPONSE_LIMIT = 500


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


def _deliveries_enqueue(delivery_ids: list, *, eta=None, countdown=None, deferrals: int = 0) -> None:
    """Queue a task per delivery once the transaction commits (at ``eta``, or after
    ``countdown`` seconds for a deferral), recording now, in one statement, when each is due to
    start (``enqueued_at``); an enqueue the broker refuses clears it, so the sweep queues that
    delivery after the grace period. (A process that dies between commit and enqueue leaves it
    for the sweep EVENT_DELIVERY_REQUEUE_SECONDS later.)"""
    from events.tasks import deliver_event

    if not delivery_ids:
        return
    delivery_ids = [str(delivery_id) for delivery_id in delivery_ids]
    due = eta or timezone.now() + timedelta(seconds=countdown or 0)
    Delivery.objects.filter(pk__in=delivery_ids).update(enqueued_at=due)

    def enqueue():
        for delivery_id in delivery_ids:
            try:
                if deferrals:
                    deliver_event.apply_async((delivery_id, deferrals), countdown=countdown)
                else:
                    deliver_event.apply_async((delivery_id,), eta=eta)
            except Exception:
                Delivery.objects.filter(pk=delivery_id, enqueued_at=due).update(enqueued_at=None)
                raise  # logged by on_commit(robust=True); the sweep queues the rest

    transaction.on_commit(enqueue, robust=True)


def _delivery_enqueue(delivery_id, *, eta=None, countdown=None, deferrals: int = 0) -> None:
    _deliveries_enqueue([delivery_id], eta=eta, countdown=countdown, deferrals=deferrals)


# Per-subscription slots are PostgreSQL advisory locks scoped to the attempt's transaction, so
# they are released when it ends however it ends (a worker killed mid-request included), and work
# through a transaction-pooling PgBouncer. The first key is this namespace, the second a hash of the
# subscription and slot: two subscriptions whose hashes collide share their slots, which only
# slows them, never sends anything twice.
_SLOT_LOCK_NAMESPACE = 0x5B7D
# A deferred delivery waits longer each time (from half a second up to the read timeout, with
# jitter); after this many deferrals (about 15 s) it is left due for the sweep, which queues it
# again EVENT_DELIVERY_REQUEUE_SECONDS after its last deferral was due. Short chains, and a pause
# between them: a hanging receiver's backlog would otherwise keep the workers busy deferring.
DEFERRAL_LIMIT = 5
DEFERRAL_FIRST_SECONDS = 0.5


def _subscription_slot_take(subscription_id) -> bool:
    """Take one of the subscription's in-flight slots for the current transaction; False when
    every slot is held by another attempt under way (0 in the setting: no limit)."""
    slots = sbt_settings.EVENT_DELIVERY_IN_FLIGHT_PER_SUBSCRIPTION
    if not slots:
        return True
    with connection.cursor() as cursor:
        for slot in random.sample(range(slots), slots):
            cursor.execute(
                "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))",
                [_SLOT_LOCK_NAMESPACE, f"{subscription_id}/{slot}"],
            )
            if cursor.fetchone()[0]:
                return True
    return False


def _deferral_countdown(deferrals: int) -> float:
    ceiling = sbt_settings.EVENT_DELIVERY_READ_TIMEOUT_SECONDS
    return min(ceiling, DEFERRAL_FIRST_SECONDS * 2**deferrals) * random.uniform(0.75, 1.25)


def delivery_attempt(*, delivery_id, now=None, deferrals: int = 0) -> Delivery | None:
    """Send one delivery if it is due; record the outcome and schedule the retry.

    The row stays locked during the request (bounded by the delivery timeouts), so two workers
    never send the same delivery at once; the second one skips it instead of waiting. When its
    subscription already has its limit of attempts under way, the delivery is enqueued again a
    little later (``deferrals`` says how many times it has been) and the worker slot is freed.
    Returns None when the delivery is gone, being sent by someone else, or deferred.
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
        if not _subscription_slot_take(delivery.subscription_id):
            if deferrals < DEFERRAL_LIMIT:
                _delivery_enqueue(delivery.pk, countdown=_deferral_countdown(deferrals), deferrals=deferrals + 1)
            return None
        delivery.attempts += 1
        delivery.last_attempt_at = timezone.now()
        started = time.monotonic()
        try:
            secret = crypto.secret_decrypt(delivery.subscription.secret_encrypted)
        except ValueError as exc:
            outcome = webhooks.Outcome(ok=False, status_code=None, error=str(exc))
        else:
            outcome = webhooks.post_event(
                url=delivery.subscription.url, event=delivery.event, secret=secret, delivery_id=str(delivery.pk)
            )
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            started_at=delivery.last_attempt_at,
            duration_ms=round((time.monotonic() - started) * 1000),
            status_code=outcome.status_code,
            succeeded=outcome.ok,
            response=outcome.error[:ATTEMPT_RESPONSE_LIMIT],
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
        delivery.save()
        if delivery.status == Delivery.Status.FAILED:
            # after the save, which would write the instance's older enqueued_at over it
            _delivery_enqueue(delivery.pk, eta=delivery.next_attempt_at)
    _attempt_count(delivery)
    return delivery


def _attempt_count(delivery: Delivery) -> None:
    """Count an attempt in the metrics (sbt_site/metrics.py): its outcome, and for a success how
    long after the event it arrived."""
    outcome = "failed" if delivery.status == Delivery.Status.FAILED else delivery.status
    DELIVERY_ATTEMPTS.labels(str(delivery.subscription_id), outcome).inc()
    if delivery.status == Delivery.Status.SUCCEEDED:
        DELIVERY_LAG_SECONDS.observe((delivery.delivered_at - delivery.event.created).total_seconds())


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
