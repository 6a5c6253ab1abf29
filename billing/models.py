"""Billing records. The models are the system of record; the provider mirrors them outward."""

import uuid

from django.db import models


class BillingCustomer(models.Model):
    """A tenant as a customer of the billing provider (one per tenant)."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending (not yet created at the provider)"
        ACTIVE = "active"
        PAST_DUE = "past_due", "past due (a payment failed)"
        CANCELED = "canceled", "canceled (offboarded)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.PROTECT, related_name="billing_customer")
    provider = models.CharField(max_length=64, help_text="The provider that holds this customer (local, stripe).")
    provider_customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    provider_subscription_id = models.CharField(max_length=255, blank=True)
    subscription_status = models.CharField(max_length=64, blank=True)
    billed_prices = models.JSONField(
        default=list,
        blank=True,
        help_text='The tenant prices the subscription was last built from: [{"id", "metricName"}].',
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    # Webhooks arrive in any order: a provider event older than the last one applied is not applied.
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("created", "id")

    def __str__(self):
        return f"{self.tenant} ({self.provider} {self.provider_customer_id or 'pending'})"


class BillingUser(models.Model):
    """A user of a tenant, known to the billing provider where the provider has such a notion."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        DELETED = "deleted"

    customer = models.ForeignKey(BillingCustomer, on_delete=models.CASCADE, related_name="users")
    user_name = models.CharField(max_length=150)
    email = models.CharField(max_length=254, blank=True)
    provider_user_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("created", "id")
        constraints = [models.UniqueConstraint(fields=["customer", "user_name"], name="billing_user_once_per_customer")]

    def __str__(self):
        return self.user_name


class UsagePush(models.Model):
    """One usage record sent (or to be sent) to the provider for one tenant, meter and hourly window.

    ``identifier`` is deterministic (tenant, meter, window, revision): sending it again is
    recognised by the provider as the same record, so a retry never bills twice. Revision 0
    carries the window's total; a later revision corrects it (see docs/billing.md).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending (sent, answer not yet recorded)"
        SENT = "sent"
        FAILED = "failed"
        CANCELLING = "cancelling", "cancelling (cancellation asked, answer not yet recorded)"
        CANCELED = "canceled", "canceled (replaced by a later revision)"

    #: Rows a run (or the admin's retry) must still finish: a send or a cancellation not yet answered.
    UNFINISHED_SENDS = (Status.PENDING, Status.FAILED)
    UNFINISHED = (*UNFINISHED_SENDS, Status.CANCELLING)

    class Kind(models.TextChoices):
        TOTAL = "total", "the window's total"
        DELTA = "delta", "a correction added to what was sent"

    id = models.BigAutoField(primary_key=True)
    customer = models.ForeignKey(BillingCustomer, on_delete=models.PROTECT, related_name="usage_pushes")
    meter_api_name = models.CharField(max_length=255)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    revision = models.PositiveIntegerField(default=0)
    identifier = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.TOTAL)
    value = models.DecimalField(max_digits=30, decimal_places=12, help_text="The value sent to the provider.")
    window_total = models.DecimalField(
        max_digits=30, decimal_places=12, help_text="The window's total once this record is applied."
    )
    event_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    provider_reference = models.CharField(max_length=255, blank=True)
    provider_response = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-window_start", "meter_api_name", "revision")
        verbose_name = "usage push"
        verbose_name_plural = "usage pushes"
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "meter_api_name", "window_start", "revision"], name="usage_push_once_per_revision"
            )
        ]
        indexes = [models.Index(fields=["customer", "meter_api_name", "window_start"], name="usage_push_window")]

    def __str__(self):
        return self.identifier


class WebhookEvent(models.Model):
    """A verified event received from the billing provider, stored raw before it is processed."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSED = "processed"
        IGNORED = "ignored", "ignored (nothing to do)"
        FAILED = "failed"

    id = models.BigAutoField(primary_key=True)
    provider = models.CharField(max_length=64)
    provider_event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=128, db_index=True)
    body = models.TextField(help_text="The raw body, exactly as signed by the provider.")
    payload = models.JSONField(default=dict)
    provider_created = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-received", "-id")

    def __str__(self):
        return f"{self.event_type} {self.provider_event_id}"


class LocalBillingRecord(models.Model):
    """What the built-in local provider "bills": usage per tenant and period (like SBT's mock billing)."""

    provider_customer_id = models.CharField(max_length=255, db_index=True)
    meter_api_name = models.CharField(max_length=255)
    identifier = models.CharField(max_length=100, unique=True)
    period = models.CharField(max_length=7, help_text="YYYY-MM of the usage's timestamp.")
    timestamp = models.DateTimeField()
    value = models.DecimalField(max_digits=30, decimal_places=12)
    canceled = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("timestamp", "id")

    def __str__(self):
        return self.identifier
