import pytest

from events.tests.conftest import processes  # noqa: F401 - the real worker on the suite's Redis
from provisioning.services import provisioning_job_create
from tenants.tests.factories import tenant_registration_onboard

# Exports what the onboarding job of docs/provisioning.md exports, without a database of its own.
CONFIG_SCRIPT = """set -eu
echo "provisioning $tenantName"
echo "tenantConfig={\\"schema\\": \\"t_${tenantName}\\"}" >> "$SBT_OUTPUT"
echo "provisionedBy=$SBT_RUN_ID" >> "$SBT_OUTPUT"
"""


def job_values(**overrides) -> dict:
    """A valid onboarding job (ProvisioningScriptJob's shape); ``overrides`` replace fields."""
    return {
        "name": "onboard",
        "incoming_event": "onboardingRequest",
        "script": CONFIG_SCRIPT,
        "string_variables": ["tenantName", "tenantRegistrationId"],
        "tenant_data_outputs": ["tenantConfig"],
        "registration_data_outputs": ["provisionedBy"],
        "success_event": "provisionSuccess",
        "failure_event": "provisionFailure",
        "timeout_seconds": 30,
        **overrides,
    }


def offboard_job_values() -> dict:
    """The deprovisioning twin of ``job_values`` (DeprovisioningScriptJob's shape)."""
    return job_values(
        name="offboard",
        incoming_event="offboardingRequest",
        script='echo "dropping schema t_$tenantName"\n',
        tenant_data_outputs=[],
        registration_data_outputs=[],
        success_event="deprovisionSuccess",
        failure_event="deprovisionFailure",
        failure_status={"tenantStatus": "Failed to deprovision tenant."},
    )


@pytest.fixture
def make_job(db):
    """``make_job(**overrides) -> ProvisioningJob`` through the service."""

    def make(**overrides):
        return provisioning_job_create(values=job_values(**overrides))

    return make


@pytest.fixture
def onboard_now(db, django_capture_on_commit_callbacks):
    """``onboard_now(name, **tenant_keys) -> TenantRegistration``: onboarded with the on-commit
    work (dispatch, the eager provisioning task) run before it returns, and reloaded."""

    def onboard(name: str = "acme", **tenant_keys):
        with django_capture_on_commit_callbacks(execute=True):
            registration = tenant_registration_onboard(name, **tenant_keys)
        registration.refresh_from_db()
        return registration

    return onboard
