"""tenant_onboard, tenant_offboard, tenant_list and the demo tenants of demo_bootstrap."""

import json
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from events.models import Event
from tenants.models import Tenant, TenantRegistration

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_onboard_list_offboard(events_of):
    result = json.loads(
        run(
            "tenant_onboard",
            "--name=acme",
            "--email=ops@acme.test",
            "--tier=premium",
            '--data={"prices": [{"id": "price_1", "metricName": "calls"}], "region": "eu"}',
            "--json",
        )
    )
    tenant = Tenant.objects.get(pk=result["tenantId"])
    assert (tenant.name, tenant.email, tenant.tier, tenant.data) == (
        "acme",
        "ops@acme.test",
        "premium",
        {"region": "eu"},
    )
    assert tenant.prices == [{"id": "price_1", "metricName": "calls"}]
    assert events_of("onboardingRequest")[0]["tenantRegistrationId"] == result["tenantRegistrationId"]

    table = run("tenant_list")
    assert result["tenantId"] in table and "acme" in table and "In progress" in table and "1 tenant(s)" in table
    (listed,) = json.loads(run("tenant_list", "--json"))
    assert listed["tenantId"] == result["tenantId"] and listed["registrationStatus"] == "In progress"

    assert "Offboarding of tenant" in run("tenant_offboard", result["tenantId"])
    assert TenantRegistration.objects.get().status == "deleting"
    assert len(events_of("offboardingRequest")) == 1
    with pytest.raises(CommandError, match="already offboarded"):
        run("tenant_offboard", result["tenantId"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "--data is not valid JSON"),
        ("[1]", "--data must be a JSON object"),
        ('{"tenantId": "x"}', "tenantId is set by the control plane"),
    ],
)
def test_onboard_refuses_bad_data_and_writes_nothing(data, message):
    with pytest.raises(CommandError, match=message):
        run("tenant_onboard", "--name=a", "--email=a@b.c", "--tier=basic", f"--data={data}")
    assert not Tenant.objects.exists() and not Event.objects.exists()


@pytest.mark.parametrize("tenant_id", [str(uuid.uuid4()), "nonsense"])
def test_offboard_unknown_tenant_says_what_to_do(tenant_id):
    with pytest.raises(CommandError, match=f"Tenant {tenant_id} not found.*tenant_list") as error:
        run("tenant_offboard", tenant_id)
    assert ".." not in str(error.value)


def test_empty_list():
    assert run("tenant_list").strip().endswith("0 tenant(s)")
    assert json.loads(run("tenant_list", "--json")) == []


def test_demo_bootstrap_onboards_demo_tenants_once(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    output = run("demo_bootstrap")
    assert "Tenant:     acme (premium)" in output and "Tenant:     globex (basic)" in output
    assert TenantRegistration.objects.count() == 2
    run("demo_bootstrap")
    assert Tenant.objects.count() == 2, "idempotent"
