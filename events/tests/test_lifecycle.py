"""The whole loop between control plane and application plane, over real HTTP on loopback:
registration → signed onboardingRequest to the application plane → it POSTs provisionSuccess
with its jobOutput → the registration is `created` and /tenant-config serves the tenant's config."""

import time

import pytest
import requests

from events.models import Delivery, Event
from events.services import subscription_create
from events.tests.conftest import ApplicationPlane, application_plane_scopes, verify_signature
from tenants.models import TenantRegistration

SCOPES = "tenant/tenant_read tenant/tenant_write events/events_write"


def wait_for(predicate, *, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.django_db(transaction=True)
def test_registration_to_provisioned_tenant_over_http(live_server, receiver, make_token):
    _, secret = subscription_create(url=receiver.url, event_types=["onboardingRequest", "offboardingRequest"])
    control_plane_token = make_token(scopes=SCOPES)
    app_plane = ApplicationPlane(
        receiver, base_url=live_server.url, token=make_token(scopes=application_plane_scopes()), secret=secret
    )
    auth = {"Authorization": f"Bearer {control_plane_token}"}

    created = requests.post(
        f"{live_server.url}/api/v1/tenant-registrations",
        json={"tenantData": {"tenantName": "acme", "email": "ops@acme.test", "tier": "basic"}},
        headers=auth,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    registration_id = created.json()["data"]["tenantRegistrationId"]
    tenant_id = created.json()["data"]["tenantId"]

    # The application plane received one signed onboardingRequest carrying the registration.
    wait_for(lambda: receiver.requests)
    (received,) = receiver.requests
    assert verify_signature(secret, received.headers, received.body)
    onboarding = received.json
    assert onboarding["detail-type"] == "sbt_aws_onboardingRequest" and onboarding["source"] == "sbt.control.plane"
    assert onboarding["detail"]["tenantRegistrationId"] == registration_id
    assert onboarding["detail"]["tenantId"] == tenant_id
    assert onboarding["detail"]["tenantName"] == "acme"

    # It reported provisionSuccess; the control plane applied it before answering.
    app_plane.join()
    assert app_plane.bad_signatures == 0
    ((status, body),) = app_plane.reports
    assert status == 201, body
    registration = requests.get(
        f"{live_server.url}/api/v1/tenant-registrations/{registration_id}", headers=auth, timeout=30
    ).json()["data"]
    assert registration["registrationStatus"] == "created"
    assert registration["provisioningJob"] == "job-42"
    config = requests.get(f"{live_server.url}/api/v1/tenant-config", params={"tenantId": tenant_id}, timeout=30)
    assert config.status_code == 200
    assert config.json() == {"apiUrl": "https://acme.app.test", "tier": "basic"}
    by_name = requests.get(f"{live_server.url}/api/v1/tenant-config/acme", timeout=30)
    assert by_name.json() == config.json()

    inbound = Event.objects.get(direction="inbound")
    assert inbound.detail_type == "provisionSuccess"
    assert body["data"]["eventIds"] == [str(inbound.pk)]
    assert Delivery.objects.get(event__detail_type="onboardingRequest").status == Delivery.Status.SUCCEEDED
    assert TenantRegistration.objects.get(pk=registration_id).status == "created"
