import pytest

from events.models import Event
from tenants.services import tenant_registration_create


@pytest.fixture
def onboard(db):
    """``onboard(name="acme", **tenant_keys) -> TenantRegistration`` through the service."""

    def make(name: str = "acme", registration_data: dict | None = None, **tenant_keys):
        return tenant_registration_create(
            tenant_data={"tenantName": name, "email": f"ops@{name}.test", "tier": "basic", **tenant_keys},
            registration_data=registration_data,
        )

    return make


@pytest.fixture
def events_of():
    """``events_of("onboardingRequest") -> [detail, ...]`` in publication order."""

    def details(detail_type: str) -> list[dict]:
        return [event.detail for event in Event.objects.filter(detail_type=detail_type).order_by("created")]

    return details
