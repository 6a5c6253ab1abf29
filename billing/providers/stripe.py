"""The Stripe billing provider.

- A tenant is a Stripe Customer (``metadata.tenant_id``, looked up by search before one is
  created); its registered prices become one Subscription, whose items follow the tenant's
  prices (``sync_subscription``) and which is cancelled (with a final invoice) on offboarding.
  The Customer itself is kept so its invoices stay readable.
- Usage is sent as Billing Meter events: ``event_name`` is the meter's api name,
  ``payload.stripe_customer_id`` the customer, ``payload.value`` the window's value, and the
  ``identifier`` is deterministic, so Stripe refuses a second copy of a record it holds.
- Stripe has no notion of a customer's users: tenant users are recorded by the control plane
  only (BillingUser) and the customer's billing email stays the tenant's email.
- Webhooks: the signature scheme and Stripe's event types and statuses are in
  ``stripe_webhooks.py``, which turns an event into the neutral ``WebhookEventData``.

Configuration (``SBT_PROVIDERS["billing"]["OPTIONS"]``): ``api_key``, ``webhook_secrets`` (a
list, several during a rotation), optionally ``api_base`` (a Stripe-compatible server, e.g. the
tests' fake), ``timeout``, ``max_attempts``, ``retry_backoff_seconds``, ``webhook_tolerance``.
"""

import logging
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured

from billing.interface import (
    BillingProvider,
    CustomerInput,
    CustomerRef,
    UsageReceipt,
    UsageRecord,
    UserInput,
    UserRef,
)
from billing.providers.stripe_api import StripeApi
from billing.providers.stripe_webhooks import DEFAULT_TOLERANCE_SECONDS, StripeWebhookFormat
from sbt_site.errors import Conflict

logger = logging.getLogger(__name__)

DAY = 24 * 3600


