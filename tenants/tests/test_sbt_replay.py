"""Replays of what an unmodified SBT application plane sends back, byte for byte as SBT builds it.

The bodies below are data copied from awslabs/sbt-aws (0.9.x; each names the file it comes
from). SBT's reference application plane is a ScriptJob (a Step Functions state machine around
a CodeBuild job) whose result reaches the control plane one of two ways:

- as an event on the bus, ``{"tenantRegistrationId", "jobOutput"}`` — which we receive as
  ``POST /events``;
- through SBT's own control plane wiring, an EventBridge API destination that PATCHes
  ``$.detail.jobOutput`` to ``/tenant-registrations/{$.detail.tenantRegistrationId}`` — which
  we receive as that PATCH.

An API destination retries what answers 409, 429 or 5xx, so each is replayed twice as well:
every delivery answers 2xx and the second changes nothing.
"""

import pytest

from billing.models import BillingCustomer
from events.models import Event, HandlerRun
from tenants.models import TenantRegistration

pytestmark = pytest.mark.django_db

REGISTRATIONS = "/api/v1/tenant-registrations"
EVENTS = "/api/v1/events"

# scripts/sbt-aws.sh, create_tenant_registration(): the CLI's onboarding body.
CLI_CREATE_TENANT_REGISTRATION = {
    "tenantData": {
        "tenantName": "tenant12345",
        "email": "admin+tenant12345@example.com",
        "tier": "basic",
        "prices": [
            {"id": "price_123456789Example", "metricName": "productsSold"},
            {"id": "price_123456789AnotherExample", "metricName": "plusProductsSold"},
        ],
    },
    "tenantRegistrationData": {"registrationStatus": "In progress", "tenantRegistrationData1": "test"},
}

# src/core-app-plane/integ.default.ts, the provisioning script: ``export tenantConfig=$(jq ...
# -n '{...}')`` (jq pretty-prints), ``export registrationStatus="created"``; ``prices`` came in
# through environmentJSONVariablesFromIncomingEvent, i.e. JsonPath.jsonToString (compact JSON).
# src/core-app-plane/script-job.ts puts each variable named in environmentVariablesToOutgoingEvent
# into jobOutput as CodeBuild exported it: a string.
PROVISION_SUCCESS_JOB_OUTPUT = {
    "tenantData": {
        "tenantS3Bucket": "tenanttemplatestack-5e7f-mybucket-1x2y3z",
        "tenantConfig": (
            "{\n"
            '  "userPoolId": "MY_SAAS_APP_USERPOOL_ID",\n'
            '  "appClientId": "MY_SAAS_APP_CLIENT_ID",\n'
            '  "apiGatewayUrl": "MY_API_GATEWAY_URL"\n'
            "}"
        ),
        "prices": '[{"id":"price_123456789Example","metricName":"productsSold"},'
        '{"id":"price_123456789AnotherExample","metricName":"plusProductsSold"}]',
        "tenantName": "tenant12345",
        "email": "admin+tenant12345@example.com",
    },
    "tenantRegistrationData": {"registrationStatus": "created"},
}

# src/core-app-plane/tenant-lifecycle-script-jobs.ts: the ProvisioningScriptJob's and
# DeprovisioningScriptJob's jobFailureStatus, sent as jobOutput when the job fails.
PROVISION_FAILURE_JOB_OUTPUT = {"tenantStatus": "Failed to provision tenant."}
DEPROVISION_FAILURE_JOB_OUTPUT = {"tenantStatus": "Failed to deprovision tenant."}

# src/core-app-plane/integ.default.ts, the deprovisioning script exports only
# registrationStatus; script-job.ts always includes an (empty) tenantData.
DEPROVISION_SUCCESS_JOB_OUTPUT = {"tenantData": {}, "tenantRegistrationData": {"registrationStatus": "deleted"}}


def script_job_event(detail_type: str, registration_id: str, job_output: dict) -> dict:
    """The PutEvents entry of script-job.ts' notifySuccess/FailureEventBridgeTask, with the names
    of src/utils/event-manager.ts (sbt_aws_ prefix, source sbt.application.plane)."""
    return {
        "detail-type": f"sbt_aws_{detail_type}",
        "source": "sbt.application.plane",
        "detail": {"tenantRegistrationId": registration_id, "jobOutput": job_output},
    }


@pytest.fixture
def deliver(api, django_capture_on_commit_callbacks):
    """``deliver(method, url, body)``: one request as the control plane's API destination (or the
    application plane's machine client) sends it, with the after-commit work run."""
    client = api(scopes="tenant/tenant_write tenant/tenant_read events/events_write")

    def send(method: str, url: str, body: dict | None = None):
        with django_capture_on_commit_callbacks(execute=True):
            return getattr(client, method)(url, body, format="json")

    return send


@pytest.fixture
def registration(deliver) -> TenantRegistration:
    response = deliver("post", REGISTRATIONS, CLI_CREATE_TENANT_REGISTRATION)
    assert response.status_code == 201, response.content
    return TenantRegistration.objects.get(pk=response.json()["data"]["tenantRegistrationId"])


