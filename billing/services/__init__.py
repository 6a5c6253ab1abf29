"""Writes of the billing app, one module per sub-domain; every caller imports from here.

- ``common``: the configured provider, a customer as the provider knows it, the tenant's prices
- ``customers``: a tenant's customer at the provider: create, offboard, follow its prices
- ``users``: tenant users recorded with the provider
- ``webhooks``: provider webhook events: verify, store once, apply, reprocess
- ``push``: metered usage sent to the provider per hourly window (docs/billing.md "The usage push")
"""

from billing.services.common import billing_provider, customer_ref, tenant_prices
from billing.services.customers import (
    billing_customer_create,
    billing_customer_delete,
    billing_subscription_sync,
    billing_subscriptions_sync,
)
from billing.services.push import (
    HOUR,
    PushLine,
    PushResult,
    usage_push_identifier,
    usage_push_run,
    usage_push_targets,
    usage_pushes_retry,
)
from billing.services.users import billing_user_create, billing_user_delete
from billing.services.webhooks import webhook_event_process, webhook_event_receive, webhook_events_reprocess

__all__ = [
    "HOUR",
    "PushLine",
    "PushResult",
    "billing_customer_create",
    "billing_customer_delete",
    "billing_provider",
    "billing_subscription_sync",
    "billing_subscriptions_sync",
    "billing_user_create",
    "billing_user_delete",
    "customer_ref",
    "tenant_prices",
    "usage_push_identifier",
    "usage_push_run",
    "usage_push_targets",
    "usage_pushes_retry",
    "webhook_event_process",
    "webhook_event_receive",
    "webhook_events_reprocess",
]
