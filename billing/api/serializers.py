"""Billing objects as the API shows them (camelCase, like the rest of the contract)."""

from billing.models import BillingCustomer, UsagePush


def _number(value) -> str:
    return f"{value.normalize():f}"


def customer_data(customer: BillingCustomer) -> dict:
    return {
        "tenantId": str(customer.tenant_id),
        "provider": customer.provider,
        "providerCustomerId": customer.provider_customer_id,
        "providerSubscriptionId": customer.provider_subscription_id,
        "subscriptionStatus": customer.subscription_status,
        "status": customer.status,
        "created": customer.created.isoformat(),
        "modified": customer.modified.isoformat(),
    }


def usage_push_data(push: UsagePush) -> dict:
    return {
        "tenantId": str(push.customer.tenant_id),
        "meterApiName": push.meter_api_name,
        "windowStart": push.window_start.isoformat(),
        "windowEnd": push.window_end.isoformat(),
        "revision": push.revision,
        "identifier": push.identifier,
        "kind": push.kind,
        "value": _number(push.value),
        "windowTotal": _number(push.window_total),
        "status": push.status,
        "attempts": push.attempts,
        "error": push.error,
        "sentAt": push.sent_at.isoformat() if push.sent_at else None,
        "created": push.created.isoformat(),
    }
