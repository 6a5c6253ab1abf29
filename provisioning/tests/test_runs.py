"""Runs in-process (Celery eager): the outcome goes back through the inbound path, so the
registration moves as an external application plane's report would move it."""

import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from events.models import Event
from events.services import event_dispatch
from provisioning.models import ProvisioningRun
from provisioning.runner import ScriptResult
from provisioning.services import (
    provisioning_run_execute,
    provisioning_run_for_event_create,
    provisioning_run_retry,
    provisioning_runs_sweep,
    provisioning_test_run_create,
)
from provisioning.services.runs import _run_claim, _run_finish
from provisioning.tests.conftest import offboard_job_values
from sbt_site.errors import Conflict
from tenants.services import tenant_registration_delete

pytestmark = pytest.mark.django_db
Status = ProvisioningRun.Status
NO_OUTPUTS = {"tenant_data_outputs": [], "registration_data_outputs": []}


def test_onboarding_runs_the_job_and_the_registration_is_created_with_its_config(make_job, onboard_now, api):
    make_job()
    registration = onboard_now("acme")
    run = ProvisioningRun.objects.get()
    assert (run.status, run.attempt, run.exit_code, run.tenant_id) == (Status.SUCCEEDED, 1, 0, registration.tenant_id)
    assert "provisioning acme" in run.log
    assert registration.status == "created"
    assert registration.data == {"provisionedBy": str(run.pk)}
    report = run.reported_event
    assert (report.detail_type, report.direction, report.sender) == ("provisionSuccess", "inbound", "provisioning")
    assert report.detail["jobOutput"]["tenantData"] == {"tenantConfig": '{"schema": "t_acme"}'}
    assert report.detail["tenantRegistrationId"] == str(registration.pk)
    assert api().get("/api/v1/tenant-config/acme").json() == {"schema": "t_acme"}


def test_a_failing_script_fails_the_registration_with_its_reason_and_keeps_the_log(make_job, onboard_now):
    make_job(
        script='echo "creating schema"\necho "reason=quota exceeded for $tenantName" >> "$SBT_OUTPUT"\nexit 3\n',
        **NO_OUTPUTS,
    )
    registration = onboard_now("acme")
    run = ProvisioningRun.objects.get()
    assert (run.status, run.exit_code, run.reason) == (Status.FAILED, 3, "quota exceeded for acme")
    assert "creating schema" in run.log
    assert (registration.status, registration.status_reason) == ("failed", "quota exceeded for acme")
    assert run.reported_event.detail["jobOutput"] == {
        "tenantStatus": "Failed to provision tenant.",
        "reason": "quota exceeded for acme",
    }


def test_without_a_reason_the_exit_status_and_last_line_are_the_reason(make_job, onboard_now):
    make_job(script="echo 'psql: connection refused' >&2\nexit 2\n", **NO_OUTPUTS)
    assert onboard_now("acme").status_reason == "the script exited with status 2: psql: connection refused"


def test_a_declared_output_the_script_did_not_write_fails_the_run(make_job, onboard_now):
    make_job(script='echo "tenantConfig and provisionedBy are not written today"\n')
    assert onboard_now("acme").status_reason == "the script did not export tenantConfig, provisionedBy (to $SBT_OUTPUT)"


def test_a_hanging_script_and_what_it_started_are_killed_at_the_timeout(make_job, onboard_now, tmp_path):
    pid_file = tmp_path / "child.pid"
    make_job(
        script=f'sleep 300 &\necho $! > {pid_file}\necho "tenantConfig= provisionedBy=" >/dev/null\nsleep 300\n',
        timeout_seconds=2,
    )
    started = time.monotonic()
    registration = onboard_now("acme")
    assert time.monotonic() - started < 30
    run = ProvisioningRun.objects.get()
    assert run.status == Status.TIMED_OUT
    assert run.reason == "timed out after 2 s: the script's process group was killed"
    assert registration.status == "failed" and registration.status_reason.startswith("timed out after 2 s")
    assert not running(int(pid_file.read_text()))


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a killed one may stay a zombie until its reaper looks)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


HOSTILE = "$(touch /tmp/pwned-{marker}) `touch /tmp/pwned-{marker}`; touch /tmp/pwned-{marker}\nline two \\ ' \""


