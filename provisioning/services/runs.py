"""Writes of provisioning runs: created for an event, claimed by one worker under a lease, run,
finished, retried, and reported back as the application plane reports.

The lifecycle of a run (one attempt)::

    queued --claim (a free slot, a lease)--> running --finish--> succeeded | failed | timed_out
                                                 \\--lease expired (worker died)--> failed, retried

Whoever finishes a run must still hold its lease (``lease_token``): a worker the sweep gave up
on cannot overwrite the retry's result. The outcome goes through ``events.services.events_receive``
with the provisioning runner as the caller, exactly as an external application plane's
``POST /events`` would: same authorization, same inbound handlers, same subscribers after commit.
"""

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from accounts.boundary import Caller
from events.catalogue import application_plane_source
from events.models import Event
from events.selectors import event_tenant_id
from events.services import events_receive
from provisioning.models import ProvisioningJob, ProvisioningRun
from provisioning.runner import ScriptResult, script_run
from sbt_site.conf import sbt_settings
from sbt_site.errors import Conflict, InvalidInput, NotFound, ServiceError
from sbt_site.ids import parse_uuid
from tenants.models import Tenant

logger = logging.getLogger(__name__)

Status = ProvisioningRun.Status

# The sender of the outcome events: the built-in application plane, seen by subscribers as such.
PROVISIONING_CALLER = Caller(client_id="provisioning")
# A run that finds every slot taken tries again this much later.
SLOT_WAIT_SECONDS = 5
# Queued runs older than this whose enqueue may have been lost are enqueued again by the sweep.
SWEEP_GRACE_SECONDS = 30
OUTPUT_VALUE_MAX_CHARS = 4000


def _enqueue(run_id, *, countdown: float | None = None) -> None:
    from provisioning.tasks import run_provisioning

    run_id = str(run_id)
    transaction.on_commit(lambda: run_provisioning.apply_async((run_id,), countdown=countdown), robust=True)


def _tenant_of(detail: dict, event: Event | None):
    tenant_id = event_tenant_id(event) if event is not None else None
    if tenant_id is None and isinstance(detail.get("tenantId"), str):
        tenant_id = parse_uuid(detail["tenantId"])
    return tenant_id if tenant_id and Tenant.objects.filter(pk=tenant_id).exists() else None


def runs_create_for_event(*, event: Event) -> list[ProvisioningRun]:
    """Queue a run of every enabled job listening to ``event``'s type (the first attempt), once
    per (job, event) however often the event is dispatched."""
    runs = []
    for job in ProvisioningJob.objects.filter(enabled=True, incoming_event=event.detail_type):
        if ProvisioningRun.objects.filter(job=job, event=event).exists():
            continue
        detail = event.detail if isinstance(event.detail, dict) else {}
        run = ProvisioningRun.objects.create(job=job, event=event, detail=detail, tenant_id=_tenant_of(detail, event))
        _enqueue(run.pk)
        runs.append(run)
    return runs


@transaction.atomic
def provisioning_test_run_create(*, job_id, detail: dict) -> ProvisioningRun:
    """Queue a run of a job against a made-up event ``detail``: the script runs and its outputs
    are recorded, but nothing is reported to the control plane."""
    job = ProvisioningJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"Provisioning job {job_id} not found")
    if not isinstance(detail, dict):
        raise InvalidInput("A test event's detail must be a JSON object")
    run = ProvisioningRun.objects.create(job=job, detail=detail, tenant_id=_tenant_of(detail, None))
    _enqueue(run.pk)
    return run


def _attempt_create(**fields) -> ProvisioningRun:
    """A new queued attempt; the database refuses a second active one for the same (job, event)
    when two requests race past the callers' checks, and that is a Conflict, not a 500."""
    try:
        with transaction.atomic():
            return ProvisioningRun.objects.create(**fields)
    except IntegrityError:
        raise Conflict(
            f"Job {fields['job']} has a run queued or running for event {fields['event'].pk}", code="run_active"
        ) from None


def _next_attempt_create(run: ProvisioningRun, *, delay_seconds: float = 0) -> ProvisioningRun:
    not_before = timezone.now() + timedelta(seconds=delay_seconds) if delay_seconds else None
    retry = _attempt_create(
        job=run.job,
        event=run.event,
        tenant=run.tenant,
        detail=run.detail,
        attempt=run.attempt + 1,
        not_before=not_before,
    )
    _enqueue(retry.pk, countdown=delay_seconds or None)
    return retry


