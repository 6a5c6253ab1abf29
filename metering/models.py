"""Metering data: meters, customers, raw usage events, the deduplication key store and rollups.

On PostgreSQL ``UsageEvent`` is range-partitioned by month on ``timestamp`` (see migration 0001
and docs/metering.md); its partitions are created ahead by a periodic task and on demand.
"""

import uuid

from django.db import models

# Rollup granularity. 15 minutes divides every UTC offset in use today (+05:30 Kolkata, +05:45
# Nepal, +12:45 Chatham), so every HOUR/DAY/WEEK/MONTH window of any such zone is a whole number
# of buckets and queries from the rollup are exact.
BUCKET_SECONDS = 15 * 60
# Each event is rolled up at three spans. A query reads the coarsest span that divides all of
# its window boundaries: UTC days read daily rows, whole-hour zones (New York) hourly rows,
# half- and quarter-hour zones (Kolkata, Nepal) the 15-minute rows.
ROLLUP_SPANS = (86400, 3600, BUCKET_SECONDS)


class RollupZone(models.Model):
    """A time zone whose local days are rolled up too (PostgreSQL only): every ingestion then
    writes one more rollup row per (meter, tenant, local day, dimensions), with ``span`` =
    ``-id`` and ``bucket`` = the local midnight, so a whole answer in that zone's days, weeks or
    months reads one row per tenant and day, as a UTC answer does. Queries read those rows only
    once ``ready`` (the rows of the days before it was added are backfilled). See
    docs/metering.md "Rollups in your customers' time zones"."""

    name = models.CharField("IANA time zone", max_length=64, unique=True)
    ready = models.BooleanField(default=False, help_text="Backfilled: queries read its rows.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        verbose_name = "rollup time zone"

    def __str__(self):
        return self.name

    @property
    def span(self) -> int:
        """The ``span`` of its rows in the rollup table (negative: never a length in seconds)."""
        return -self.id


class Meter(models.Model):
    class Aggregation(models.TextChoices):
        SUM = "SUM"
        COUNT = "COUNT"
        MAX = "MAX"
        MIN = "MIN"
        UNIQUE_COUNT = "UNIQUE_COUNT"
        LATEST = "LATEST"
        AVG = "AVG"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    api_name = models.CharField("meter API name", max_length=128, unique=True)
    label = models.CharField(max_length=255, blank=True)
    aggregation = models.CharField(max_length=16, choices=Aggregation.choices)
    value_property = models.CharField(max_length=128, default="meterValue")
    unique_property = models.CharField(max_length=128, blank=True)
    dimensions = models.JSONField(default=list, blank=True, help_text="Allowed group-by keys")
    unit = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True, help_text="An inactive (archived) meter refuses new usage.")
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("created", "id")

    def __str__(self):
        return self.api_name


class MeteringCustomer(models.Model):
    """A tenant as a metering customer; ``offboarded`` tenants may not report usage any more."""

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="metering_customer")
    offboarded = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"metering customer {self.tenant_id}"


class UsageEventKey(models.Model):
    """The deduplication key store: one row per (tenant, eventId) ever accepted.

    It is separate from the partitioned raw table because a unique index on a partitioned table
    must contain the partition key, and an eventId must be unique whatever its timestamp.
    """

    id = models.BigAutoField(primary_key=True)
    tenant_id = models.UUIDField()
    event_id = models.CharField(max_length=255)
    timestamp = models.DateTimeField(help_text="The event's timestamp: which partition holds it.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant_id", "event_id"], name="usage_event_key_unique")]

    def __str__(self):
        return f"{self.event_id} ({self.tenant_id})"


class UsageEvent(models.Model):
    """One raw usage event, kept for audit even when cancelled."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    meter = models.ForeignKey(Meter, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    event_id = models.CharField(max_length=255)
    timestamp = models.DateTimeField()
    value = models.DecimalField(max_digits=38, decimal_places=9)
    unique_value = models.TextField(blank=True)
    dimensions = models.JSONField(default=dict, blank=True)
    ingested_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-timestamp", "-id")

    def __str__(self):
        return f"{self.event_id} ({self.tenant_id})"


class UsageRollup(models.Model):
    """Aggregates of the non-cancelled events of one (meter, tenant, span, bucket, dimensions);
    ``span`` is the bucket length in seconds (see ROLLUP_SPANS).

    Maintained in the ingesting (or cancelling) transaction, so reads never lag acknowledged
    writes. ``last_*`` is the latest event by (timestamp, eventId), for LATEST.
    """

    id = models.BigAutoField(primary_key=True)
    # no index of its own: the unique constraint leads with meter (one index less per write)
    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="+", db_index=False)
    tenant_id = models.UUIDField()
    span = models.IntegerField(default=BUCKET_SECONDS)
    bucket = models.DateTimeField()
    dimensions = models.JSONField(default=dict, blank=True)
    total = models.DecimalField(max_digits=38, decimal_places=9)
    count = models.BigIntegerField()
    minimum = models.DecimalField(max_digits=38, decimal_places=9)
    maximum = models.DecimalField(max_digits=38, decimal_places=9)
    last_at = models.DateTimeField()
    last_event_id = models.CharField(max_length=255)
    last_value = models.DecimalField(max_digits=38, decimal_places=9)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "tenant_id", "span", "bucket", "dimensions"], name="usage_rollup_unique"
            )
        ]
        indexes = [models.Index(fields=["meter", "span", "bucket"], name="usage_rollup_meter_bucket")]

    def __str__(self):
        return f"{self.meter_id} {self.tenant_id} {self.bucket:%Y-%m-%d %H:%M}"


class UsageUniqueValue(models.Model):
    """Distinct values per (meter, tenant, bucket, dimensions) with how many live events carry
    each, so UNIQUE_COUNT is exact over any set of buckets and survives cancellation."""

    id = models.BigAutoField(primary_key=True)
    # no index of its own: the unique constraint leads with meter (one index less per write)
    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="+", db_index=False)
    tenant_id = models.UUIDField()
    bucket = models.DateTimeField()
    dimensions = models.JSONField(default=dict, blank=True)
    unique_value = models.TextField()
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "tenant_id", "bucket", "dimensions", "unique_value"], name="usage_unique_value_unique"
            )
        ]
        indexes = [models.Index(fields=["meter", "bucket"], name="usage_unique_meter_bucket")]

    def __str__(self):
        return f"{self.unique_value} x{self.count}"
