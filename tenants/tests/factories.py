"""The one way tests make tenants: ``TenantFactory`` writes a bare row (no registration, no
event), ``tenant_registration_onboard`` goes through the onboarding service as a client would
(tenant, registration and onboardingRequest)."""

import factory

from tenants.models import Tenant, TenantRegistration
from tenants.services import tenant_registration_create


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"tenant-{n}")


def tenant_registration_onboard(
    name: str = "acme", registration_data: dict | None = None, **tenant_keys
) -> TenantRegistration:
    """Onboard ``name`` through ``tenant_registration_create``; ``tenant_keys`` are more
    tenantData keys (``email`` and ``tier`` have defaults)."""
    return tenant_registration_create(
        tenant_data={"tenantName": name, "email": f"ops@{name}.test", "tier": "basic", **tenant_keys},
        registration_data=registration_data,
    )
