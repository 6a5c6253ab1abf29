"""Reads of the billing app."""

from uuid import UUID

from django.db.models import QuerySet

from accounts.boundary import tenant_in_reach
from billing.models import BillingCustomer, UsagePush
from sbt_site.errors import NotFound
from sbt_site.selectors import status_counts


def billing_customer_list(*, tenant_id: UUID | None = None) -> QuerySet[BillingCustomer]:
    customers = BillingCustomer.objects.all()
    return customers.filter(tenant_id=tenant_id) if tenant_id is not None else customers


def billing_customer_get(*, tenant_id: UUID, visible_to: UUID | None = None) -> BillingCustomer:
    """The tenant's customer; a tenant-bound client (``visible_to``) sees only its own (others: 404)."""
    not_found = f"Billing customer not found for tenant {tenant_id}"
    tenant_id = tenant_in_reach(bound=visible_to, requested=tenant_id, not_found=not_found)
    customer = BillingCustomer.objects.filter(tenant_id=tenant_id).first()
    if customer is None:
        raise NotFound(not_found)
    return customer


def usage_push_list(*, tenant_id: UUID | None = None, meter_api_name: str | None = None) -> QuerySet[UsagePush]:
    pushes = UsagePush.objects.select_related("customer")
    if tenant_id is not None:
        pushes = pushes.filter(customer__tenant_id=tenant_id)
    if meter_api_name:
        pushes = pushes.filter(meter_api_name=meter_api_name)
    return pushes


def billing_customer_status_counts() -> dict[str, int]:
    """How many billing customers are in each status (every status present)."""
    return status_counts(BillingCustomer.objects.all(), BillingCustomer.Status.values)


def usage_push_status_counts() -> dict[str, int]:
    """How many usage pushes are in each status (every status present)."""
    return status_counts(UsagePush.objects.all(), UsagePush.Status.values)
