"""The way back (docs/events.md, docs/eventbridge-way-back.yaml): the CloudFormation template is
valid, and the body its rule's input transformer makes of an SBT application-plane event is one
POST /api/v1/events applies with a token of the scope its Connection asks for."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rest_framework.test import APIClient

from events.catalogue import application_plane_source, wire_name
from tenants.models import TenantRegistration
from tenants.tests.factories import tenant_registration_onboard

TEMPLATE = Path(__file__).resolve().parents[2] / "docs" / "eventbridge-way-back.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short intrinsic functions (!Ref, !Sub, !GetAtt) as plain values."""


_CloudFormationLoader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node))


def template() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)


def test_the_template_passes_cfn_lint():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def render(transformer: dict, event: dict) -> bytes:
    """What EventBridge sends the API destination: the template with each <name> replaced by the
    JSON of the value at its path in the event."""
    values = {name: event[path.removeprefix("$.")] for name, path in transformer["InputPathsMap"].items()}
    return re.sub(r"<(\w+)>", lambda match: json.dumps(values[match[1]]), transformer["InputTemplate"]).encode()


@pytest.mark.django_db
def test_the_rules_body_of_a_scriptjob_success_provisions_the_tenant(make_token):
    resources = template()["Resources"]
    connection = resources["ControlPlaneConnection"]["Properties"]["AuthParameters"]["OAuthParameters"]
    scope = {p["Key"]: p["Value"] for p in connection["OAuthHttpParameters"]["BodyParameters"]}["scope"]
    (target,) = resources["ApplicationPlaneEventsRule"]["Properties"]["Targets"]
    assert resources["ControlPlaneEventsDestination"]["Properties"]["InvocationEndpoint"].endswith("/api/v1/events")

    registration = tenant_registration_onboard("acme")
    # As EventBridge delivers what SBT's ScriptJob put on the bus (sbt-aws src/core-app-plane/
    # script-job.ts, notifySuccessEventBridgeTask: {tenantRegistrationId, jobOutput}).
    event = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": wire_name("provisionSuccess"),
        "source": application_plane_source(),
        "account": "111122223333",
        "time": "2026-12-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "tenantRegistrationId": str(registration.pk),
            "jobOutput": {"tenantData": {"tenantConfig": {"apiUrl": "https://acme.example.com"}}},
        },
    }
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(scopes=scope)}")
    response = client.post(
        "/api/v1/events", data=render(target["InputTransformer"], event), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    registration.refresh_from_db()
    assert registration.status == TenantRegistration.Status.CREATED
    assert registration.tenant.config == {"apiUrl": "https://acme.example.com"}
