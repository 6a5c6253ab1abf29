"""A production install from requirements.txt alone runs web, worker and beat on Redis (issue 18).

The suite's own venv has the test tools too, and they pulled in a package (``packaging``) that
kombu's Redis transport needs but declares only under its ``redis`` extra: the tests passed
while a runtime-only install could not start a worker. This test builds a venv from
requirements.txt alone (once per content of the file, cached in the temporary directory) and
runs gunicorn, ``celery worker`` and ``celery beat`` from it against the suite's Redis.
"""

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from events.models import Delivery
from events.services import subscription_create
from events.tests.conftest import application_plane_scopes, verify_signature
from events.tests.subprocesses import (
    ROOT,
    free_port,
    gunicorn_command,
    wait_for,
    worker_command,
)
from sbt_site.schedules import seed_periodic_tasks

PROBE_TYPE = "runtimeInstallProbe"


def runtime_venv() -> Path:
    """A venv with requirements.txt installed and nothing else, built once per content of the file."""
    digest = hashlib.sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()[:16]
    venv = Path(tempfile.gettempdir()) / f"sbt-runtime-venv-{digest}"
    installed = venv / "installed"  # written last: a build that was interrupted is started over
    if installed.exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    # Built in place: a venv's scripts name its interpreter by absolute path, so it cannot be moved.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    install = subprocess.run(
        [*pip, "-r", str(ROOT / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    installed.touch()
    return venv


@pytest.mark.broker
@pytest.mark.faults
@pytest.mark.django_db(transaction=True)
def test_a_venv_from_requirements_txt_alone_runs_web_worker_and_beat_on_redis(processes, receiver, make_token):
    venv_bin = runtime_venv() / "bin"
    assert not (venv_bin / "pytest").exists(), "the runtime venv must hold requirements.txt only"
    seed_periodic_tasks()  # idempotent; a transactional test before this one may have flushed them
    _, secret = subscription_create(url=receiver.url, event_types=[PROBE_TYPE])
    token = make_token(scopes=application_plane_scopes())
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    processes.start("web", *gunicorn_command(venv_bin, port))
    worker = processes.start("worker", *worker_command(venv_bin, f"runtime-{port}"))
    beat = processes.start("beat", str(venv_bin / "celery"), "-A", "sbt_site", "beat", "--loglevel=INFO")

    def healthz() -> list[requests.Response]:
        try:
            return [requests.get(f"{base_url}/healthz", timeout=5)]  # a 503 is an answer too (a Response is falsy)
        except requests.RequestException:
            return []  # still booting

    [health] = wait_for(healthz, timeout=60, what="the web process")
    assert health.status_code == 200, health.text
    assert health.json()["database"]["status"] == "ok"
    assert health.json()["broker"] == {"status": "ok", "transport": "redis"}
    wait_for(lambda: "ready." in worker.log.read_text(errors="replace"), timeout=60, what="the worker")

    sent = requests.post(
        f"{base_url}/api/v1/events",
        json={"detail-type": PROBE_TYPE, "source": "sbt.application.plane", "detail": {"probe": 1}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert sent.status_code in (200, 201, 202), sent.text
    wait_for(lambda: receiver.requests, timeout=60, what="the worker to deliver the event")
    assert verify_signature(secret, receiver.requests[0].headers, receiver.requests[0].body)
    # The worker records the success after the receiver has answered: wait for the row.
    wait_for(
        lambda: Delivery.objects.get().status == Delivery.Status.SUCCEEDED, timeout=30, what="the delivery recorded"
    )

    # Beat reads its schedule from the database and sends the sweep (every 15 s) to the worker.
    wait_for(
        lambda: "events.sweep" in worker.log.read_text(errors="replace"),
        timeout=60,
        what="beat to send the sweep and the worker to run it",
    )
    assert worker.poll() is None and beat.poll() is None