def test_a_hostile_event_value_reaches_the_script_as_a_literal_string(make_job, onboard_now):
    marker = uuid.uuid4().hex
    hostile = HOSTILE.format(marker=marker)
    make_job(
        script='{ echo "seen<<END_OF_VALUE"; printf "%s\\n" "$note"; echo END_OF_VALUE; } >> "$SBT_OUTPUT"\n'
        'echo "note: $note"\n',
        string_variables=["note", "tenantRegistrationId"],
        tenant_data_outputs=["seen"],
        registration_data_outputs=[],
    )
    registration = onboard_now("acme", note=hostile)
    run = ProvisioningRun.objects.get()
    assert run.status == Status.SUCCEEDED, run.reason
    assert run.outputs == {"seen": hostile}
    assert registration.tenant.data["seen"] == hostile
    assert not Path(f"/tmp/pwned-{marker}").exists()


def test_outputs_the_control_plane_refuses_fail_the_run_instead_of_leaving_the_registration_in_progress(
    make_job, onboard_now
):
    make_job(
        script='echo "tenantName=$(printf "x%.0s" $(seq 1 300))" >> "$SBT_OUTPUT"',
        tenant_data_outputs=["tenantName"],
        registration_data_outputs=[],
    )
    registration = onboard_now("acme")
    run = ProvisioningRun.objects.get()
    message = "detail.jobOutput.tenantData.tenantName: tenantName is longer than 255 characters"
    assert (run.status, run.reason, run.report_error) == (
        Status.FAILED,
        f"the control plane refused the outputs: {message}",
        message,  # kept: what the success report got back
    )
    assert (registration.status, registration.status_reason) == ("failed", run.reason)


def test_json_variables_carry_the_value_as_json(make_job, onboard_now):
    make_job(
        script='echo "tenantConfig=$prices" >> "$SBT_OUTPUT"; echo provisionedBy=x >> "$SBT_OUTPUT"',
        json_variables=["prices"],
    )
    onboard_now("acme", prices=[{"id": "price_1", "metricName": "calls"}])
    assert ProvisioningRun.objects.get().outputs["tenantConfig"] == '[{"id": "price_1", "metricName": "calls"}]'


def test_the_same_event_dispatched_twice_and_its_task_delivered_twice_make_one_successful_run(
    make_job, onboard_now, django_capture_on_commit_callbacks
):
    make_job()
    onboard_now("acme")
    event = Event.objects.get(detail_type="onboardingRequest")
    run = ProvisioningRun.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        event_dispatch(event_id=event.pk)
        assert provisioning_run_execute(run_id=run.pk) is None  # the repeated task finds it done
    assert ProvisioningRun.objects.filter(status=Status.SUCCEEDED).count() == 1
    assert Event.objects.filter(detail_type="provisionSuccess").count() == 1


def test_a_retryable_failure_is_retried_and_the_second_attempt_succeeds(make_job, onboard_now, tmp_path):
    flag = tmp_path / "failed-once"
    make_job(
        script=f'if [ ! -e {flag} ]; then touch {flag}; echo "database busy"; exit 1; fi\n'
        'echo "tenantConfig={}" >> "$SBT_OUTPUT"; echo "provisionedBy=$SBT_ATTEMPT" >> "$SBT_OUTPUT"\n',
        retryable=True,
        retry_backoff_seconds=0,
    )
    registration = onboard_now("acme")
    runs = list(ProvisioningRun.objects.order_by("attempt").values_list("attempt", "status"))
    assert runs == [(1, Status.FAILED), (2, Status.SUCCEEDED)]
    assert registration.status == "created" and registration.data["provisionedBy"] == "2"


def test_a_run_whose_worker_died_is_failed_by_the_sweep_and_retried_and_its_late_result_dropped(
    make_job, onboard_now, django_capture_on_commit_callbacks
):
    make_job(enabled=False)  # no automatic run: this one is queued as the command queues it
    registration = onboard_now("acme")
    event = Event.objects.get(detail_type="onboardingRequest")
    run = provisioning_run_for_event_create(job_name="onboard", event_id=event.pk)
    claimed, _ = _run_claim(run.pk)  # a worker takes it... and dies: its lease runs out
    ProvisioningRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Conflict, match="has a run queued or running"):
        provisioning_run_for_event_create(job_name="onboard", event_id=event.pk)

    with django_capture_on_commit_callbacks(execute=True):
        assert provisioning_runs_sweep() == {"abandoned": 1, "enqueued": 0}
    runs = list(ProvisioningRun.objects.order_by("attempt").values_list("attempt", "status", "reason"))
    assert [(attempt, status) for attempt, status, _ in runs] == [(1, Status.FAILED), (2, Status.SUCCEEDED)]
    assert "stopped renewing its lease" in runs[0][2]
    registration.refresh_from_db()
    assert registration.status == "created"
    # The dead worker's result, were it to arrive now, would not overwrite anything.
    assert _run_finish(run.pk, claimed.lease_token, ScriptResult(exit_code=0, timed_out=False, log="")) is None
    assert Event.objects.filter(detail_type="provisionSuccess").count() == 1


