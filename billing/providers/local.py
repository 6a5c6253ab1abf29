"""The built-in billing provider: no external service, everything recorded in this database.

Like SBT's mock billing, it keeps customers and "bills" usage per tenant and period
(LocalBillingRecord), so the whole billing flow (onboarding, push, webhooks) runs with nothing
to install. Its webhooks are Stripe's (signature scheme and events, ``stripe_webhooks.py``),
signed with the secrets in its OPTIONS, so the same signed events drive either provider.
"""

from billing.interface import (
    BillingProvider,
    CustomerInput,
    CustomerRef,
    UsageReceipt,
    UsageRecord,
    UserInput,
    UserRef,
)
from billing.models import LocalBillingRecord
from billing.providers.stripe_webhooks import DEFAULT_TOLERANCE_SECONDS, StripeWebhookFormat


class LocalBillingProvider(StripeWebhookFormat, BillingProvider):
    name = "local"

    def __init__(
        self, *, webhook_secrets: list[str] | tuple[str, ...] = (), webhook_tolerance: int = DEFAULT_TOLERANCE_SECONDS
    ):
        self.webhook_secrets = list(webhook_secrets)
        self.webhook_tolerance = webhook_tolerance

    def create_customer(self, customer: CustomerInput) -> CustomerRef:
        tenant = customer.tenant_id.hex
        return CustomerRef(
            customer_id=f"local_cus_{tenant}",
            subscription_id=f"local_sub_{tenant}" if customer.prices else "",
            subscription_status="active" if customer.prices else "",
        )

    def sync_subscription(self, customer: CustomerInput, current: CustomerRef) -> CustomerRef:
        # Local "subscriptions" hold nothing but their id: billing follows the tenant's prices.
        subscription_id = current.subscription_id or (f"local_sub_{customer.tenant_id.hex}" if customer.prices else "")
        return CustomerRef(
            customer_id=current.customer_id,
            subscription_id=subscription_id,
            subscription_status="active" if subscription_id else "",
        )

    def delete_customer(self, customer: CustomerRef) -> CustomerRef:
        return CustomerRef(
            customer_id=customer.customer_id,
            subscription_id=customer.subscription_id,
            subscription_status="canceled" if customer.subscription_id else "",
        )

    def create_user(self, user: UserInput) -> UserRef:
        return UserRef(user_id=f"local_user_{user.tenant_id.hex}_{user.user_name}"[:255])

    def delete_user(self, user: UserInput, ref: UserRef) -> None:
        return None

    def put_usage(self, record: UsageRecord) -> UsageReceipt:
        stored, created = LocalBillingRecord.objects.get_or_create(
            identifier=record.identifier,
            defaults={
                "provider_customer_id": record.customer.customer_id,
                "meter_api_name": record.meter_api_name,
                "period": record.timestamp.strftime("%Y-%m"),
                "timestamp": record.timestamp,
                "value": record.value,
            },
        )
        return UsageReceipt(identifier=record.identifier, reference=str(stored.pk), already_recorded=not created)

    def cancel_usage(self, *, identifier: str, meter_api_name: str) -> None:
        LocalBillingRecord.objects.filter(identifier=identifier).update(canceled=True)
