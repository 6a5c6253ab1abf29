"""The commands: run a job now with its log streamed, and jobs to and from a file."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from events.models import Event
from provisioning.models import ProvisioningJob, ProvisioningRun

pytestmark = pytest.mark.django_db


def test_a_job_runs_now_for_an_event_streaming_its_log_and_reports_its_outcome(make_job, onboard_now):
    make_job(enabled=False)
    registration = onboard_now("acme")
    event = Event.objects.get(detail_type="onboardingRequest")
    out, err = StringIO(), StringIO()
    call_command("provisioning_job_run", "onboard", "--event-id", str(event.pk), stdout=out, stderr=err)
    assert out.getvalue() == "provisioning acme\n"
    assert "succeeded; outputs: tenantConfig, provisionedBy" in err.getvalue()
    registration.refresh_from_db()
    assert registration.status == "created"
    with pytest.raises(CommandError, match="Job onboard already succeeded for event"):
        call_command("provisioning_job_run", "onboard", "--event-id", str(event.pk), stdout=out, stderr=err)


def test_a_failing_run_is_the_commands_error(make_job, onboard_now):
    make_job(enabled=False, script="echo tenantConfig provisionedBy; exit 5")
    onboard_now("acme")
    event = Event.objects.get(detail_type="onboardingRequest")
    with pytest.raises(CommandError, match=r"failed: the script exited with status 5: tenantConfig provisionedBy"):
        call_command(
            "provisioning_job_run", "onboard", "--event-id", str(event.pk), stdout=StringIO(), stderr=StringIO()
        )
    assert ProvisioningRun.objects.get().status == "failed"
    with pytest.raises(CommandError, match=r"No provisioning job named 'nope'\. See the jobs"):
        call_command("provisioning_job_run", "nope", "--event-id", str(event.pk))
    with pytest.raises(CommandError, match="Event not-an-id not found"):
        call_command("provisioning_job_run", "onboard", "--event-id", "not-an-id")


def test_jobs_go_to_a_file_and_back(make_job, tmp_path):
    make_job()
    path = tmp_path / "jobs.json"
    call_command("provisioning_jobs_export", "--output", str(path), stderr=StringIO())
    document = json.loads(path.read_text())
    assert document["jobs"][0]["incomingEvent"] == "onboardingRequest"
    ProvisioningJob.objects.all().delete()
    out = StringIO()
    call_command("provisioning_jobs_import", str(path), stdout=out)
    assert out.getvalue() == f"Imported {path}: 1 job(s) created, 0 updated\n"
    assert ProvisioningJob.objects.get().script == document["jobs"][0]["script"]

    document["jobs"][0]["incomingEvent"] = "nope"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError, match=r"jobs\[0\] \('onboard'\): Invalid provisioning job: incoming_event"):
        call_command("provisioning_jobs_import", str(path))
    path.write_text("{")
    with pytest.raises(CommandError, match="is not JSON"):
        call_command("provisioning_jobs_import", str(path))
