"""Customers and users follow the tenant lifecycle events, at the provider, exactly once."""

import pytest

from billing.models import BillingCustomer, BillingUser
from events.models import HandlerRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def priced_tenant(stripe_billing, make_tenant):
    stripe_billing.create_meter("api_calls")
    stripe_billing.create_meter("storage_gb")
    calls = stripe_billing.create_price("api_calls")
    storage = stripe_billing.create_price("storage_gb")
    return make_tenant(
        prices=[{"id": calls["id"], "metricName": "api_calls"}, {"id": storage["id"], "metricName": "storage_gb"}]
    )


def posts(fake, path, method="POST"):
    return sum(1 for request_method, request_path in fake.requests if request_method == method and request_path == path)


def test_onboarding_creates_one_customer_and_subscription(stripe_billing, priced_tenant, onboard):
    onboard(priced_tenant)

    assert len(stripe_billing.customers) == 1
    stripe_customer = next(iter(stripe_billing.customers.values()))
    assert stripe_customer["metadata"] == {"tenant_id": str(priced_tenant.pk)}
    assert stripe_customer["email"] == priced_tenant.email
    assert len(stripe_billing.subscriptions) == 1
    subscription = next(iter(stripe_billing.subscriptions.values()))
    assert subscription["customer"] == stripe_customer["id"]
    assert sorted(item["price"]["id"] for item in subscription["items"]["data"]) == sorted(
        price["id"] for price in priced_tenant.prices
    )
    customer = BillingCustomer.objects.get(tenant=priced_tenant)
    assert (customer.provider, customer.status) == ("stripe", BillingCustomer.Status.ACTIVE)
    assert customer.provider_customer_id == stripe_customer["id"]
    assert customer.provider_subscription_id == subscription["id"]
    assert customer.subscription_status == "active"


def test_repeated_onboarding_events_create_nothing_twice(stripe_billing, priced_tenant, onboard):
    for _ in range(3):
        onboard(priced_tenant)
    assert len(stripe_billing.customers) == 1
    assert len(stripe_billing.subscriptions) == 1
    assert posts(stripe_billing, "/v1/customers") == 1
    assert BillingCustomer.objects.count() == 1


def test_lost_answers_and_stripe_errors_are_retried_without_duplicates(stripe_billing, priced_tenant, onboard):
    stripe_billing.drop_next(1)  # the customer is created, its answer lost
    onboard(priced_tenant)
    assert posts(stripe_billing, "/v1/customers") == 2, "the lost answer was retried"
    assert len(stripe_billing.customers) == 1, "the retry replayed the first answer (idempotency key)"
    assert len(stripe_billing.subscriptions) == 1
    assert BillingCustomer.objects.get().status == BillingCustomer.Status.ACTIVE


def test_a_stripe_outage_fails_the_handler_which_is_retried_later(stripe_billing, priced_tenant, onboard):
    stripe_billing.fail_next(100)
    event = onboard(priced_tenant)
    run = HandlerRun.objects.get(event=event, handler="billing.handlers.create_billing_customer")
    assert run.status == HandlerRun.Status.FAILED
    # The lookup before the creation (the customer may exist from an earlier attempt) fails first.
    assert "Stripe could not search customers now" in run.last_error
    assert not BillingCustomer.objects.filter(status=BillingCustomer.Status.ACTIVE).exists()
    assert posts(stripe_billing, "/v1/customers/search", "GET") == 4, (
        "max_attempts tries, then the event bus takes over"
    )
    assert posts(stripe_billing, "/v1/customers") == 0

    stripe_billing.fail_next(0)
    from events.services import handler_run_execute

    handler_run_execute(event=event, handler_name=run.handler)
    assert BillingCustomer.objects.get().status == BillingCustomer.Status.ACTIVE
    assert len(stripe_billing.customers) == 1


def test_a_permanent_stripe_error_is_not_retried(stripe_billing, make_tenant, onboard):
    tenant = make_tenant(prices=[{"id": "price_does_not_exist", "metricName": "api_calls"}])
    event = onboard(tenant)
    run = HandlerRun.objects.get(event=event, handler="billing.handlers.create_billing_customer")
    assert run.status == HandlerRun.Status.FAILED
    assert "Stripe refused to create a subscription: No such price" in run.last_error
    assert posts(stripe_billing, "/v1/subscriptions") == 1


