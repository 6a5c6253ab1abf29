"""The registration status flow, the inbound handlers (the /events seam) and the services."""

import re
import threading
import uuid

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from events.models import Event
from events.registry import inbound_handlers_for
from sbt_site.errors import Conflict, InvalidInput, NotFound
from tenants.handlers import apply_provision_success
from tenants.models import Tenant, TenantRegistration
from tenants.selectors import TenantPrice, tenant_price_list
from tenants.services import (
    tenant_registration_apply_job_output,
    tenant_registration_create,
    tenant_registration_delete,
)

pytestmark = pytest.mark.django_db


def run_inbound(detail_type: str, detail: dict, client_tenant_id=None) -> None:
    """Run what /events runs for an inbound event: every registered inbound handler."""
    handlers = inbound_handlers_for(detail_type)
    assert handlers, f"no inbound handler for {detail_type}"
    for handler in handlers:
        handler(detail, client_tenant_id=client_tenant_id)


def test_provision_success_sets_created_and_the_tenant_config(onboard):
    registration = onboard("acme")
    run_inbound(
        "provisionSuccess",
        {
            "tenantRegistrationId": str(registration.pk),
            "jobOutput": {
                "tenantData": {"tenantConfig": '{"userPoolId": "pool-1"}', "stack": "acme-stack"},
                "tenantRegistrationData": {"jobId": "job-1"},
            },
        },
    )
    registration.refresh_from_db()
    assert registration.status == "created" and registration.data == {"jobId": "job-1"}
    assert registration.tenant.config == {"userPoolId": "pool-1"}, "a JSON string is stored as the JSON it holds"
    assert registration.tenant.data["stack"] == "acme-stack"


def test_provision_success_reported_twice_is_harmless(onboard):
    registration = onboard()
    detail = {"tenantRegistrationId": str(registration.pk)}
    run_inbound("provisionSuccess", detail)
    run_inbound("provisionSuccess", detail)
    registration.refresh_from_db()
    assert registration.status == "created"


def test_provision_failure_is_recorded_with_its_reason(onboard):
    registration = onboard()
    run_inbound("provisionFailure", {"tenantRegistrationId": str(registration.pk), "error": "CodeBuild failed"})
    registration.refresh_from_db()
    assert registration.status == "failed" and registration.status_reason == "CodeBuild failed"
    # A retried provisioning may still succeed, and the old reason goes.
    run_inbound("provisionSuccess", {"tenantRegistrationId": str(registration.pk)})
    registration.refresh_from_db()
    assert registration.status == "created" and registration.status_reason == ""


def test_offboarding_flow_deleting_to_deleted(onboard):
    registration = onboard()
    run_inbound("provisionSuccess", {"tenantRegistrationId": str(registration.pk)})
    tenant_registration_delete(registration_id=registration.pk)
    run_inbound("deprovisionFailure", {"tenantRegistrationId": str(registration.pk), "reason": "stack stuck"})
    registration.refresh_from_db()
    assert registration.status == "failed" and registration.status_reason == "stack stuck"
    run_inbound("deprovisionSuccess", {"tenantRegistrationId": str(registration.pk)})
    registration.refresh_from_db()
    assert registration.status == "deleted" and not registration.active and not registration.tenant.active


@pytest.mark.parametrize(
    ("setup", "outcome", "message"),
    [
        ([], "deprovisionSuccess", "deprovisionSuccess does not apply: tenant registration {id} is onboarding"),
        (["provisionSuccess"], "provisionFailure", "provisionFailure does not apply"),
        (["offboard"], "provisionSuccess", "provisionSuccess does not apply: tenant registration {id} is offboarded"),
        (["offboard", "deprovisionSuccess"], "deprovisionFailure", "with status 'deleted'"),
    ],
)
def test_illegal_transitions_are_409_and_change_nothing(onboard, setup, outcome, message):
    registration = onboard()
    for step in setup:
        if step == "offboard":
            tenant_registration_delete(registration_id=registration.pk)
        else:
            tenant_registration_apply_job_output(registration_id=registration.pk, outcome=step)
    registration.refresh_from_db()
    before = (registration.status, registration.modified)
    with pytest.raises(Conflict, match=re.escape(message.format(id=registration.pk))) as error:
        tenant_registration_apply_job_output(
            registration_id=registration.pk, outcome=outcome, job_output={"tenantData": {"tier": "changed"}}
        )
    assert error.value.status_code == 409
    registration.refresh_from_db()
    assert (registration.status, registration.modified) == before and registration.tenant.tier == "basic"