@transaction.atomic
def provisioning_run_retry(*, run_id) -> ProvisioningRun:
    """Run a failed (or timed-out) run's job again for the same event: a new attempt, refused
    while another is queued or running or once one succeeded."""
    parsed = parse_uuid(run_id)
    runs = ProvisioningRun.objects.select_for_update(of=("self",)).select_related("job")
    run = runs.filter(pk=parsed).first() if parsed else None
    if run is None:
        raise NotFound(f"Provisioning run {run_id} not found")
    if run.status not in (Status.FAILED, Status.TIMED_OUT):
        raise Conflict(f"Run {run.pk} is {run.status}: only a failed run can be retried", code="not_failed")
    siblings = ProvisioningRun.objects.filter(job=run.job, event=run.event) if run.event_id else None
    if siblings is not None:
        if siblings.filter(status=Status.SUCCEEDED).exists():
            raise Conflict(f"Job {run.job} already succeeded for event {run.event_id}", code="already_succeeded")
        if siblings.filter(status__in=ProvisioningRun.ACTIVE).exists():
            raise Conflict(f"Job {run.job} has a run queued or running for this event", code="run_active")
        run.attempt = siblings.aggregate(Max("attempt"))["attempt__max"]
    return _next_attempt_create(run)


@transaction.atomic
def provisioning_run_for_event_create(*, job_name: str, event_id) -> ProvisioningRun:
    """A new attempt of ``job_name`` for a stored event, queued (the ``provisioning_job_run``
    command then executes it): refused once the job succeeded for it or while a run is active."""
    job = ProvisioningJob.objects.filter(name=job_name).first()
    if job is None:
        raise NotFound(f"No provisioning job named {job_name!r}")
    parsed = parse_uuid(event_id)
    event = Event.objects.filter(pk=parsed).first() if parsed else None
    if event is None:
        raise NotFound(f"Event {event_id} not found")
    if event.detail_type != job.incoming_event:
        raise Conflict(
            f"Event {event.pk} is a {event.detail_type}; job {job.name} runs on {job.incoming_event}",
            code="wrong_event_type",
        )
    siblings = ProvisioningRun.objects.select_for_update().filter(job=job, event=event)
    if siblings.filter(status=Status.SUCCEEDED).exists():
        raise Conflict(f"Job {job.name} already succeeded for event {event.pk}", code="already_succeeded")
    if siblings.filter(status__in=ProvisioningRun.ACTIVE).exists():
        raise Conflict(f"Job {job.name} has a run queued or running for event {event.pk}", code="run_active")
    attempt = (siblings.aggregate(Max("attempt"))["attempt__max"] or 0) + 1
    detail = event.detail if isinstance(event.detail, dict) else {}
    return _attempt_create(job=job, event=event, detail=detail, attempt=attempt, tenant_id=_tenant_of(detail, event))


# --- Execution ---------------------------------------------------------------------------------


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease_until():
    return timezone.now() + timedelta(seconds=sbt_settings.PROVISIONING_LEASE_SECONDS)


@transaction.atomic
def _run_claim(run_id) -> tuple[ProvisioningRun | None, float | None]:
    """(the run, now running under a new lease token) or (None, seconds to try again after) or
    (None, None) when there is nothing to do: the run is not queued (a repeated delivery)."""
    run = ProvisioningRun.objects.select_for_update(of=("self",)).select_related("job").filter(pk=run_id).first()
    if run is None or run.status != Status.QUEUED:
        return None, None
    now = timezone.now()
    if run.not_before and run.not_before > now:
        return None, (run.not_before - now).total_seconds()
    run.status = Status.RUNNING
    run.lease_token = uuid.uuid4()
    run.lease_expires_at = _lease_until()
    run.started = now
    run.worker = _worker_name()
    for slot in range(sbt_settings.PROVISIONING_MAX_CONCURRENT_RUNS):
        run.slot = slot
        try:
            with transaction.atomic():
                run.save(update_fields=["status", "lease_token", "lease_expires_at", "started", "worker", "slot"])
            return run, None
        except IntegrityError:
            continue  # the slot is taken (or, racing, another claim won this run: its status check says so)
    # Every slot is taken: try again shortly. Moving not_before on tells the sweep this run is
    # waiting, not lost, so it does not enqueue a second task for it.
    ProvisioningRun.objects.filter(pk=run.pk).update(not_before=now + timedelta(seconds=SLOT_WAIT_SECONDS))
    return None, SLOT_WAIT_SECONDS


