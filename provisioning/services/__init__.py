"""Writes of the provisioning app: ``jobs`` (definitions, import/export) and ``runs`` (queueing,
executing, retrying and reporting runs), re-exported here."""

from provisioning.services.jobs import (
    FILE_FIELDS,
    TRIGGER_EVENTS,
    job_definition_clean,
    job_file_dumps,
    provisioning_job_create,
    provisioning_job_get,
    provisioning_job_update,
    provisioning_jobs_export,
    provisioning_jobs_import,
)
from provisioning.services.runs import (
    PROVISIONING_CALLER,
    provisioning_run_execute,
    provisioning_run_for_event_create,
    provisioning_run_retry,
    provisioning_runs_sweep,
    provisioning_test_run_create,
    runs_create_for_event,
)

__all__ = [
    "FILE_FIELDS",
    "PROVISIONING_CALLER",
    "TRIGGER_EVENTS",
    "job_definition_clean",
    "job_file_dumps",
    "provisioning_job_create",
    "provisioning_job_get",
    "provisioning_job_update",
    "provisioning_jobs_export",
    "provisioning_jobs_import",
    "provisioning_run_execute",
    "provisioning_run_for_event_create",
    "provisioning_run_retry",
    "provisioning_runs_sweep",
    "provisioning_test_run_create",
    "runs_create_for_event",
]
