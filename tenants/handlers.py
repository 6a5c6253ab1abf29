"""The tenants app's side of the event bus.

Inbound: the application plane reports provisioning results by POSTing events to /events
(events app). These handlers run synchronously inside that request's transaction and apply the
result to the registration; raising a ServiceError rejects the whole request. The caller's
tenant binding still limits them to its tenant's registrations.
"""

from uuid import UUID

from events.registry import inbound_handler
from sbt_site.errors import InvalidInput
from tenants.services import tenant_registration_apply_job_output

# tenantStatus: the failure output of SBT's ScriptJob (src/core-app-plane/tenant-lifecycle-script-jobs.ts).
REASON_KEYS = ("reason", "error", "errorMessage", "message", "tenantStatus")

# What reporting a provisioning outcome is (events.catalogue.APPLICATION_PLANE_OPERATIONS): only
# the operator and unbound integrations may, never a tenant-bound client about its own tenant.
UPDATE_REGISTRATION = "updateTenantRegistration"


def _reason(detail: dict) -> str | None:
    """The failure reason, wherever an application plane put it (detail or jobOutput)."""
    job_output = detail.get("jobOutput") if isinstance(detail.get("jobOutput"), dict) else {}
    for source in (detail, job_output):
        for key in REASON_KEYS:
            value = source.get(key)
            if value:
                return value if isinstance(value, str) else str(value)
    return None


def _apply(outcome: str, detail: dict, client_tenant_id: UUID | None) -> None:
    if not isinstance(detail, dict) or not detail.get("tenantRegistrationId"):
        raise InvalidInput(
            f"{outcome} needs detail.tenantRegistrationId",
            detail=[{"loc": ["detail", "tenantRegistrationId"], "msg": "field required", "type": "missing"}],
        )
    tenant_registration_apply_job_output(
        registration_id=detail["tenantRegistrationId"],
        outcome=outcome,
        job_output=detail.get("jobOutput"),
        reason=_reason(detail),
        client_tenant_id=client_tenant_id,
    )


@inbound_handler("provisionSuccess", operation=UPDATE_REGISTRATION)
def apply_provision_success(detail: dict, *, client_tenant_id: UUID | None) -> None:
    _apply("provisionSuccess", detail, client_tenant_id)


@inbound_handler("provisionFailure", operation=UPDATE_REGISTRATION)
def apply_provision_failure(detail: dict, *, client_tenant_id: UUID | None) -> None:
    _apply("provisionFailure", detail, client_tenant_id)


@inbound_handler("deprovisionSuccess", operation=UPDATE_REGISTRATION)
def apply_deprovision_success(detail: dict, *, client_tenant_id: UUID | None) -> None:
    _apply("deprovisionSuccess", detail, client_tenant_id)


@inbound_handler("deprovisionFailure", operation=UPDATE_REGISTRATION)
def apply_deprovision_failure(detail: dict, *, client_tenant_id: UUID | None) -> None:
    _apply("deprovisionFailure", detail, client_tenant_id)
