"""What the billing services share: the provider, a customer as the provider knows it, the tenant's prices."""

from billing.interface import BillingProvider, CustomerRef, PriceRef
from billing.models import BillingCustomer
from sbt_site.providers import get_provider
from tenants.models import Tenant
from tenants.selectors import tenant_price_list


def billing_provider() -> BillingProvider:
    return get_provider("billing")


def customer_ref(customer: BillingCustomer) -> CustomerRef:
    return CustomerRef(
        customer_id=customer.provider_customer_id,
        subscription_id=customer.provider_subscription_id,
        subscription_status=customer.subscription_status,
    )


def tenant_prices(tenant: Tenant) -> tuple[PriceRef, ...]:
    """The tenant's registered prices as the provider takes them (``tenant_price_list``'s rule)."""
    return tuple(
        PriceRef(price_id=price.price_id, meter_api_name=price.metric_name)
        for price in tenant_price_list(tenant=tenant)
    )
