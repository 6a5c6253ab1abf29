import uuid

from django.db import models
from django.utils import timezone


class Event(models.Model):
    """One event on the bus: the outbox row written in the transaction that caused it.

    ``detail_type`` is the plain name (``onboardingRequest``), whatever spelling came in.
    ``sender`` names who sent an inbound event, since its ``source`` is only what the sender said.
    """

    class Direction(models.TextChoices):
        OUTBOUND = "outbound", "outbound"
        INBOUND = "inbound", "inbound"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    detail_type = models.CharField(max_length=128, db_index=True)
    source = models.CharField(max_length=128)
    detail = models.JSONField(default=dict)
    direction = models.CharField(
        max_length=16,
        choices=Direction.choices,
        default=Direction.OUTBOUND,
        help_text="outbound: published by the control plane; inbound: received from the application plane.",
    )
    sender = models.CharField(
        max_length=255,
        blank=True,
        help_text="Inbound: the OAuth client id that sent the event (told to every webhook receiving it). "
        "Empty for the control plane's own events.",
    )
    created = models.DateTimeField(default=timezone.now, db_index=True)
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When the event was fanned out to its subscribers; empty until then."
    )

    class Meta:
        ordering = ("-created",)
        indexes = [
            models.Index(fields=["created"], name="event_undispatched", condition=models.Q(dispatched_at__isnull=True))
        ]

    def __str__(self):
        return f"{self.detail_type} {self.id}"


class HandlerRun(models.Model):
    """The run of one in-process subscriber for one event: at most one success per pair."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        DEAD = "dead", "dead (gave up)"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="handler_runs")
    handler = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "handler"], name="handler_run_once_per_event")]

    def __str__(self):
        return f"{self.handler} for {self.event_id}: {self.status}"


class Subscription(models.Model):
    """An outbound webhook: an HTTP endpoint (usually the application plane) that receives events.

    The signing secret must be usable to sign, so it cannot be hashed: it is stored encrypted
    (``events.crypto``) and shown in clear only once, when it is created.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=2000)
    event_types = models.JSONField(
        default=list,
        blank=True,
        help_text="Plain event type names this endpoint receives; empty means every control-plane event.",
    )
    enabled = models.BooleanField(default=True, db_index=True)
    description = models.CharField(max_length=255, blank=True)
    secret_encrypted = models.TextField(editable=False)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("created", "id")

    def __str__(self):
        return self.description or self.url


class Delivery(models.Model):
    """One event sent to one subscription: at most one per pair, so a repeated dispatch never
    delivers twice; retried with backoff until it succeeds or is dead (dead-letter)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed", "failed (will retry)"
        DEAD = "dead", "dead (gave up)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="Empty: as soon as possible.")
    # When the task last queued for it was due to start (now, or its retry's or deferral's time):
    # the sweep queues another only once this is EVENT_DELIVERY_REQUEUE_SECONDS old, so a backlog
    # in the queue is not queued again every 15 s. Empty: never queued, or the enqueue failed.
    enqueued_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ("-created",)
        constraints = [models.UniqueConstraint(fields=["event", "subscription"], name="delivery_once_per_subscription")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due",
                condition=models.Q(status__in=["pending", "failed"]),
            )
        ]

    def __str__(self):
        return f"{self.event_id} to {self.subscription_id}: {self.status}"


class BusPublication(models.Model):
    """One outbound event published to the external event bus (EventBridge), when one is
    configured (``SBT_PROVIDERS["events"]``): written when the event is dispatched, so an event
    the process died before sending is still pending here and the sweep sends it. Retried with
    backoff until the bus accepts it, like a webhook delivery."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed", "failed (will retry)"
        DEAD = "dead", "dead (gave up)"

    event = models.OneToOneField(Event, on_delete=models.CASCADE, related_name="bus_publication")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="Empty: as soon as possible.")
    last_error = models.TextField(blank=True)
    bus_event_id = models.CharField(
        max_length=128, blank=True, help_text="The id the bus gave the event (EventBridge's EventId)."
    )
    published_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created",)
        indexes = [
            models.Index(
                fields=["created"],
                name="bus_publication_due",
                condition=models.Q(status__in=["pending", "failed"]),
            )
        ]

    def __str__(self):
        return f"{self.event_id} to the bus: {self.status}"


class DeliveryAttempt(models.Model):
    """One HTTP attempt of a delivery, as the receiver answered it: the per-attempt log operators
    read on the delivery's page. Append-only: written once by ``delivery_attempt`` after the
    request, never updated, and kept when the delivery is replayed (its counter starts over, its
    history does not)."""

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField(
        help_text="The delivery's attempt counter after this attempt (1 after a replay)."
    )
    started_at = models.DateTimeField(db_index=True)
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no HTTP answer.")
    succeeded = models.BooleanField()
    response = models.TextField(blank=True, help_text="The error, or the start of the receiver's answer.")

    class Meta:
        ordering = ("-started_at", "-id")
        indexes = [models.Index(fields=["delivery", "started_at"], name="delivery_attempt_by_delivery")]

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or 'no answer'}"
