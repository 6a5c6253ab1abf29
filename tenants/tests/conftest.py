import pytest

from events.models import Event
from tenants.tests.factories import tenant_registration_onboard


@pytest.fixture
def onboard(db):
    """``onboard(name="acme", **tenant_keys) -> TenantRegistration`` through the service."""
    return tenant_registration_onboard


@pytest.fixture
def events_of():
    """``events_of("onboardingRequest") -> [detail, ...]`` in publication order."""

    def details(detail_type: str) -> list[dict]:
        return [event.detail for event in Event.objects.filter(detail_type=detail_type).order_by("created")]

    return details
