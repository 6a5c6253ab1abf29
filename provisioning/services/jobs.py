"""Writes of provisioning jobs: one validation for every face (admin form, import file, command),
all errors at once, nothing saved unless the whole definition is valid."""

import json
import re
import shlex

from django.db import transaction

from events.catalogue import (
    APPLICATION_PLANE_EVENTS,
    CONTROL_PLANE_EVENTS,
    canonical_name,
    standard_name_near,
)
from provisioning.models import ProvisioningJob
from provisioning.runner import BASE_ENVIRONMENT, NAME, OUTPUT_VARIABLE
from sbt_site.errors import InvalidInput, NotFound
from tenants.wire import OWNED_KEYS

# The events a job may start on: the control plane's requests to its application plane. The
# user events are left out: an application plane answers tenant lifecycle and billing events,
# and every trigger type costs a subscriber run per event of that type.
TRIGGER_EVENTS = tuple(name for name in CONTROL_PLANE_EVENTS if name not in ("tenantUserCreated", "tenantUserDeleted"))
# What the script's environment always holds: a job may not set or import these.
RESERVED_VARIABLES = frozenset({*BASE_ENVIRONMENT, "HOME", OUTPUT_VARIABLE, "SBT_RUN_ID", "SBT_ATTEMPT"})
MAX_TIMEOUT_SECONDS = 24 * 3600
MAX_ATTEMPTS = 20

# The job file (export/import) speaks SBT's ScriptJob names; file key -> model field.
FILE_FIELDS = {
    "name": "name",
    "description": "description",
    "enabled": "enabled",
    "incomingEvent": "incoming_event",
    "interpreter": "interpreter",
    "script": "script",
    "postScript": "post_script",
    "jobIdentifierKey": "job_identifier_key",
    "environmentStringVariablesFromIncomingEvent": "string_variables",
    "environmentJSONVariablesFromIncomingEvent": "json_variables",
    "scriptEnvironmentVariables": "environment",
    "workerEnvironmentVariables": "worker_environment",
    "tenantDataOutputs": "tenant_data_outputs",
    "tenantRegistrationDataOutputs": "registration_data_outputs",
    "jobFailureStatus": "failure_status",
    "outgoingSuccessEvent": "success_event",
    "outgoingFailureEvent": "failure_event",
    "timeoutSeconds": "timeout_seconds",
    "retryable": "retryable",
    "maxAttempts": "max_attempts",
    "retryBackoffSeconds": "retry_backoff_seconds",
}
FIELDS = tuple(FILE_FIELDS.values())
REQUIRED = ("name", "incoming_event", "script", "success_event", "failure_event")


class _Errors:
    def __init__(self):
        self.detail: list[dict] = []

    def add(self, field: str, message: str, kind: str = "invalid") -> None:
        self.detail.append({"loc": [field], "msg": message, "type": kind})

    def raise_if_any(self) -> None:
        if self.detail:
            summary = "; ".join(f"{item['loc'][0]}: {item['msg']}" for item in self.detail)
            raise InvalidInput(f"Invalid provisioning job: {summary}", detail=self.detail)