class StripeBillingProvider(StripeWebhookFormat, BillingProvider):
    name = "stripe"
    # Stripe refuses meter events older than 35 calendar days; keep an hour of margin.
    usage_max_age_seconds = 35 * DAY - 3600
    # Stripe cancels a meter event only within 24 hours of receiving it; keep an hour of margin.
    usage_cancel_window_seconds = DAY - 3600
    # Stripe refuses a second meter event with an identifier for a rolling 24 hours only; past
    # that (an hour early, for margin) a resend is checked against the window's total first.
    usage_identifier_window_seconds = DAY - 3600

    def __init__(
        self,
        *,
        api_key: str = "",
        webhook_secrets: list[str] | tuple[str, ...] | str = (),
        api_base: str | None = None,
        timeout: float = 30,
        max_attempts: int = 4,
        retry_backoff_seconds: float = 0.5,
        webhook_tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    ):
        if not api_key:
            raise ImproperlyConfigured(
                "SBT_PROVIDERS['billing']['OPTIONS']['api_key'] must be set to a Stripe secret key "
                "(sk_test_… or sk_live_…)"
            )
        if isinstance(webhook_secrets, str):
            webhook_secrets = [secret.strip() for secret in webhook_secrets.split(",") if secret.strip()]
        self.webhook_secrets = list(webhook_secrets)
        self.webhook_tolerance = webhook_tolerance
        self.api = StripeApi(
            api_key=api_key,
            api_base=api_base,
            timeout=timeout,
            max_attempts=max_attempts,
            retry_backoff_seconds=retry_backoff_seconds,
        )

    def create_customer(self, customer: CustomerInput) -> CustomerRef:
        tenant_id = str(customer.tenant_id)
        customer_id = customer.customer_id or self._existing_customer_id(tenant_id)
        if not customer_id:
            # Within 24 hours a retry replays the first answer (the idempotency key); after that
            # the search above finds the customer the first attempt created.
            customer_id = self.api.customer_create(tenant_id=tenant_id, name=customer.name, email=customer.email)["id"]
        if not customer.prices:
            return CustomerRef(customer_id=customer_id)
        return self.sync_subscription(customer, CustomerRef(customer_id=customer_id))

    def _existing_customer_id(self, tenant_id: str) -> str:
        found = self.api.customer_search(tenant_id=tenant_id)
        if len(found) > 1:
            logger.warning(
                "Stripe holds %s customers for tenant %s (%s): using the oldest",
                len(found),
                tenant_id,
                ", ".join(customer["id"] for customer in found),
            )
        return found[0]["id"] if found else ""

    def sync_subscription(self, customer: CustomerInput, current: CustomerRef) -> CustomerRef:
        tenant_id = str(customer.tenant_id)
        price_ids = list(dict.fromkeys(price.price_id for price in customer.prices))
        subscription = None
        if current.subscription_id:
            subscription = self.api.subscription_retrieve(current.subscription_id)
            if subscription.get("status") == "canceled":
                subscription = None
        if subscription is None:
            # A subscription an earlier attempt created but could not record (its answer lost,
            # its idempotency key long forgotten) is found here, not created a second time.
            existing = self.api.subscriptions_of_tenant(tenant_id=tenant_id, customer_id=current.customer_id)
            subscription = existing[0] if existing else None
        if subscription is None:
            if not price_ids:
                return CustomerRef(customer_id=current.customer_id)
            subscription = self.api.subscription_create(
                tenant_id=tenant_id, customer_id=current.customer_id, price_ids=price_ids
            )
        else:
            items = (subscription.get("items") or {}).get("data") or []
            billed = {item["price"]["id"]: item["id"] for item in items}
            add = [price_id for price_id in price_ids if price_id not in billed]
            delete = [item_id for price_id, item_id in billed.items() if price_id not in price_ids]
            if not price_ids:
                raise Conflict(
                    f"Tenant {tenant_id} has no prices left, and a Stripe subscription needs at least one: "
                    f"subscription {subscription['id']} was left as it is (offboard the tenant or cancel it in Stripe)",
                    code="subscription_needs_a_price",
                )
            if add or delete:
                subscription = self.api.subscription_items_update(
                    subscription_id=subscription["id"], add_price_ids=add, delete_item_ids=delete
                )
        return CustomerRef(
            customer_id=current.customer_id,
            subscription_id=subscription["id"],
            subscription_status=subscription.get("status", ""),
        )

    def delete_customer(self, customer: CustomerRef) -> CustomerRef:
        if not customer.subscription_id:
            return customer
        subscription = self.api.subscription_retrieve(customer.subscription_id)
        if subscription.get("status") != "canceled":
            subscription = self.api.subscription_cancel(customer.subscription_id)
        return CustomerRef(
            customer_id=customer.customer_id,
            subscription_id=customer.subscription_id,
            subscription_status=subscription.get("status", ""),
        )

    def create_user(self, user: UserInput) -> UserRef:
        return UserRef()

    def delete_user(self, user: UserInput, ref: UserRef) -> None:
        return None

    def put_usage(self, record: UsageRecord) -> UsageReceipt:
        response, duplicate = self.api.meter_event_create(
            event_name=record.meter_api_name,
            identifier=record.identifier,
            timestamp=int(record.timestamp.timestamp()),
            customer_id=record.customer.customer_id,
            value=record.value,
        )
        return UsageReceipt(
            identifier=record.identifier, reference=record.identifier, already_recorded=duplicate, response=response
        )

    def cancel_usage(self, *, identifier: str, meter_api_name: str) -> None:
        self.api.meter_event_cancel(event_name=meter_api_name, identifier=identifier)

    def usage_total(
        self, *, customer: CustomerRef, meter_api_name: str, start: datetime, end: datetime
    ) -> Decimal | None:
        return self.api.meter_event_total(
            event_name=meter_api_name,
            customer_id=customer.customer_id,
            start=int(start.timestamp()),
            end=int(end.timestamp()),
        )
