"""Provisioning jobs (SBT's ScriptJob, built in) and their runs.

A job is the operator's script attached to an incoming event type; every matching event gets one
run per attempt. ``docs/provisioning.md`` puts the fields beside ScriptJob's.
"""

import uuid

from django.db import models
from django.db.models import Q


def _default_failure_status() -> dict:
    return {"tenantStatus": "Failed to provision tenant."}


class ProvisioningJob(models.Model):
    """A script run for each event of ``incoming_event``; its outcome is reported back as
    ``success_event`` / ``failure_event`` through the inbound path an external application plane
    uses. Written only through ``provisioning.services`` (they validate the whole definition)."""

    name = models.SlugField(max_length=100, unique=True, help_text="A stable name: commands and exports use it.")
    description = models.CharField(max_length=255, blank=True)
    enabled = models.BooleanField(default=True, db_index=True)
    incoming_event = models.CharField(
        max_length=128, help_text="The event type that starts a run (plain name, e.g. onboardingRequest)."
    )
    interpreter = models.CharField(
        max_length=255,
        default="bash",
        help_text="The command the script file is given to (e.g. bash, python3, 'bash -eo pipefail').",
    )
    script = models.TextField(help_text="Runs in a fresh empty directory; exports values by writing to $SBT_OUTPUT.")
    post_script = models.TextField(
        blank=True, help_text="Runs after the script whatever its outcome (SBT's postScript); failing fails the run."
    )
    job_identifier_key = models.CharField(
        max_length=128,
        default="tenantRegistrationId",
        help_text="Key copied from the incoming event's detail into the outgoing one (SBT's jobIdentifierKey).",
    )
    string_variables = models.JSONField(
        default=list,
        blank=True,
        help_text="Detail keys passed as environment variables holding the string value "
        "(environmentStringVariablesFromIncomingEvent).",
    )
    json_variables = models.JSONField(
        default=list,
        blank=True,
        help_text="Detail keys passed as environment variables holding the value as JSON "
        "(environmentJSONVariablesFromIncomingEvent).",
    )
    environment = models.JSONField(
        default=dict,
        blank=True,
        help_text="Fixed variables (scriptEnvironmentVariables). Stored as given: not for secrets.",
    )
    worker_environment = models.JSONField(
        default=list,
        blank=True,
        help_text="Names of the worker's own environment variables passed through (where secrets live).",
    )
    tenant_data_outputs = models.JSONField(
        default=list, blank=True, help_text="Exported variables sent back in jobOutput.tenantData."
    )
    registration_data_outputs = models.JSONField(
        default=list, blank=True, help_text="Exported variables sent back in jobOutput.tenantRegistrationData."
    )
    failure_status = models.JSONField(
        default=_default_failure_status,
        blank=True,
        help_text="The jobOutput of the failure event (SBT's jobFailureStatus); the run's reason is added.",
    )
    success_event = models.CharField(max_length=128, help_text="e.g. provisionSuccess")
    failure_event = models.CharField(max_length=128, help_text="e.g. provisionFailure")
    timeout_seconds = models.PositiveIntegerField(default=900)
    retryable = models.BooleanField(
        default=False, help_text="Retry a failed or timed-out script (a dead worker is always retried)."
    )
    max_attempts = models.PositiveIntegerField(default=3)
    retry_backoff_seconds = models.PositiveIntegerField(
        default=30, help_text="Wait before the 2nd attempt; doubled for each later one."
    )
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self):
        return self.name

    def output_names(self) -> list[str]:
        return [*self.tenant_data_outputs, *self.registration_data_outputs]


class ProvisioningRun(models.Model):
    """One attempt of one job for one event (or for a test detail, with no event).

    A retry is a new row (attempt + 1), so every attempt keeps its log. The database holds the
    invariants: one queued-or-running attempt per (job, event), one success per (job, event), and
    a running run holds one of the ``PROVISIONING_MAX_CONCURRENT_RUNS`` slots.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        TIMED_OUT = "timed_out", "failed (timed out)"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.TIMED_OUT)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(ProvisioningJob, on_delete=models.PROTECT, related_name="runs")
    event = models.ForeignKey(
        "events.Event", null=True, blank=True, on_delete=models.PROTECT, related_name="provisioning_runs"
    )
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.SET_NULL, related_name="provisioning_runs"
    )
    detail = models.JSONField(default=dict, help_text="The incoming event's detail the variables were taken from.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempt = models.PositiveIntegerField(default=1)
    not_before = models.DateTimeField(null=True, blank=True, help_text="A retry waits until then (backoff).")
    exit_code = models.IntegerField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why the run failed.")
    outputs = models.JSONField(default=dict, blank=True, help_text="The variables the script exported.")
    log = models.TextField(blank=True)
    reported_event = models.ForeignKey(
        "events.Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    report_error = models.TextField(blank=True, help_text="Why the control plane refused the reported outcome.")
    worker = models.CharField(max_length=255, blank=True)
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    slot = models.PositiveIntegerField(null=True, blank=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created",)
        constraints = [
            models.UniqueConstraint(
                fields=["job", "event"], condition=Q(status="succeeded"), name="provisioning_run_one_success"
            ),
            models.UniqueConstraint(
                fields=["job", "event"],
                condition=Q(status__in=["queued", "running"]),
                name="provisioning_run_one_active",
            ),
            models.UniqueConstraint(fields=["slot"], condition=Q(status="running"), name="provisioning_run_slot"),
        ]
        indexes = [
            models.Index(fields=["lease_expires_at"], name="provisioning_run_lease", condition=Q(status="running"))
        ]

    def __str__(self):
        return f"{self.job} #{self.attempt} ({self.status})"

    @property
    def is_test(self) -> bool:
        return self.event_id is None
