"""The operators' console: jobs written through the services with their errors on the form, the
test-run button, the run page with its log, outputs and retry button."""

import json

import pytest

from provisioning.models import ProvisioningJob, ProvisioningRun
from provisioning.tests.conftest import job_values

pytestmark = pytest.mark.django_db


def form_data(**overrides) -> dict:
    values = job_values(**overrides)
    data = {"enabled": "on", "interpreter": "bash", "job_identifier_key": "tenantRegistrationId", "max_attempts": 3}
    data.update({"retry_backoff_seconds": 30, "failure_status": '{"tenantStatus": "Failed to provision tenant."}'})
    data.update({"environment": "{}", "worker_environment": "[]", "json_variables": "[]"})
    for key, value in values.items():
        data[key] = json.dumps(value) if isinstance(value, list | dict) else value
    return data


def test_a_bad_job_shows_each_error_on_its_field_and_saves_nothing(admin_client):
    page = admin_client.post(
        "/admin/provisioning/provisioningjob/add/",
        form_data(incoming_event="onbordingRequest", registration_data_outputs=["dbHost"]),
    ).content.decode()
    assert "unknown event type &#x27;onbordingRequest&#x27; (did you mean onboardingRequest?)" in page
    assert "dbHost is not exported by the script" in page
    assert not ProvisioningJob.objects.exists()


def test_a_job_is_added_and_changed_through_the_admin(admin_client):
    response = admin_client.post("/admin/provisioning/provisioningjob/add/", form_data(string_variables=""))
    assert response.status_code == 302, response.content.decode()[:3000]
    job = ProvisioningJob.objects.get()
    assert (job.name, job.string_variables) == ("onboard", [])
    response = admin_client.post(
        f"/admin/provisioning/provisioningjob/{job.pk}/change/", form_data(timeout_seconds=60, string_variables="")
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.timeout_seconds == 60
    assert (
        "Run against a test event"
        in admin_client.get(f"/admin/provisioning/provisioningjob/{job.pk}/change/").content.decode()
    )


def test_the_test_run_button_runs_the_job_and_the_run_page_shows_log_and_outputs(
    admin_client, make_job, django_capture_on_commit_callbacks
):
    job = make_job()
    page = admin_client.get(f"/admin/provisioning/provisioningjob/{job.pk}/test-run/").content.decode()
    assert "test-tenantName" in page
    assert (
        "Not JSON"
        in admin_client.post(
            f"/admin/provisioning/provisioningjob/{job.pk}/test-run/", {"detail": "{"}
        ).content.decode()
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/provisioning/provisioningjob/{job.pk}/test-run/",
            {"detail": json.dumps({"tenantName": "probe", "tenantRegistrationId": "r-1"})},
        )
    run = ProvisioningRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/provisioningrun/{run.pk}/change/")
    page = admin_client.get(response["Location"]).content.decode()
    assert "provisioning probe" in page and "t_probe" in page
    assert 'http-equiv="refresh"' not in page, "a finished run's page does not reload"
    listing = admin_client.get("/admin/provisioning/provisioningrun/", {"status__exact": "succeeded"}).content.decode()
    assert "succeeded (test)" in listing


def test_a_failed_run_has_a_retry_button_that_queues_a_new_attempt(admin_client, make_job, onboard_now):
    job = make_job(script="echo tenantConfig provisionedBy; exit 1")
    onboard_now("acme")
    failed = ProvisioningRun.objects.get()
    page = admin_client.get(f"/admin/provisioning/provisioningrun/{failed.pk}/change/").content.decode()
    assert ">Retry</button>" in page
    assert admin_client.get(f"/admin/provisioning/provisioningrun/{failed.pk}/retry/").status_code == 405
    response = admin_client.post(f"/admin/provisioning/provisioningrun/{failed.pk}/retry/")
    retry = ProvisioningRun.objects.get(attempt=2)
    assert response["Location"].endswith(f"/provisioningrun/{retry.pk}/change/")
    assert (retry.job, retry.event_id, retry.status) == (job, failed.event_id, "queued")
    live = admin_client.get(response["Location"]).content.decode()
    assert 'http-equiv="refresh"' in live
    refused = admin_client.post(f"/admin/provisioning/provisioningrun/{failed.pk}/retry/", follow=True)
    assert "has a run queued or running" in refused.content.decode()
