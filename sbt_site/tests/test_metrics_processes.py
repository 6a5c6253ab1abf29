"""Metrics and logs of real processes: gunicorn with two workers and a Celery worker on the
test database and the Redis ./sbt test starts, each process counting in its own files
(PROMETHEUS_MULTIPROC_DIR), scraped with the token and checked by ``promtool check metrics``."""

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from events.services import subscription_create
from events.tests.conftest import processes, receiver  # noqa: F401 (the fixtures)
from events.tests.subprocesses import free_port, healthy, wait_for, worker_command
from metering.interface import MeterSpec
from metering.services import meter_create
from sbt_site.tests.test_metrics import key, samples
from tenants.tests.factories import TenantFactory

BIN = Path(sys.executable).parent
METRICS_TOKEN = "scrape-token-0123456789abcdef"
REQUEST_ID = "onboard-req-0001"


def json_lines(log: Path) -> list[dict]:
    """The JSON lines of a process's output (gunicorn's and Celery's own start-up lines are not)."""
    return [json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_two_gunicorn_workers_and_a_celery_worker_are_scraped_as_one(processes, receiver, make_token, tmp_path):  # noqa: F811
    web_dir, worker_dir = tmp_path / "metrics-web", tmp_path / "metrics-worker"
    config = tmp_path / "gunicorn_conf.py"
    config.write_text(
        "from sbt_site.metrics import gunicorn_child_exit as child_exit, gunicorn_on_starting as on_starting\n"
    )
    base_env = processes.env | {
        "LOG_FORMAT": "json",
        "SBT_METRICS_TOKEN": METRICS_TOKEN,
        "SBT_METRICS_ALLOWED_NETWORKS": "",  # the token only, as in production
    }
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    processes.env = base_env | {"PROMETHEUS_MULTIPROC_DIR": str(web_dir), "SBT_METRICS_EXTRA_DIRS": str(worker_dir)}
    web = processes.start(
        "web",
        *(str(BIN / "gunicorn"), "sbt_site.wsgi", "-c", str(config), "--bind", f"127.0.0.1:{port}"),
        *("--workers", "2", "--threads", "4", "--no-control-socket"),
    )
    processes.env = base_env | {"PROMETHEUS_MULTIPROC_DIR": str(worker_dir)}
    worker = processes.start("worker", *worker_command(BIN, f"metrics-test-{port}"))

    tenant = TenantFactory(name="globex")
    meter_create(spec=MeterSpec(api_name="api-calls", label="API calls", aggregation="SUM"))
    subscription, subscription_secret = subscription_create(url=receiver.url, event_types=["onboardingRequest"])
    token = make_token()
    auth = {"Authorization": f"Bearer {token}"}

    wait_for(lambda: healthy(base_url), timeout=60, what="the web process")
    onboarded = requests.post(
        f"{base_url}/api/v1/tenant-registrations",
        json={"tenantData": {"tenantName": "initech", "tier": "basic"}},
        headers=auth | {"X-Request-ID": REQUEST_ID},
        timeout=30,
    )
    assert onboarded.status_code == 201, onboarded.text
    assert onboarded.headers["X-Request-ID"] == REQUEST_ID

    # Usage through both workers: new connections, sent concurrently, until each worker has
    # answered some (the kernel hands connections to whichever worker accepts first).
    sent_events = sent_requests = 0

    def post(number: int) -> int:
        events = [
            {"meterApiName": "api-calls", "tenantId": str(tenant.pk), "eventId": f"r{number}-{i}", "meterValue": 1}
            for i in range(3)
        ]
        response = requests.post(f"{base_url}/api/v1/usage", json={"events": events}, headers=auth, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()["data"]["accepted"]

    def usage_pids() -> set[int]:
        return {line["pid"] for line in json_lines(web.log) if line.get("route") == "api/v1/usage"}

    for round_number in range(10):
        with ThreadPoolExecutor(8) as pool:
            sent_events += sum(pool.map(post, range(round_number * 40, round_number * 40 + 40)))
        sent_requests += 40
        if len(usage_pids()) == 2:
            break
    assert len(usage_pids()) == 2, "every request went to one gunicorn worker"
    assert sent_events == sent_requests * 3

    wait_for(lambda: receiver.requests, timeout=60, what="the worker to deliver onboardingRequest")
    assert receiver.requests[0].headers["X-Request-ID"] == REQUEST_ID

    def tasks_of_the_request() -> set[str]:
        lines = json_lines(worker.log)
        return {
            line["task"] for line in lines if line["logger"] == "sbt.tasks" and line.get("request_id") == REQUEST_ID
        }

    wait_for(
        lambda: {"events.dispatch_event", "events.deliver_event"} <= tasks_of_the_request(),
        timeout=30,
        what="the worker's task lines with the onboarding's request id",
    )

    assert requests.get(f"{base_url}/metrics", timeout=10).status_code == 403
    scrape = requests.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert scrape.status_code == 200
    checked = subprocess.run(["promtool", "check", "metrics"], input=scrape.text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = samples(scrape.text)
    assert found[key("sbt_usage_events_total", meter="api-calls", outcome="accepted")] == sent_events
    usage_201 = key("sbt_http_request_duration_seconds_count", route="api/v1/usage", method="POST", status="201")
    assert found[usage_201] == sent_requests
    delivered = key("sbt_webhook_delivery_attempts_total", subscription=str(subscription.pk), outcome="succeeded")
    assert found[delivered] == 1
    assert found[key("sbt_outbox_undispatched_events")] == 0

    logs = web.log.read_text(errors="replace") + worker.log.read_text(errors="replace")
    for credential in (token, METRICS_TOKEN, subscription_secret):
        assert credential not in logs
