"""GET /readyz: ready only with the database and broker reachable, every migration applied and
the outbox flowing; /healthz (liveness) ignores the last two."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from events.models import Event
from events.services import event_publish
from events.tests.subprocesses import ROOT, free_port
from sbt_site.celery import app as celery_app


@pytest.mark.django_db
def test_ready_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["broker"]["status"] == "ok"
    assert body["migrations"] == {"status": "ok"}
    assert body["outbox"]["status"] == "ok"
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_not_ready_while_a_migration_is_pending(client):
    latest = MigrationRecorder.Migration.objects.filter(app="events").order_by("-applied", "-id").first()
    # As if this code's latest events migration had not been applied yet (rolled back with the test).
    MigrationRecorder.Migration.objects.filter(app="events", name=latest.name).delete()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["migrations"] == {"status": "error", "pending_apps": ["events"]}
    assert client.get("/healthz").status_code == 200, "liveness does not care: the process can serve"


@pytest.mark.django_db
def test_not_ready_while_the_outbox_lags_past_the_limit(client, settings):
    event = event_publish(detail_type="readinessProbe", detail={})  # never dispatched: no commit in this test
    Event.objects.filter(pk=event.pk).update(created=timezone.now() - timedelta(minutes=10))
    response = client.get("/readyz")
    assert response.status_code == 503
    outbox = response.json()["outbox"]
    assert outbox["status"] == "error"
    assert outbox["limit_seconds"] == 300
    assert 599 <= outbox["lag_seconds"] <= 700
    assert client.get("/healthz").status_code == 200

    settings.SBT = {**getattr(settings, "SBT", {}), "READY_OUTBOX_LAG_SECONDS": 900}
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_not_ready_while_the_broker_is_unreachable(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    try:
        response = client.get("/readyz")
    finally:
        celery_app.conf.broker_url = previous
    assert response.status_code == 503
    body = response.json()
    assert body["broker"]["status"] == "error"
    assert body["database"]["status"] == "ok"


PROBE = """
import json, django
django.setup()
from django.test import Client
response = Client().get("/readyz")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def test_not_ready_while_the_database_is_unreachable(tmp_path):
    """In a process of its own, whose DATABASE_URL names a port nobody listens on (the test's
    own connection must stay usable)."""
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")} | {
        "DJANGO_SETTINGS_MODULE": "sbt_site.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/sbt",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "SBT_VAR_DIR": str(tmp_path),
        "LOG_LEVEL": "CRITICAL",
    }
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, probe.stderr
    answer = json.loads(probe.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503
    assert answer["body"]["database"]["status"] == "error"
    assert answer["body"]["migrations"] == {"status": "unknown"}