def _lease_renew(run_id, token, log: str) -> bool:
    """Extend the lease and show the log so far; False when the run is no longer ours."""
    return bool(
        ProvisioningRun.objects.filter(pk=run_id, status=Status.RUNNING, lease_token=token).update(
            lease_expires_at=_lease_until(), log=log
        )
    )


def _script_environment(job: ProvisioningJob, run: ProvisioningRun) -> dict[str, str]:
    """The job's variables: fixed ones, the worker's pass-through ones, the event's (string and
    JSON) and the run's own. InvalidInput when the event lacks one: the run fails saying which."""
    detail = run.detail
    environment = dict(job.environment)
    environment.update({name: os.environ[name] for name in job.worker_environment if name in os.environ})
    for name in job.string_variables:
        if name not in detail:
            raise InvalidInput(f"the event has no {name} (environmentStringVariablesFromIncomingEvent)")
        if not isinstance(detail[name], str):
            raise InvalidInput(
                f"the event's {name} is not a string; list it in environmentJSONVariablesFromIncomingEvent instead"
            )
        environment[name] = detail[name]
    for name in job.json_variables:
        if name not in detail:
            raise InvalidInput(f"the event has no {name} (environmentJSONVariablesFromIncomingEvent)")
        environment[name] = json.dumps(detail[name], ensure_ascii=False)
    for name, value in environment.items():
        if "\x00" in value:
            raise InvalidInput(f"the value of {name} contains a NUL character, which no environment can hold")
    environment.update({"SBT_RUN_ID": str(run.pk), "SBT_ATTEMPT": str(run.attempt)})
    return environment


def provisioning_run_execute(*, run_id, echo: Callable[[str], None] | None = None) -> ProvisioningRun | None:
    """Claim a queued run, run its job's script and record the outcome (the Celery task and the
    ``provisioning_job_run`` command call this). A run that is not queued is left alone, so a
    task delivered twice runs the script once. ``echo`` receives the output as it comes."""
    run, wait_seconds = _run_claim(run_id)
    if run is None:
        if wait_seconds is not None:
            from provisioning.tasks import run_provisioning

            run_provisioning.apply_async((str(run_id),), countdown=wait_seconds)
        return None
    job, token = run.job, run.lease_token
    try:
        environment = _script_environment(job, run)
    except InvalidInput as exc:
        return _run_finish(run.pk, token, ScriptResult(exit_code=None, timed_out=False, log="", error=exc.message))
    scripts = [job.script] + ([job.post_script] if job.post_script else [])
    result = script_run(
        interpreter=job.interpreter,
        scripts=scripts,
        environment=environment,
        timeout_seconds=job.timeout_seconds,
        log_max_bytes=sbt_settings.PROVISIONING_LOG_MAX_BYTES,
        output_max_bytes=sbt_settings.PROVISIONING_OUTPUT_MAX_BYTES,
        kill_grace_seconds=sbt_settings.PROVISIONING_KILL_GRACE_SECONDS,
        on_progress=lambda log: _lease_renew(run.pk, token, log),
        progress_every_seconds=max(0.5, min(5.0, sbt_settings.PROVISIONING_LEASE_SECONDS / 3)),
        echo=echo,
    )
    return _run_finish(run.pk, token, result)


def _failure_reason(job: ProvisioningJob, result: ScriptResult) -> str:
    if result.timed_out:
        return f"timed out after {job.timeout_seconds} s: the script's process group was killed"
    if result.error:
        return result.error
    if result.exit_code:
        reason = result.outputs.get("reason")
        if reason:
            return reason
        last_lines = [line for line in result.log.splitlines() if line.strip()][-1:]
        return f"the script exited with status {result.exit_code}" + (f": {last_lines[0]}" if last_lines else "")
    missing = [name for name in job.output_names() if name not in result.outputs]
    if missing:
        return f"the script did not export {', '.join(missing)} (to $SBT_OUTPUT)"
    return ""


