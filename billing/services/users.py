"""Writes of a tenant's users as billing knows them (from tenantUserCreated / tenantUserDeleted)."""

from uuid import UUID

from django.db import transaction

from billing.interface import UserInput, UserRef
from billing.models import BillingCustomer, BillingUser
from billing.services.common import billing_provider, customer_ref
from sbt_site.errors import NotFound


def _customer_for_users(tenant_id: UUID | str) -> BillingCustomer:
    customer = BillingCustomer.objects.select_for_update().filter(tenant_id=tenant_id).first()
    if customer is None or customer.status == BillingCustomer.Status.PENDING:
        # The onboarding handler has not run yet: failing makes the event bus retry later.
        raise NotFound(f"No billing customer yet for tenant {tenant_id}")
    return customer


@transaction.atomic
def billing_user_create(*, tenant_id: UUID | str, user_name: str, email: str = "") -> BillingUser:
    """Record a tenant user with the billing provider (idempotent)."""
    customer = _customer_for_users(tenant_id)
    user, created = BillingUser.objects.get_or_create(customer=customer, user_name=user_name, defaults={"email": email})
    if not created and user.status == BillingUser.Status.ACTIVE:
        return user
    ref = billing_provider().create_user(
        UserInput(tenant_id=customer.tenant_id, customer=customer_ref(customer), user_name=user_name, email=email)
    )
    user.email = email or user.email
    user.provider_user_id = ref.user_id
    user.status = BillingUser.Status.ACTIVE
    user.save()
    return user


@transaction.atomic
def billing_user_delete(*, tenant_id: UUID | str, user_name: str) -> BillingUser | None:
    """Forget a tenant user at the billing provider (idempotent)."""
    user = (
        BillingUser.objects.select_for_update()
        .select_related("customer")
        .filter(customer__tenant_id=tenant_id, user_name=user_name)
        .first()
    )
    if user is None or user.status == BillingUser.Status.DELETED:
        return user
    billing_provider().delete_user(
        UserInput(
            tenant_id=user.customer.tenant_id,
            customer=customer_ref(user.customer),
            user_name=user.user_name,
            email=user.email,
        ),
        UserRef(user_id=user.provider_user_id),
    )
    user.status = BillingUser.Status.DELETED
    user.save()
    return user
