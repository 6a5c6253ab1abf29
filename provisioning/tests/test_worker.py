"""Provisioning through the real broker: a gunicorn web process and `celery worker` processes on
the Redis ./sbt test starts and the test database. Nothing runs eagerly: the worker dispatches
the event, runs the script on the ``provisioning`` queue and reports the outcome."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from events.models import Event
from events.tests.subprocesses import ROOT, free_port, gunicorn_command, wait_for, worker_command
from provisioning.models import ProvisioningRun
from provisioning.services import provisioning_job_create
from provisioning.tests.conftest import job_values, offboard_job_values
from provisioning.tests.test_runs import running

BIN = Path(sys.executable).parent
Status = ProvisioningRun.Status

# What beat's `provisioning.sweep` does every 15 s, with the clock moved past the dead worker's lease.
SWEEP = """
import django
django.setup()
from datetime import timedelta
from django.utils import timezone
from provisioning.services import provisioning_runs_sweep
print(provisioning_runs_sweep(now=timezone.now() + timedelta(minutes=5)))
"""


def provisioning_worker(name: str) -> list[str]:
    return [*worker_command(BIN, name), "-Q", "celery,provisioning"]


class ControlPlane:
    def __init__(self, processes, make_token):
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}/api/v1"
        processes.start("web", *gunicorn_command(BIN, port))
        self.headers = {"Authorization": f"Bearer {make_token(scopes='tenant/tenant_read tenant/tenant_write')}"}

        def web_is_up():
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False  # still booting

        wait_for(web_is_up, timeout=60, what="the web process")

    def onboard(self, name: str) -> str:
        created = requests.post(
            f"{self.base_url}/tenant-registrations",
            json={"tenantData": {"tenantName": name, "tier": "premium"}},
            headers=self.headers,
            timeout=30,
        )
        assert created.status_code == 201, created.text
        return created.json()["data"]["tenantRegistrationId"]

    def status(self, registration_id: str) -> str:
        response = requests.get(
            f"{self.base_url}/tenant-registrations/{registration_id}", headers=self.headers, timeout=10
        )
        return response.json()["data"]["registrationStatus"]

    def wait_status(self, registration_id: str, status: str) -> None:
        wait_for(lambda: self.status(registration_id) == status, timeout=90, what=f"registration {status}")


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_registration_is_provisioned_and_deprovisioned_by_jobs_on_the_worker(processes, make_token):
    provisioning_job_create(values=job_values())
    provisioning_job_create(values=offboard_job_values())
    worker_log = processes.start("worker", *provisioning_worker(f"provisioning-{free_port()}")).log
    control_plane = ControlPlane(processes, make_token)

    registration_id = control_plane.onboard("initech")
    control_plane.wait_status(registration_id, "created")
    config = requests.get(f"{control_plane.base_url}/tenant-config/initech", timeout=10)
    assert config.json() == {"schema": "t_initech"}

    deleted = requests.delete(
        f"{control_plane.base_url}/tenant-registrations/{registration_id}", headers=control_plane.headers, timeout=30
    )
    assert deleted.status_code == 200, deleted.text
    control_plane.wait_status(registration_id, "deleted")
    runs = {run.job.name: run for run in ProvisioningRun.objects.select_related("job")}
    assert {name: run.status for name, run in runs.items()} == {"onboard": "succeeded", "offboard": "succeeded"}
    assert "dropping schema t_initech" in runs["offboard"].log
    assert "provisioning.run" in worker_log.read_text(errors="replace")


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_is_replaced_and_the_run_retried_succeeds_once(processes, make_token, tmp_path):
    script = (
        f"echo $$ > {tmp_path}/attempt-$SBT_ATTEMPT.pid\n"
        'if [ "$SBT_ATTEMPT" = 1 ]; then sleep 300; fi\n'
        'echo "tenantConfig={\\"attempt\\": $SBT_ATTEMPT}" >> "$SBT_OUTPUT"\n'
        'echo "provisionedBy=$SBT_RUN_ID" >> "$SBT_OUTPUT"\n'
    )
    provisioning_job_create(values=job_values(script=script, timeout_seconds=600))
    first_worker = processes.start("worker-1", *provisioning_worker(f"provisioning-1-{free_port()}"))
    control_plane = ControlPlane(processes, make_token)
    registration_id = control_plane.onboard("initech")
    first_pid_file = tmp_path / "attempt-1.pid"
    wait_for(first_pid_file.exists, timeout=90, what="the first attempt to start")
    wait_for(first_pid_file.read_text, timeout=5, what="the first attempt's pid")

    os.kill(first_worker.pid, signal.SIGKILL)
    first_worker.wait(timeout=10)
    # The script dies with its worker: no orphan goes on running beside the retry.
    wait_for(lambda: not running(int(first_pid_file.read_text())), timeout=10, what="the orphaned script to die")
    assert ProvisioningRun.objects.get().status == Status.RUNNING  # until the lease says otherwise

    processes.start("worker-2", *provisioning_worker(f"provisioning-2-{free_port()}"))
    swept = subprocess.run(
        [sys.executable, "-c", SWEEP], cwd=ROOT, env=processes.env, capture_output=True, text=True, timeout=60
    )
    assert "'abandoned': 1" in swept.stdout, swept.stderr
    control_plane.wait_status(registration_id, "created")

    runs = list(ProvisioningRun.objects.order_by("attempt").values_list("attempt", "status"))
    assert runs == [(1, Status.FAILED), (2, Status.SUCCEEDED)]
    assert Event.objects.filter(detail_type="provisionSuccess").count() == 1
    assert requests.get(f"{control_plane.base_url}/tenant-config/initech", timeout=10).json() == {"attempt": 2}