@transaction.atomic
def _run_finish(run_id, token, result: ScriptResult) -> ProvisioningRun | None:
    run = ProvisioningRun.objects.select_for_update(of=("self",)).select_related("job", "event").get(pk=run_id)
    if run.status != Status.RUNNING or run.lease_token != token:
        logger.warning(
            "Provisioning run %s finished after its lease was given up (%s): result dropped", run.pk, run.status
        )
        return None
    job = run.job
    reason = _failure_reason(job, result)
    run.exit_code = result.exit_code
    run.log = result.log
    run.outputs = {name: value[:OUTPUT_VALUE_MAX_CHARS] for name, value in result.outputs.items()}
    run.finished = timezone.now()
    run.lease_expires_at = None
    run.reason = reason[:4000]
    run.status = Status.SUCCEEDED if not reason else (Status.TIMED_OUT if result.timed_out else Status.FAILED)
    run.save()
    if run.status == Status.SUCCEEDED:
        refusal = _report(run, job.success_event, _success_output(job, result.outputs))
        if isinstance(refusal, InvalidInput):
            # Outputs the control plane cannot take (a tenantName over its limit, ...) must not
            # leave the registration "In progress" forever: the run fails, and says why.
            run.status = Status.FAILED
            run.reason = f"the control plane refused the outputs: {refusal.message}"[:4000]
            run.save(update_fields=["status", "reason"])
            _report(run, job.failure_event, {**job.failure_status, "reason": run.reason})
    elif job.retryable and run.attempt < job.max_attempts:
        _next_attempt_create(run, delay_seconds=job.retry_backoff_seconds * 2 ** (run.attempt - 1))
    else:
        _report(run, job.failure_event, {**job.failure_status, "reason": run.reason})
    return run


def _success_output(job: ProvisioningJob, outputs: dict[str, str]) -> dict:
    return {
        "tenantData": {name: outputs[name] for name in job.tenant_data_outputs},
        "tenantRegistrationData": {name: outputs[name] for name in job.registration_data_outputs},
    }


def _report(run: ProvisioningRun, detail_type: str, job_output: dict) -> ServiceError | None:
    """Send the outcome as an application plane sends it (SBT: the job identifier and jobOutput).
    A test run reports nothing. A refusal (the registration moved on meanwhile, outputs it cannot
    store) is kept on the run and returned."""
    if run.is_test:
        return None
    key = run.job.job_identifier_key
    detail = {key: run.detail.get(key), "jobOutput": job_output, "provisioningRunId": str(run.pk)}
    if "tenantId" in run.detail and key != "tenantId":
        detail["tenantId"] = run.detail["tenantId"]
    entry = {"detail-type": detail_type, "source": application_plane_source(), "detail": detail}
    try:
        with transaction.atomic():
            [event] = events_receive(entries=[entry], caller=PROVISIONING_CALLER)
    except ServiceError as exc:
        logger.warning("The control plane refused %s of provisioning run %s: %s", detail_type, run.pk, exc.message)
        run.report_error = exc.message[:4000]
        run.save(update_fields=["report_error"])
        return exc
    run.reported_event = event
    run.save(update_fields=["reported_event"])
    return None


def provisioning_runs_sweep(*, now=None) -> dict:
    """The periodic safety net: a running run whose lease expired lost its worker (killed,
    machine gone) and is failed and retried (whatever ``retryable`` says: the script did not
    fail); queued runs whose enqueue a crash lost are enqueued again."""
    now = now or timezone.now()
    expired = list(
        ProvisioningRun.objects.filter(status=Status.RUNNING, lease_expires_at__lt=now).values_list("pk", flat=True)
    )
    for run_id in expired:
        _run_abandon(run_id, now=now)
    grace = now - timedelta(seconds=SWEEP_GRACE_SECONDS)
    # Overdue by the grace period: a run waiting for its backoff or a slot has a later not_before.
    queued = list(
        ProvisioningRun.objects.filter(status=Status.QUEUED)
        .filter(Q(not_before__isnull=True, created__lte=grace) | Q(not_before__lte=grace))
        .values_list("pk", flat=True)[:1000]
    )
    with transaction.atomic():
        for run_id in queued:
            _enqueue(run_id)
    return {"abandoned": len(expired), "enqueued": len(queued)}


@transaction.atomic
def _run_abandon(run_id, *, now) -> None:
    run = ProvisioningRun.objects.select_for_update(of=("self",)).select_related("job").get(pk=run_id)
    if run.status != Status.RUNNING or run.lease_expires_at >= now:
        return  # finished or renewed meanwhile
    run.status = Status.FAILED
    run.reason = f"the worker {run.worker} stopped renewing its lease (killed or lost): retried"
    run.finished = now
    run.lease_token = None
    run.save()
    if run.attempt < run.job.max_attempts:
        _next_attempt_create(run)
    else:
        run.reason = f"the worker {run.worker} stopped renewing its lease (killed or lost), at the last attempt"
        run.save(update_fields=["reason"])
        _report(run, run.job.failure_event, {**run.job.failure_status, "reason": run.reason})
