"""A tenant's lifecycle ends its access at once: deactivating, offboarding or deleting it revokes
every token of its clients and users (reactivating restores new logins, not the revoked tokens)."""

import pytest
from django.contrib.auth import get_user_model
from oauth2_provider.models import get_grant_model, get_refresh_token_model
from rest_framework.test import APIClient

from tenants.models import Tenant
from tenants.tests.factories import tenant_registration_onboard

pytestmark = pytest.mark.django_db


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def tenants(make_token):
    """acme and globex, each with a bound client's token and a tenant user's token."""
    made = {}
    for name in ("acme", "globex"):
        registration = tenant_registration_onboard(name)
        tenant = registration.tenant
        user = get_user_model().objects.create(username=f"{name}-user", role="TenantUser", tenant=tenant)
        made[name] = {
            "registration": registration,
            "client": make_token(scopes="tenant/tenant_read", tenant=tenant),
            "user": make_token(scopes="tenant/tenant_read", user=user),
        }
    return made


def can_read(token: str, tenant: Tenant) -> int:
    return bearer(token).get(f"/api/v1/tenants/{tenant.pk}").status_code


END_OF_ACCESS = {
    "deactivate": lambda operator, registration: operator.put(
        f"/api/v1/tenant-registrations/{registration.pk}/deactivate"
    ),
    "offboard": lambda operator, registration: operator.delete(f"/api/v1/tenant-registrations/{registration.pk}"),
    "delete tenant": lambda operator, registration: operator.delete(f"/api/v1/tenants/{registration.tenant_id}"),
}


@pytest.mark.parametrize("how", END_OF_ACCESS)
def test_ending_a_tenant_revokes_its_tokens_and_no_one_elses(api, tenants, how):
    acme, globex = tenants["acme"], tenants["globex"]
    for holder in ("client", "user"):
        assert can_read(acme[holder], acme["registration"].tenant) == 200

    response = END_OF_ACCESS[how](api(), acme["registration"])
    assert response.status_code == 200, response.content

    for holder in ("client", "user"):
        assert can_read(acme[holder], acme["registration"].tenant) == 401, holder
        assert can_read(globex[holder], globex["registration"].tenant) == 200, holder
    tenant_id = acme["registration"].tenant_id
    assert not get_refresh_token_model().objects.filter(user__tenant_id=tenant_id, revoked__isnull=True).exists()
    assert not get_grant_model().objects.filter(user__tenant_id=tenant_id).exists()


def test_reactivating_does_not_bring_revoked_tokens_back(api, tenants, make_token):
    acme = tenants["acme"]
    operator = api()
    registration = acme["registration"]
    assert operator.put(f"/api/v1/tenant-registrations/{registration.pk}/deactivate").status_code == 200
    assert operator.put(f"/api/v1/tenant-registrations/{registration.pk}/activate").status_code == 200
    assert can_read(acme["client"], registration.tenant) == 401
    assert can_read(make_token(scopes="tenant/tenant_read", tenant=registration.tenant), registration.tenant) == 200
