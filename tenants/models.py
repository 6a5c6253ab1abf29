import uuid

from django.db import models
from django.db.models.functions import Lower


class Tenant(models.Model):
    """A customer organisation of the SaaS product.

    First-class columns hold what the control plane reasons about; ``data`` holds every other
    key a client sent, which the API returns flattened beside them (as SBT does).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField("tenant name", max_length=255, db_index=True)
    email = models.CharField(max_length=254, blank=True)
    tier = models.CharField(max_length=64, blank=True)
    active = models.BooleanField("active (sbtaws_active)", default=True, db_index=True)
    prices = models.JSONField(
        default=list, blank=True, help_text='Billing prices: [{"id": "<price id>", "metricName": "<meter api name>"}]'
    )
    config = models.JSONField("tenant config", null=True, blank=True)
    data = models.JSONField("free-form data", default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    modified = models.DateTimeField(auto_now=True)
    deleted = models.DateTimeField(
        null=True, blank=True, help_text="When the tenant was offboarded or deleted; its name is free again."
    )

    class Meta:
        ordering = ("created", "id")
        constraints = [
            # The name is a public lookup key (GET /tenant-config/{name}, and by Origin): two live
            # tenants of one name would let the newer one answer for the older.
            models.UniqueConstraint(
                Lower("name"),
                condition=models.Q(deleted__isnull=True) & ~models.Q(name=""),
                name="tenant_name_unique_while_not_deleted",
            )
        ]

    def __str__(self):
        return self.name or str(self.id)


class TenantRegistration(models.Model):
    """The onboarding (and offboarding) of one tenant, as SBT's tenant registration.

    ``status`` follows the flow of CONTRACT.md: ``In progress`` → ``created`` | ``failed`` while
    onboarding; ``deleting`` → ``deleted`` | ``failed`` once offboarded (``offboarded`` is set).
    ``data`` holds the free-form ``tenantRegistrationData`` keys.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "In progress"
        CREATED = "created"
        FAILED = "failed"
        DELETING = "deleting"
        DELETED = "deleted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.OneToOneField(Tenant, on_delete=models.PROTECT, related_name="registration")
    active = models.BooleanField("active (sbtaws_active)", default=True, db_index=True)
    status = models.CharField(
        "registration status", max_length=32, choices=Status.choices, default=Status.IN_PROGRESS, db_index=True
    )
    status_reason = models.TextField(
        "failure reason", blank=True, help_text="Why (de)provisioning failed, as the application plane said."
    )
    offboarded = models.DateTimeField(
        null=True, blank=True, help_text="When offboarding was requested; empty while the tenant is onboarded."
    )
    data = models.JSONField("free-form data", default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("created", "id")

    def __str__(self):
        return f"registration of {self.tenant} ({self.status})"
