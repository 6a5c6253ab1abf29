"""Job definitions: one validation for every face, every problem named with its field, nothing
half-saved; the job file round-trips."""

import pytest

from provisioning.models import ProvisioningJob
from provisioning.services import (
    provisioning_job_create,
    provisioning_job_update,
    provisioning_jobs_export,
    provisioning_jobs_import,
)
from provisioning.tests.conftest import job_values
from sbt_site.errors import InvalidInput

pytestmark = pytest.mark.django_db


def refusal(values: dict) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        provisioning_job_create(values=values)
    assert not ProvisioningJob.objects.exists()
    errors: dict[str, str] = {}
    for item in caught.value.detail:
        errors[item["loc"][0]] = "; ".join(filter(None, [errors.get(item["loc"][0]), item["msg"]]))
    return errors


def test_a_valid_job_is_stored_with_plain_event_names_whatever_spelling_came_in():
    job = provisioning_job_create(
        values=job_values(incoming_event="sbt_aws_onboardingRequest", success_event="sbt_aws_provisionSuccess")
    )
    assert (job.incoming_event, job.success_event, job.interpreter) == ("onboardingRequest", "provisionSuccess", "bash")


def test_an_unknown_event_type_is_refused_with_the_name_it_probably_meant():
    errors = refusal(job_values(incoming_event="onbordingRequest", failure_event="provisionFailed"))
    assert "unknown event type 'onbordingRequest' (did you mean onboardingRequest?)" in errors["incoming_event"]
    assert "unknown event type 'provisionFailed'" in errors["failure_event"]


def test_unknown_and_unusable_variable_names_are_refused_each_with_its_field():
    errors = refusal(
        job_values(
            string_variables=["tenant-name", "PATH"],
            json_variables=["prices", "prices"],
            environment={"2FAST": "x"},
            worker_environment=["prices"],
            tenant_data_outputs=["tenantId"],
            scirpt="typo",
        )
    )
    assert errors["string_variables"].startswith("'tenant-name' is not a variable name")
    assert "PATH is set by the runner" in errors["string_variables"]
    assert errors["json_variables"] == "listed twice: prices"
    assert "'2FAST' is not a variable name" in errors["environment"]
    assert "prices is also set by json_variables" in errors["worker_environment"]
    assert "tenantId is the control plane's to set" in errors["tenant_data_outputs"]
    assert errors["scirpt"] == "unknown field 'scirpt'"


def test_an_output_variable_the_script_never_exports_is_refused():
    errors = refusal(job_values(registration_data_outputs=["dbHost"]))
    assert errors["registration_data_outputs"].startswith("dbHost is not exported by the script")


def test_a_job_missing_what_it_needs_says_so():
    errors = refusal({"name": "x y"})
    assert set(errors) >= {"name", "incoming_event", "script", "success_event", "failure_event"}


def test_an_invalid_update_changes_nothing(make_job):
    job = make_job()
    with pytest.raises(InvalidInput, match="timeout_seconds: must be a whole number"):
        provisioning_job_update(job_id=job.pk, values={"script": "echo changed", "timeout_seconds": 0})
    job.refresh_from_db()
    assert job.timeout_seconds == 30 and "changed" not in job.script


def test_the_job_file_round_trips_and_one_bad_job_imports_nothing(make_job):
    make_job()
    document = provisioning_jobs_export()
    assert document["jobs"][0]["environmentStringVariablesFromIncomingEvent"] == ["tenantName", "tenantRegistrationId"]
    ProvisioningJob.objects.all().delete()
    assert provisioning_jobs_import(document=document) == (1, 0)
    document["jobs"][0]["timeoutSeconds"] = 60
    assert provisioning_jobs_import(document=document) == (0, 1)
    assert ProvisioningJob.objects.get().timeout_seconds == 60

    bad = {"jobs": [{**document["jobs"][0], "name": "second"}, {**document["jobs"][0], "name": "third", "script": ""}]}
    with pytest.raises(InvalidInput, match=r"jobs\[1\] \('third'\): Invalid provisioning job: script: required"):
        provisioning_jobs_import(document=bad)
    assert list(ProvisioningJob.objects.values_list("name", flat=True)) == ["onboard"]