def test_unknown_registration_is_not_found(db):
    unknown = str(uuid.uuid4())
    with pytest.raises(NotFound, match=f"Tenant registration not found for id {unknown}"):
        run_inbound("provisionSuccess", {"tenantRegistrationId": unknown})
    with pytest.raises(NotFound):
        run_inbound("provisionSuccess", {"tenantRegistrationId": "garbage"})


def test_missing_registration_id_or_bad_job_output_is_invalid(onboard):
    registration = onboard()
    with pytest.raises(InvalidInput, match=r"needs detail\.tenantRegistrationId"):
        apply_provision_success({"jobOutput": {}}, client_tenant_id=None)
    with pytest.raises(InvalidInput, match="jobOutput must be a JSON object"):
        apply_provision_success({"tenantRegistrationId": str(registration.pk), "jobOutput": []}, client_tenant_id=None)
    with pytest.raises(InvalidInput, match="tenantId is set by the control plane"):
        apply_provision_success(
            {"tenantRegistrationId": str(registration.pk), "jobOutput": {"tenantData": {"tenantId": "x"}}},
            client_tenant_id=None,
        )
    registration.refresh_from_db()
    assert registration.status == "In progress"


def test_a_tenant_bound_client_cannot_report_for_another_tenant(onboard):
    mine, other = onboard("mine"), onboard("other")
    with pytest.raises(NotFound):
        run_inbound("provisionSuccess", {"tenantRegistrationId": str(other.pk)}, client_tenant_id=mine.tenant_id)
    run_inbound("provisionSuccess", {"tenantRegistrationId": str(mine.pk)}, client_tenant_id=mine.tenant_id)
    other.refresh_from_db()
    mine.refresh_from_db()
    assert other.status == "In progress" and mine.status == "created"


def test_create_is_all_or_nothing(db):
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        tenant_registration_create(tenant_data={"tenantName": "doomed"})
        1 / 0  # noqa: B018 - whatever fails after the service, in the caller's transaction
    assert not Tenant.objects.exists() and not TenantRegistration.objects.exists() and not Event.objects.exists()


def test_onboarding_event_is_dispatched_after_commit(onboard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        registration = onboard()
    event = Event.objects.get(detail_type="onboardingRequest")
    assert event.detail["tenantRegistrationId"] == str(registration.pk)
    assert event.dispatched_at is not None


def test_prices_are_readable_for_billing(onboard):
    registration = onboard(prices=[{"id": "price_1", "metricName": "api_calls"}])
    assert tenant_price_list(tenant_id=registration.tenant_id) == [
        TenantPrice(price_id="price_1", metric_name="api_calls")
    ]


@pytest.mark.django_db(transaction=True)
def test_20_parallel_deletes_emit_exactly_one_offboarding_request(make_token):
    registration = tenant_registration_create(tenant_data={"tenantName": "contended"})
    token = make_token(scopes="tenant/tenant_write")
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()

    def delete():
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            barrier.wait(timeout=30)
            response = client.delete(f"/api/v1/tenant-registrations/{registration.pk}")
            with lock:
                statuses.append(response.status_code)
        finally:
            connection.close()  # each thread has its own connection; leave none behind

    threads = [threading.Thread(target=delete) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 20, "a repeated DELETE answers as SBT does (an API destination retries a 409)"
    assert Event.objects.filter(detail_type="offboardingRequest").count() == 1
    registration.refresh_from_db()
    assert registration.status == "deleting" and not registration.active