def _event_name(errors: _Errors, field: str, value, allowed: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or not value:
        errors.add(field, "required", "missing")
        return ""
    plain = canonical_name(value.strip())
    if plain not in allowed:
        near = standard_name_near(plain)
        hint = f" (did you mean {near}?)" if near in allowed else ""
        errors.add(field, f"unknown event type {value!r}{hint}: {what} is one of {', '.join(allowed)}", "unknown_event")
    return plain


def _names(errors: _Errors, field: str, value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors.add(field, "must be a list of variable names", "type_error")
        return []
    for name in value:
        if not NAME.match(name):
            errors.add(field, f"{name!r} is not a variable name (letters, digits and _, not starting with a digit)")
        elif name in RESERVED_VARIABLES:
            errors.add(field, f"{name} is set by the runner and cannot be used")
    duplicates = sorted({name for name in value if value.count(name) > 1})
    if duplicates:
        errors.add(field, f"listed twice: {', '.join(duplicates)}")
    return value


def _integer(errors: _Errors, field: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.add(field, f"must be a whole number from {low} to {high}")
        return low
    return value


def _mentions(script: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", script) is not None


def job_definition_clean(values: dict, *, instance: ProvisioningJob | None = None) -> dict:
    """The model field values of a valid job from ``values`` (model field names; on update the
    missing ones are the instance's), or InvalidInput listing every problem with its field."""
    errors = _Errors()
    unknown = sorted(set(values) - set(FIELDS))
    for key in unknown:
        errors.add(key, f"unknown field {key!r}", "unknown_field")
    current = {field: getattr(instance, field) for field in FIELDS} if instance else {}
    if instance is None:
        defaults = ProvisioningJob()
        current = {field: getattr(defaults, field) for field in FIELDS}
        for field in REQUIRED:
            current[field] = None
    data = {**current, **{key: value for key, value in values.items() if key in FIELDS}}

    name = data["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[-a-zA-Z0-9_]{1,100}", name or ""):
        errors.add("name", "required: 1 to 100 letters, digits, - and _", "missing" if not name else "invalid")
    elif ProvisioningJob.objects.filter(name=name).exclude(pk=getattr(instance, "pk", None)).exists():
        errors.add("name", f"a job named {name} exists already", "unique")
    for field in ("description", "job_identifier_key"):
        if not isinstance(data[field], str):
            errors.add(field, "must be text", "type_error")
    if not data["job_identifier_key"]:
        errors.add("job_identifier_key", "required", "missing")
    for field in ("enabled", "retryable"):
        if not isinstance(data[field], bool):
            errors.add(field, "must be true or false", "type_error")
    data["incoming_event"] = _event_name(errors, "incoming_event", data["incoming_event"], TRIGGER_EVENTS, "a trigger")
    for field in ("success_event", "failure_event"):
        data[field] = _event_name(errors, field, data[field], APPLICATION_PLANE_EVENTS, "an outcome")
    if data["success_event"] and data["success_event"] == data["failure_event"]:
        errors.add("failure_event", "must differ from the success event")

    try:
        if not isinstance(data["interpreter"], str) or not shlex.split(data["interpreter"]):
            errors.add("interpreter", "required: a command such as bash or python3", "missing")
    except ValueError as exc:
        errors.add("interpreter", f"cannot be read as a command line: {exc}")
    for field in ("script", "post_script"):
        if not isinstance(data[field], str) or "\x00" in (data[field] or ""):
            errors.add(field, "must be text", "type_error")
            data[field] = ""
    if not data["script"]:
        errors.add("script", "required", "missing")

    imported = {
        field: _names(errors, field, data[field])
        for field in ("string_variables", "json_variables", "worker_environment")
    }
    environment = data["environment"]
    if not isinstance(environment, dict) or not all(isinstance(value, str) for value in environment.values()):
        errors.add("environment", 'must be a JSON object of names to text values, e.g. {"STAGE": "prod"}', "type_error")
        environment = {}
    _names(errors, "environment", list(environment))
    seen: dict[str, str] = {}
    for field, names in [*imported.items(), ("environment", list(environment))]:
        for variable in names:
            if variable in seen and seen[variable] != field:
                errors.add(field, f"{variable} is also set by {seen[variable]}: a variable comes from one place")
            seen.setdefault(variable, field)

    scripts = f"{data['script'] or ''}\n{data['post_script'] or ''}"
    outputs = {
        field: _names(errors, field, data[field]) for field in ("tenant_data_outputs", "registration_data_outputs")
    }
    for field, names in outputs.items():
        for variable in names:
            if variable in OWNED_KEYS:
                errors.add(field, f"{variable} is the control plane's to set and cannot be exported")
            elif not _mentions(scripts, variable):
                errors.add(
                    field,
                    f"{variable} is not exported by the script: it never mentions {variable} "
                    f'(write it with: echo "{variable}=..." >> "$SBT_OUTPUT")',
                    "not_exported",
                )
    both = sorted(set(outputs["tenant_data_outputs"]) & set(outputs["registration_data_outputs"]))
    if both:
        errors.add("registration_data_outputs", f"also in tenant data outputs: {', '.join(both)}")
    if not isinstance(data["failure_status"], dict):
        errors.add("failure_status", "must be a JSON object", "type_error")
    data["timeout_seconds"] = _integer(errors, "timeout_seconds", data["timeout_seconds"], 1, MAX_TIMEOUT_SECONDS)
    data["max_attempts"] = _integer(errors, "max_attempts", data["max_attempts"], 1, MAX_ATTEMPTS)
    data["retry_backoff_seconds"] = _integer(
        errors, "retry_backoff_seconds", data["retry_backoff_seconds"], 0, MAX_TIMEOUT_SECONDS
    )
    errors.raise_if_any()
    return data


@transaction.atomic
def provisioning_job_create(*, values: dict) -> ProvisioningJob:
    """Create a job from ``values`` (model field names), all of it or nothing."""
    job = ProvisioningJob(**job_definition_clean(values))
    job.save()
    return job


@transaction.atomic
def provisioning_job_update(*, job_id, values: dict) -> ProvisioningJob:
    """Change the given fields of a job; runs already started keep the definition they began with."""
    job = ProvisioningJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"Provisioning job {job_id} not found")
    for field, value in job_definition_clean(values, instance=job).items():
        setattr(job, field, value)
    job.save()
    return job


def provisioning_job_get(*, name: str) -> ProvisioningJob:
    job = ProvisioningJob.objects.filter(name=name).first()
    if job is None:
        raise NotFound(f"No provisioning job named {name!r}")
    return job


def provisioning_jobs_export(*, names: list[str] | None = None) -> dict:
    """The jobs as a JSON-ready document in SBT's field names (``FILE_FIELDS``), for git."""
    jobs = ProvisioningJob.objects.order_by("name")
    if names:
        missing = sorted(set(names) - set(jobs.filter(name__in=names).values_list("name", flat=True)))
        if missing:
            raise NotFound(f"No provisioning job named {', '.join(missing)}")
        jobs = jobs.filter(name__in=names)
    return {"jobs": [{key: getattr(job, field) for key, field in FILE_FIELDS.items()} for job in jobs]}


@transaction.atomic
def provisioning_jobs_import(*, document) -> tuple[int, int]:
    """Create or update (by name) every job of an exported document; one bad job and nothing is
    imported. Returns (created, updated)."""
    jobs = document.get("jobs") if isinstance(document, dict) else None
    if not isinstance(jobs, list):
        raise InvalidInput('A job file is a JSON object {"jobs": [...]}')
    created = updated = 0
    for index, entry in enumerate(jobs):
        if not isinstance(entry, dict):
            raise InvalidInput(f"jobs[{index}] must be a JSON object")
        unknown = sorted(set(entry) - set(FILE_FIELDS))
        if unknown:
            raise InvalidInput(
                f"jobs[{index}]: unknown field {', '.join(map(repr, unknown))}; the fields are {', '.join(FILE_FIELDS)}"
            )
        values = {FILE_FIELDS[key]: value for key, value in entry.items()}
        existing = ProvisioningJob.objects.filter(name=values.get("name")).first() if values.get("name") else None
        try:
            if existing is None:
                provisioning_job_create(values=values)
                created += 1
            else:
                provisioning_job_update(job_id=existing.pk, values=values)
                updated += 1
        except InvalidInput as exc:
            raise InvalidInput(f"jobs[{index}] ({values.get('name')!r}): {exc.message}", detail=exc.detail) from None
    return created, updated


def job_file_dumps(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