def test_offboarding_cancels_the_subscription_once(stripe_billing, priced_tenant, onboard, publish):
    onboard(priced_tenant)
    for _ in range(2):
        publish("offboardingRequest", {"tenantId": str(priced_tenant.pk)})
    subscription = next(iter(stripe_billing.subscriptions.values()))
    assert subscription["status"] == "canceled"
    deletes = [path for method, path in stripe_billing.requests if method == "DELETE"]
    assert deletes == [f"/v1/subscriptions/{subscription['id']}"]
    customer = BillingCustomer.objects.get()
    assert (customer.status, customer.subscription_status) == (BillingCustomer.Status.CANCELED, "canceled")
    assert len(stripe_billing.customers) == 1, "the Stripe customer is kept for its invoices"


def test_offboarding_survives_a_lost_cancel_answer(stripe_billing, priced_tenant, onboard, publish):
    onboard(priced_tenant)
    stripe_billing.drop_next(1)
    publish("offboardingRequest", {"tenantId": str(priced_tenant.pk)})
    assert BillingCustomer.objects.get().status == BillingCustomer.Status.CANCELED
    assert next(iter(stripe_billing.subscriptions.values()))["status"] == "canceled"


def test_tenant_without_prices_gets_a_customer_and_no_subscription(stripe_billing, make_tenant, onboard):
    onboard(make_tenant(name="free"))
    assert len(stripe_billing.customers) == 1
    assert stripe_billing.subscriptions == {}
    assert BillingCustomer.objects.get().provider_subscription_id == ""


def test_prices_the_wire_would_refuse_are_skipped_not_billed(stripe_billing, make_tenant, onboard, caplog):
    # Only a write that bypassed tenants/wire.py can store these; they must not break onboarding.
    stripe_billing.create_meter("api_calls")
    calls = stripe_billing.create_price("api_calls")
    good = {"id": calls["id"], "metricName": "api_calls", "note": "other keys are allowed"}
    tenant = make_tenant(prices=[good, {"id": "price_without_meter"}, {"metricName": "api_calls"}, "price_x", None])
    onboard(tenant)
    subscription = next(iter(stripe_billing.subscriptions.values()))
    assert [item["price"]["id"] for item in subscription["items"]["data"]] == [calls["id"]]
    customer = BillingCustomer.objects.get()
    assert customer.billed_prices == [{"id": calls["id"], "metricName": "api_calls"}]
    assert caplog.text.count("malformed price, skipped") == 4


def test_local_provider_is_the_default(make_tenant, onboard, publish):
    tenant = make_tenant(prices=[{"id": "price_local", "metricName": "api_calls"}])
    onboard(tenant)
    customer = BillingCustomer.objects.get()
    assert customer.provider == "local"
    assert customer.provider_customer_id == f"local_cus_{tenant.pk.hex}"
    assert customer.status == BillingCustomer.Status.ACTIVE
    publish("offboardingRequest", {"tenantId": str(tenant.pk)})
    customer.refresh_from_db()
    assert (customer.status, customer.subscription_status) == (BillingCustomer.Status.CANCELED, "canceled")


def test_tenant_users_are_recorded_once(local_billing, make_tenant, onboard, publish):
    tenant = make_tenant()
    onboard(tenant)
    for _ in range(2):
        publish("tenantUserCreated", {"tenantId": str(tenant.pk), "userName": "ann", "email": "ann@acme.example"})
    user = BillingUser.objects.get()
    assert (user.user_name, user.email, user.status) == ("ann", "ann@acme.example", BillingUser.Status.ACTIVE)
    assert user.provider_user_id == f"local_user_{tenant.pk.hex}_ann"
    publish("tenantUserDeleted", {"tenantId": str(tenant.pk), "userName": "ann"})
    user.refresh_from_db()
    assert user.status == BillingUser.Status.DELETED


def test_a_user_event_before_the_customer_exists_is_retried(local_billing, make_tenant, onboard, publish):
    tenant = make_tenant()
    event = publish("tenantUserCreated", {"tenantId": str(tenant.pk), "userName": "ann"})
    run = HandlerRun.objects.get(event=event)
    assert run.status == HandlerRun.Status.FAILED
    assert "No billing customer yet" in run.last_error
    onboard(tenant)
    from events.services import handler_run_execute

    assert handler_run_execute(event=event, handler_name=run.handler).status == HandlerRun.Status.SUCCEEDED
    assert BillingUser.objects.get().user_name == "ann"


def test_rate_limits_are_retried_with_backoff(stripe_billing, priced_tenant, onboard):
    stripe_billing.fail_next(2, status=429)
    onboard(priced_tenant)
    assert posts(stripe_billing, "/v1/customers/search", "GET") == 3
    assert posts(stripe_billing, "/v1/customers") == 1
    assert BillingCustomer.objects.get().status == BillingCustomer.Status.ACTIVE
    assert len(stripe_billing.customers) == 1
