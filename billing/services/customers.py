"""Writes of billing customers: onboarding, offboarding and following the tenant's prices."""

from uuid import UUID

from django.db import IntegrityError, transaction

from billing.interface import CustomerInput, PriceRef
from billing.models import BillingCustomer
from billing.services.common import billing_provider, customer_ref, tenant_prices
from billing.services.push import usage_push_run
from sbt_site.errors import Conflict, ProviderError, ServiceError
from tenants.models import Tenant
from tenants.selectors import tenant_get


def _locked_customer(tenant: Tenant) -> BillingCustomer:
    try:
        with transaction.atomic():
            BillingCustomer.objects.get_or_create(tenant=tenant, defaults={"provider": billing_provider().name})
    except IntegrityError:
        pass  # created concurrently by another run
    return BillingCustomer.objects.select_for_update().get(tenant=tenant)


def _customer_input(tenant: Tenant, customer: BillingCustomer) -> CustomerInput:
    return CustomerInput(
        tenant_id=tenant.pk,
        name=tenant.name,
        email=tenant.email,
        prices=tenant_prices(tenant),
        customer_id=customer.provider_customer_id,
    )


@transaction.atomic
def billing_customer_create(*, tenant_id: UUID | str) -> BillingCustomer:
    """Create the tenant's customer (and subscription to its prices) at the provider, once.

    Safe to call again: a customer that exists is returned unchanged, and the provider call is
    itself idempotent for a run that crashed after the provider answered, however long ago:
    the provider id our row holds is used first, else the provider looks the tenant up before
    creating anything (Stripe: search by ``metadata.tenant_id``).
    """
    tenant = tenant_get(tenant_id=tenant_id)
    customer = _locked_customer(tenant)
    if customer.status != BillingCustomer.Status.PENDING:
        return customer
    provider = billing_provider()
    customer_input = _customer_input(tenant, customer)
    ref = provider.create_customer(customer_input)
    customer.provider = provider.name
    customer.provider_customer_id = ref.customer_id
    customer.provider_subscription_id = ref.subscription_id
    customer.subscription_status = ref.subscription_status
    customer.billed_prices = _prices_json(customer_input.prices)
    customer.status = BillingCustomer.Status.ACTIVE
    customer.last_error = ""
    customer.save()
    return customer


def _prices_json(prices: tuple[PriceRef, ...]) -> list[dict]:
    """The prices the provider was given, kept as ``BillingCustomer.billed_prices``."""
    return [{"id": price.price_id, "metricName": price.meter_api_name} for price in prices]


def billing_customer_delete(*, tenant_id: UUID | str) -> BillingCustomer | None:
    """Offboard the tenant's customer: push its remaining usage, then the provider stops billing it.

    The final push sends every closed hourly window not yet billed **and the hour in progress**
    (what metering holds of it: from the offboardingRequest on, metering refuses the tenant's
    usage, so that hour cannot grow any more), so the final invoice the cancellation issues
    includes it. If any window cannot be pushed, nothing is cancelled and a retryable
    ProviderError makes the event bus try the offboarding again later. Idempotent.
    """
    customer = BillingCustomer.objects.filter(tenant_id=tenant_id).first()
    if customer is None or customer.status == BillingCustomer.Status.CANCELED:
        return customer
    if customer.provider_customer_id and customer.status != BillingCustomer.Status.PENDING:
        # Identifiers are deterministic: if this runs inside a caller's transaction (the event
        # bus's savepoint) and rolls back, the next attempt resends the same records, billed once.
        result = usage_push_run(tenant_id=customer.tenant_id, include_current_hour=True)
        if result.failed:
            errors = "; ".join(error for line in result.lines for error in line.errors[:1])
            raise ProviderError(
                f"The final usage of tenant {customer.tenant_id} could not be pushed ({result.failed} windows "
                f"failed: {errors}); its subscription stays active until it is",
                retryable=True,
                code="final_push_failed",
            )
    return _billing_customer_cancel(tenant_id=customer.tenant_id)


@transaction.atomic
def _billing_customer_cancel(*, tenant_id: UUID | str) -> BillingCustomer | None:
    customer = BillingCustomer.objects.select_for_update().filter(tenant_id=tenant_id).first()
    if customer is None or customer.status == BillingCustomer.Status.CANCELED:
        return customer
    if customer.provider_customer_id:
        ref = billing_provider().delete_customer(customer_ref(customer))
        customer.subscription_status = ref.subscription_status
    customer.status = BillingCustomer.Status.CANCELED
    customer.save()
    return customer


def billing_subscription_sync(*, tenant_id: UUID | str) -> BillingCustomer | None:
    """Make the tenant's subscription at the provider bill exactly its registered prices now.

    The tenants app publishes no event when a tenant's ``prices`` change (PUT /tenants/{id},
    PATCH of a registration's tenantData): run this afterwards, from ``billing_subscription_sync``
    or the admin. Meters that lose their price get a last push first (closed windows and the
    hour in progress), as on offboarding, since the usage push stops following them; if it
    fails nothing changes and a retryable ProviderError says so. A customer not created yet
    needs nothing (onboarding uses the prices of the moment); an offboarded one is refused.
    Idempotent: prices already billed change nothing.
    """
    tenant = tenant_get(tenant_id=tenant_id)
    customer = BillingCustomer.objects.filter(tenant=tenant).first()
    if customer is None or customer.status == BillingCustomer.Status.PENDING:
        return customer
    if customer.status == BillingCustomer.Status.CANCELED:
        raise Conflict(f"Tenant {tenant.pk} is offboarded: its subscription was cancelled", code="offboarded")
    billed = {price.get("metricName") for price in customer.billed_prices if isinstance(price, dict)}
    removed = sorted(billed - {price.meter_api_name for price in tenant_prices(tenant)} - {None, ""})
    if removed:
        result = usage_push_run(tenant_id=tenant.pk, meters=removed, include_current_hour=True)
        if result.failed:
            raise ProviderError(
                f"The last usage of {', '.join(removed)} for tenant {tenant.pk} could not be pushed; "
                "its subscription was left unchanged",
                retryable=True,
                code="final_push_failed",
            )
    return _subscription_sync(tenant)


@transaction.atomic
def _subscription_sync(tenant: Tenant) -> BillingCustomer:
    customer = BillingCustomer.objects.select_for_update().get(tenant=tenant)
    if customer.status == BillingCustomer.Status.CANCELED:
        raise Conflict(f"Tenant {tenant.pk} is offboarded: its subscription was cancelled", code="offboarded")
    customer_input = _customer_input(tenant, customer)
    ref = billing_provider().sync_subscription(customer_input, customer_ref(customer))
    customer.provider_subscription_id = ref.subscription_id
    customer.subscription_status = ref.subscription_status
    customer.billed_prices = _prices_json(customer_input.prices)
    customer.save()
    return customer


def billing_subscriptions_sync(*, tenant_ids: list[UUID | str] | None = None) -> list[tuple[UUID, str]]:
    """Sync the given tenants' subscriptions (default: every active customer's); (tenant, error or "") each.

    One tenant's failure does not stop the others; its message is returned.
    """
    if tenant_ids is None:
        tenant_ids = list(
            BillingCustomer.objects.filter(status__in=(BillingCustomer.Status.ACTIVE, BillingCustomer.Status.PAST_DUE))
            .order_by("created", "id")
            .values_list("tenant_id", flat=True)
        )
    results = []
    for tenant_id in tenant_ids:
        try:
            billing_subscription_sync(tenant_id=tenant_id)
        except ServiceError as exc:
            results.append((tenant_id, exc.message))
        else:
            results.append((tenant_id, ""))
    return results