def test_retrying_a_failed_run_is_a_new_attempt_and_refused_once_one_succeeded(
    make_job, onboard_now, django_capture_on_commit_callbacks, tmp_path
):
    flag = tmp_path / "fixed"
    make_job(
        script=f'[ -e {flag} ] || exit 1\necho "tenantConfig={{}}" >> "$SBT_OUTPUT"\n'
        'echo provisionedBy=x >> "$SBT_OUTPUT"\n'
    )
    registration = onboard_now("acme")
    failed = ProvisioningRun.objects.get()
    assert registration.status == "failed"
    flag.touch()
    with django_capture_on_commit_callbacks(execute=True):
        retry = provisioning_run_retry(run_id=failed.pk)
    retry.refresh_from_db()
    registration.refresh_from_db()
    assert (retry.attempt, retry.status, registration.status) == (2, Status.SUCCEEDED, "created")
    with pytest.raises(Conflict, match="already succeeded"):
        provisioning_run_retry(run_id=failed.pk)


def test_offboarding_runs_the_deprovisioning_twin(make_job, onboard_now, django_capture_on_commit_callbacks):
    make_job()
    make_job(**offboard_job_values())
    registration = onboard_now("acme")
    with django_capture_on_commit_callbacks(execute=True):
        tenant_registration_delete(registration_id=registration.pk)
    registration.refresh_from_db()
    assert registration.status == "deleted"
    assert "dropping schema t_acme" in ProvisioningRun.objects.get(job__name="offboard").log


def test_a_test_run_records_outputs_and_reports_nothing(make_job, django_capture_on_commit_callbacks):
    job = make_job()
    with django_capture_on_commit_callbacks(execute=True):
        run = provisioning_test_run_create(job_id=job.pk, detail={"tenantName": "t1", "tenantRegistrationId": "r"})
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED and run.outputs["tenantConfig"] == '{"schema": "t_t1"}'
    assert run.reported_event is None and not Event.objects.filter(direction="inbound").exists()


def test_a_missing_event_value_fails_the_run_saying_which(make_job, django_capture_on_commit_callbacks):
    job = make_job()
    with django_capture_on_commit_callbacks(execute=True):
        run = provisioning_test_run_create(job_id=job.pk, detail={"tenantName": "t1"})
    run.refresh_from_db()
    assert (run.status, run.reason) == (
        Status.FAILED,
        "the event has no tenantRegistrationId (environmentStringVariablesFromIncomingEvent)",
    )


def test_only_so_many_runs_hold_a_slot_at_once(make_job, settings):
    settings.SBT = {"PROVISIONING_MAX_CONCURRENT_RUNS": 1}
    job = make_job()
    first = ProvisioningRun.objects.create(job=job, detail={})
    second = ProvisioningRun.objects.create(job=job, detail={})
    assert _run_claim(first.pk)[0].slot == 0
    assert _run_claim(second.pk) == (None, 5)
    # A fresh lease is not abandoned, and a run waiting for a slot is waiting, not lost.
    ProvisioningRun.objects.filter(pk=second.pk).update(created=timezone.now() - timedelta(minutes=5))
    assert provisioning_runs_sweep(now=timezone.now()) == {"abandoned": 0, "enqueued": 0}
    assert ProvisioningRun.objects.get(pk=first.pk).status == Status.RUNNING
    # Its own retry loop lost (not_before long past): the sweep enqueues it again.
    ProvisioningRun.objects.filter(pk=second.pk).update(not_before=timezone.now() - timedelta(minutes=1))
    assert provisioning_runs_sweep() == {"abandoned": 0, "enqueued": 1}


def test_a_queued_run_whose_enqueue_was_lost_is_enqueued_by_the_sweep(make_job, django_capture_on_commit_callbacks):
    job = make_job()
    run = ProvisioningRun.objects.create(job=job, detail={"tenantName": "t1", "tenantRegistrationId": "r"})
    assert provisioning_runs_sweep()["enqueued"] == 0  # within the grace period its task may still come
    ProvisioningRun.objects.filter(pk=run.pk).update(created=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert provisioning_runs_sweep() == {"abandoned": 0, "enqueued": 1}
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED


def test_the_sweep_is_a_periodic_task_seeded_with_the_others():
    from django_celery_beat.models import PeriodicTask

    from sbt_site.schedules import seed_periodic_tasks

    seed_periodic_tasks()
    assert PeriodicTask.objects.get(task="provisioning.sweep").interval.every == 15
