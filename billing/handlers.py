"""Event-bus subscribers of the billing app (thin: they call services, which are idempotent)."""

from billing import services
from events.registry import subscriber
from events.selectors import event_tenant_id


def _user_name(detail: dict) -> str:
    return detail.get("userName") or detail.get("username") or ""


@subscriber("onboardingRequest", name="billing.handlers.create_billing_customer")
def create_billing_customer(event):
    services.billing_customer_create(tenant_id=event_tenant_id(event, required=True))


@subscriber("offboardingRequest", name="billing.handlers.delete_billing_customer")
def delete_billing_customer(event):
    services.billing_customer_delete(tenant_id=event_tenant_id(event, required=True))


@subscriber("tenantUserCreated", name="billing.handlers.create_billing_user")
def create_billing_user(event):
    detail = event.detail
    services.billing_user_create(
        tenant_id=event_tenant_id(event, required=True), user_name=_user_name(detail), email=detail.get("email") or ""
    )


@subscriber("tenantUserDeleted", name="billing.handlers.delete_billing_user")
def delete_billing_user(event):
    services.billing_user_delete(tenant_id=event_tenant_id(event, required=True), user_name=_user_name(event.detail))