def side_effects() -> dict:
    """What a delivery may cause beyond its answer: control-plane events, subscriber runs, the
    registration's and tenant's last write, the billing customer."""
    registration = TenantRegistration.objects.select_related("tenant").get()
    return {
        "control-plane events": list(
            Event.objects.filter(direction=Event.Direction.OUTBOUND).values_list("detail_type", flat=True)
        ),
        "subscriber runs": HandlerRun.objects.count(),
        "registration written": registration.modified,
        "tenant written": registration.tenant.modified,
        "billing customer": list(BillingCustomer.objects.values_list("status", flat=True)),
    }


def assert_provisioned(registration: TenantRegistration, client) -> None:
    registration.refresh_from_db()
    tenant = registration.tenant
    assert (registration.status, registration.status_reason) == ("created", "")
    assert tenant.prices == CLI_CREATE_TENANT_REGISTRATION["tenantData"]["prices"]
    assert tenant.config == {
        "userPoolId": "MY_SAAS_APP_USERPOOL_ID",
        "appClientId": "MY_SAAS_APP_CLIENT_ID",
        "apiGatewayUrl": "MY_API_GATEWAY_URL",
    }
    assert tenant.data["tenantS3Bucket"] == "tenanttemplatestack-5e7f-mybucket-1x2y3z"
    config = client.get("/api/v1/tenant-config/tenant12345")
    assert config.status_code == 200 and config.json()["apiGatewayUrl"] == "MY_API_GATEWAY_URL"


def test_provision_success_through_the_api_destination_and_its_retry(deliver, registration, client):
    url = f"{REGISTRATIONS}/{registration.pk}"
    first = deliver("patch", url, PROVISION_SUCCESS_JOB_OUTPUT)
    assert first.status_code == 200, first.content
    assert first.json()["data"]["tenant"]["prices"] == CLI_CREATE_TENANT_REGISTRATION["tenantData"]["prices"]
    assert_provisioned(registration, client)
    before = side_effects()

    retry = deliver("patch", url, PROVISION_SUCCESS_JOB_OUTPUT)
    assert retry.status_code == 200, retry.content
    assert retry.json()["data"]["tenantRegistration"] == first.json()["data"]["tenantRegistration"]
    assert side_effects() == before
    assert_provisioned(registration, client)


def test_provision_success_as_an_event_and_its_repeat(deliver, registration, client):
    event = script_job_event("provisionSuccess", str(registration.pk), PROVISION_SUCCESS_JOB_OUTPUT)
    assert deliver("post", EVENTS, event).status_code == 201
    assert_provisioned(registration, client)
    before = side_effects()

    assert deliver("post", EVENTS, event).status_code == 201
    assert side_effects() == before, "the repeat is logged as received, and causes nothing"
    assert Event.objects.filter(direction=Event.Direction.INBOUND).count() == 2
    assert_provisioned(registration, client)


@pytest.mark.parametrize("way", ["api destination", "event"])
def test_provision_failure_keeps_scriptjobs_reason(deliver, registration, way):
    if way == "api destination":
        request = ("patch", f"{REGISTRATIONS}/{registration.pk}", PROVISION_FAILURE_JOB_OUTPUT)
    else:
        request = (
            "post",
            EVENTS,
            script_job_event("provisionFailure", str(registration.pk), PROVISION_FAILURE_JOB_OUTPUT),
        )
    assert deliver(*request).status_code in (200, 201)
    registration.refresh_from_db()
    assert (registration.status, registration.status_reason) == ("failed", "Failed to provision tenant.")
    before = side_effects()

    assert deliver(*request).status_code in (200, 201)
    assert side_effects() == before
    fetched = deliver("get", f"{REGISTRATIONS}/{registration.pk}").json()["data"]
    assert fetched["registrationStatus"] == "failed"
    assert fetched["registrationStatusReason"] == "Failed to provision tenant."


def test_offboarding_with_retried_deletes_then_deprovision_success(deliver, registration):
    url = f"{REGISTRATIONS}/{registration.pk}"
    assert deliver("patch", url, PROVISION_SUCCESS_JOB_OUTPUT).status_code == 200
    for _ in range(2):
        response = deliver("delete", url)
        assert response.status_code == 200
        assert response.json() == {"data": {"message": "Tenant registration deletion initiated"}}
    effects = side_effects()
    assert effects["control-plane events"].count("offboardingRequest") == 1
    assert effects["billing customer"] == [BillingCustomer.Status.CANCELED]

    event = script_job_event("deprovisionSuccess", str(registration.pk), DEPROVISION_SUCCESS_JOB_OUTPUT)
    assert deliver("post", EVENTS, event).status_code == 201
    registration.refresh_from_db()
    assert registration.status == "deleted"
    before = side_effects()
    # The same result through the API destination, and one more late DELETE: nothing moves.
    assert deliver("patch", url, DEPROVISION_SUCCESS_JOB_OUTPUT).status_code == 200
    assert deliver("delete", url).status_code == 200
    assert side_effects() == before
    registration.refresh_from_db()
    assert registration.status == "deleted"


def test_deprovision_failure_through_the_api_destination(deliver, registration):
    url = f"{REGISTRATIONS}/{registration.pk}"
    deliver("delete", url)
    for _ in range(2):
        assert deliver("patch", url, DEPROVISION_FAILURE_JOB_OUTPUT).status_code == 200
    registration.refresh_from_db()
    assert (registration.status, registration.status_reason) == ("failed", "Failed to deprovision tenant.")
    assert registration.offboarded is not None, "a failed deprovisioning is still an offboarding"
