"""The lifecycle through the real broker: a gunicorn web process and a `celery worker` process,
both started here on the test database, with the Redis that ./sbt test starts.

Nothing runs eagerly: the web process enqueues the dispatch on Redis after its commit, the
worker fans the event out and delivers it to the application plane, which reports
provisionSuccess back to the web process.
"""

import sys
from pathlib import Path

import pytest
import requests

from events.models import Delivery, Event
from events.services import subscription_create
from events.tests.conftest import ApplicationPlane, application_plane_scopes, verify_signature
from events.tests.subprocesses import free_port, gunicorn_command, healthy, wait_for, worker_command

BIN = Path(sys.executable).parent


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_lifecycle_through_redis_and_a_celery_worker(processes, receiver, make_token):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    processes.start("web", *gunicorn_command(BIN, port))
    worker_log = processes.start("worker", *worker_command(BIN, f"events-test-{port}")).log
    _, secret = subscription_create(url=receiver.url, event_types=["onboardingRequest"])
    auth = {"Authorization": f"Bearer {make_token(scopes='tenant/tenant_read tenant/tenant_write')}"}
    app_plane = ApplicationPlane(
        receiver, base_url=base_url, token=make_token(scopes=application_plane_scopes()), secret=secret
    )

    wait_for(lambda: healthy(base_url), timeout=60, what="the web process")
    created = requests.post(
        f"{base_url}/api/v1/tenant-registrations",
        json={"tenantData": {"tenantName": "initech", "tier": "premium"}},
        headers=auth,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    registration_id = created.json()["data"]["tenantRegistrationId"]
    tenant_id = created.json()["data"]["tenantId"]

    wait_for(lambda: receiver.requests, timeout=60, what="the worker to deliver onboardingRequest")
    received = receiver.requests[0]
    assert verify_signature(secret, received.headers, received.body)
    assert received.json["detail"]["tenantRegistrationId"] == registration_id

    def registration_status():
        response = requests.get(f"{base_url}/api/v1/tenant-registrations/{registration_id}", headers=auth, timeout=10)
        return response.json()["data"]["registrationStatus"] == "created"

    wait_for(registration_status, timeout=60, what="provisionSuccess to be applied")
    app_plane.join()
    assert [status for status, _ in app_plane.reports] == [201]
    config = requests.get(f"{base_url}/api/v1/tenant-config", params={"tenantId": tenant_id}, timeout=10)
    assert config.json() == {"apiUrl": "https://initech.app.test", "tier": "basic"}

    onboarding = Event.objects.get(detail_type="onboardingRequest")
    assert onboarding.dispatched_at is not None
    delivery = Delivery.objects.get(event=onboarding)
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SUCCEEDED, 1)
    assert len(receiver.requests) == 1
    # The work went through the broker to the worker process, not eagerly in the web process.
    log = worker_log.read_text(errors="replace")
    assert "events.dispatch_event" in log and "events.deliver_event" in log
