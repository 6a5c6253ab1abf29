"""Offboarding bills the last usage; customers survive forgotten idempotency keys; prices follow tenants."""

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing.models import BillingCustomer, LocalBillingRecord, UsagePush
from billing.services import billing_subscription_sync, usage_push_run
from billing.tests.test_push import METER, hour_start, ingest
from events.models import HandlerRun
from events.services import handler_run_execute
from metering.interface import MeterSpec
from metering.services import meter_create, usage_events_ingest
from sbt_site.errors import Conflict, InvalidInput

pytestmark = pytest.mark.django_db

OFFBOARD = "billing.handlers.delete_billing_customer"
ONBOARD = "billing.handlers.create_billing_customer"


@pytest.fixture
def metered(stripe_billing):
    stripe_billing.create_meter(METER)
    meter_create(spec=MeterSpec(api_name=METER, label="API calls", aggregation="SUM"))
    return stripe_billing.create_price(METER)


@pytest.fixture
def billed_tenant(metered, make_tenant, onboard):
    tenant = make_tenant(prices=[{"id": metered["id"], "metricName": METER}])
    onboard(tenant)
    return tenant


def ingest_now(tenant, value, event_id="now-0"):
    """Usage in the hour in progress (its timestamp defaults to now)."""
    usage_events_ingest(
        events=[{"eventId": event_id, "meterApiName": METER, "tenantId": str(tenant.pk), "meterValue": value}]
    )


def offboard(publish, tenant):
    # What tenant_registration_delete does in the same transaction: metering refuses the tenant's usage from now on.
    tenant.active = False
    tenant.save()
    return publish("offboardingRequest", {"tenantId": str(tenant.pk)})


def customer_id(tenant) -> str:
    return BillingCustomer.objects.get(tenant=tenant).provider_customer_id


def writes(fake) -> list[str]:
    return [f"{method} {path}" for method, path in fake.requests if method != "GET"]


# --- 1. offboarding pushes the last usage before it cancels -----------------------------------------


def test_offboarding_pushes_the_remaining_usage_then_cancels(stripe_billing, billed_tenant, publish):
    ingest(billed_tenant, 5, [4])
    usage_push_run()  # the scheduled push billed hour -5 already
    ingest(billed_tenant, 2, [10, 5])
    ingest(billed_tenant, 1, [3])
    ingest_now(billed_tenant, 7)  # the hour in progress
    stripe_billing.requests.clear()

    event = offboard(publish, billed_tenant)

    assert HandlerRun.objects.get(event=event, handler=OFFBOARD).status == HandlerRun.Status.SUCCEEDED
    subscription = next(iter(stripe_billing.subscriptions.values()))
    assert writes(stripe_billing) == [
        "POST /v1/billing/meter_events",
        "POST /v1/billing/meter_events",
        "POST /v1/billing/meter_events",
        f"DELETE /v1/subscriptions/{subscription['id']}",
    ], "the windows not yet billed (hours -2, -1 and the current one), then the cancellation"
    assert subscription["status"] == "canceled"
    assert sum(stripe_billing.totals(METER, customer_id(billed_tenant)).values()) == Decimal(29)
    (invoice,) = stripe_billing.invoices
    assert invoice["usage"] == {METER: Decimal(29)}, "the final invoice holds every unit, the last hour's too"
    customer = BillingCustomer.objects.get(tenant=billed_tenant)
    assert (customer.status, customer.subscription_status) == (BillingCustomer.Status.CANCELED, "canceled")
    current = UsagePush.objects.get(window_start=hour_start(timezone.now()))
    assert (current.value, current.status) == (Decimal(7), UsagePush.Status.SENT)


def test_usage_after_offboarding_is_refused_and_nothing_more_is_pushed(stripe_billing, billed_tenant, publish):
    ingest(billed_tenant, 1, [3])
    offboard(publish, billed_tenant)
    with pytest.raises(InvalidInput) as refused:
        ingest_now(billed_tenant, 100, event_id="late")
    assert "is offboarded" in refused.value.detail[0]["msg"]
    requests = len(stripe_billing.requests)
    usage_push_run()
    offboard(publish, billed_tenant)
    assert len(stripe_billing.requests) == requests


def test_a_failed_final_push_keeps_the_subscription_until_the_retry(stripe_billing, billed_tenant, publish):
    ingest(billed_tenant, 1, [3])
    ingest_now(billed_tenant, 2)
    stripe_billing.fail_next(100)

    event = offboard(publish, billed_tenant)

    run = HandlerRun.objects.get(event=event, handler=OFFBOARD)
    assert run.status == HandlerRun.Status.FAILED
    assert "could not be pushed" in run.last_error and "subscription stays active" in run.last_error
    assert next(iter(stripe_billing.subscriptions.values()))["status"] == "active"
    assert stripe_billing.invoices == []
    assert BillingCustomer.objects.get(tenant=billed_tenant).status == BillingCustomer.Status.ACTIVE

    stripe_billing.fail_next(0)
    assert handler_run_execute(event=event, handler_name=OFFBOARD).status == HandlerRun.Status.SUCCEEDED
    assert stripe_billing.invoices[0]["usage"] == {METER: Decimal(5)}
    assert len(stripe_billing.live_events(METER)) == 2, "one meter event per window, however often it was tried"


def test_offboarding_with_the_local_provider_records_the_last_usage(local_billing, make_tenant, onboard, publish):
    meter_create(spec=MeterSpec(api_name=METER, label="API calls", aggregation="SUM"))
    tenant = make_tenant(prices=[{"id": "price_local", "metricName": METER}])
    onboard(tenant)
    ingest(tenant, 3, [1])
    ingest_now(tenant, 4)
    offboard(publish, tenant)
    assert sum(record.value for record in LocalBillingRecord.objects.all()) == Decimal(5)
    assert BillingCustomer.objects.get().status == BillingCustomer.Status.CANCELED


# --- 2. one customer per tenant, even after Stripe forgot the idempotency key -----------------------


def test_a_retry_after_the_key_was_forgotten_finds_the_customer(stripe_billing, metered, make_tenant, onboard):
    tenant = make_tenant(prices=[{"id": metered["id"], "metricName": METER}])
    stripe_billing.drop_next(4, path="/v1/customers")  # created at Stripe; every answer lost
    event = onboard(tenant)
    run = HandlerRun.objects.get(event=event, handler=ONBOARD)
    assert run.status == HandlerRun.Status.FAILED
    assert len(stripe_billing.customers) == 1

    stripe_billing.clock_offset += 25 * 3600  # a day later: the key is gone, the search has caught up
    stripe_billing.forget_idempotency_keys()
    assert handler_run_execute(event=event, handler_name=ONBOARD).status == HandlerRun.Status.SUCCEEDED

    assert len(stripe_billing.customers) == 1
    assert len(stripe_billing.subscriptions) == 1
    customer = BillingCustomer.objects.get(tenant=tenant)
    assert customer.provider_customer_id == next(iter(stripe_billing.customers))
    assert customer.status == BillingCustomer.Status.ACTIVE


def test_a_search_that_lags_behind_is_covered_by_the_idempotency_key(stripe_billing, metered, make_tenant, onboard):
    stripe_billing.search_lag_seconds = 60  # the search does not see a customer created a moment ago
    tenant = make_tenant(prices=[{"id": metered["id"], "metricName": METER}])
    stripe_billing.drop_next(4, path="/v1/customers")
    event = onboard(tenant)
    assert handler_run_execute(event=event, handler_name=ONBOARD).status == HandlerRun.Status.SUCCEEDED
    assert len(stripe_billing.customers) == 1


def test_a_lost_subscription_is_found_after_the_key_was_forgotten(stripe_billing, metered, make_tenant, onboard):
    tenant = make_tenant(prices=[{"id": metered["id"], "metricName": METER}])
    stripe_billing.drop_next(4, path="/v1/subscriptions")
    event = onboard(tenant)
    assert len(stripe_billing.subscriptions) == 1
    stripe_billing.clock_offset += 25 * 3600
    stripe_billing.forget_idempotency_keys()

    assert handler_run_execute(event=event, handler_name=ONBOARD).status == HandlerRun.Status.SUCCEEDED

    assert (len(stripe_billing.customers), len(stripe_billing.subscriptions)) == (1, 1)
    customer = BillingCustomer.objects.get(tenant=tenant)
    assert customer.provider_subscription_id == next(iter(stripe_billing.subscriptions))


def test_the_recorded_customer_id_is_used_first(stripe_billing, metered, make_tenant):
    tenant = make_tenant(prices=[{"id": metered["id"], "metricName": METER}])
    existing = stripe_billing.create_customer_for_tests(tenant_id="someone-else")
    BillingCustomer.objects.create(tenant=tenant, provider="stripe", provider_customer_id=existing["id"])
    from billing.services import billing_customer_create

    billing_customer_create(tenant_id=tenant.pk)

    assert len(stripe_billing.customers) == 1
    assert next(iter(stripe_billing.subscriptions.values()))["customer"] == existing["id"]
    assert not any(path == "/v1/customers/search" for _, path in stripe_billing.requests)


# --- 3. the subscription follows the tenant's prices --------------------------------------------------


def item_prices(fake) -> list[str]:
    subscription = next(iter(fake.subscriptions.values()))
    return sorted(item["price"]["id"] for item in subscription["items"]["data"])


def test_changed_prices_are_synced_to_the_subscription(stripe_billing, metered, billed_tenant):
    stripe_billing.create_meter("storage_gb")
    storage = stripe_billing.create_price("storage_gb")
    billed_tenant.prices = [{"id": storage["id"], "metricName": "storage_gb"}]
    billed_tenant.save()

    call_command("billing_subscription_sync", "--tenant", str(billed_tenant.pk))

    assert item_prices(stripe_billing) == [storage["id"]]
    assert len(stripe_billing.subscriptions) == 1
    updates = len(writes(stripe_billing))
    call_command("billing_subscription_sync")  # every active customer; nothing left to change
    assert len(writes(stripe_billing)) == updates

    billed_tenant.prices = [
        {"id": storage["id"], "metricName": "storage_gb"},
        {"id": metered["id"], "metricName": METER},
    ]
    billed_tenant.save()
    billing_subscription_sync(tenant_id=billed_tenant.pk)
    assert item_prices(stripe_billing) == sorted([storage["id"], metered["id"]])


def test_a_tenant_onboarded_without_prices_gets_its_subscription(stripe_billing, metered, make_tenant, onboard):
    tenant = make_tenant(name="later")
    onboard(tenant)
    assert stripe_billing.subscriptions == {}
    tenant.prices = [{"id": metered["id"], "metricName": METER}]
    tenant.save()

    customer = billing_subscription_sync(tenant_id=tenant.pk)

    assert item_prices(stripe_billing) == [metered["id"]]
    assert customer.provider_subscription_id == next(iter(stripe_billing.subscriptions))
    assert customer.subscription_status == "active"


def test_removing_every_price_is_refused_and_the_command_says_so(stripe_billing, billed_tenant):
    billed_tenant.prices = []
    billed_tenant.save()
    with pytest.raises(Conflict, match="needs at least one"):
        billing_subscription_sync(tenant_id=billed_tenant.pk)
    with pytest.raises(CommandError, match="1 of 1 tenant"):
        call_command("billing_subscription_sync")
    assert len(item_prices(stripe_billing)) == 1


def test_offboarded_tenants_are_not_synced(stripe_billing, billed_tenant, publish):
    offboard(publish, billed_tenant)
    with pytest.raises(Conflict, match="offboarded"):
        billing_subscription_sync(tenant_id=billed_tenant.pk)


def test_the_admin_action_syncs_the_selected_customers(stripe_billing, metered, billed_tenant, admin_client):
    stripe_billing.create_meter("storage_gb")
    storage = stripe_billing.create_price("storage_gb")
    billed_tenant.prices = [{"id": storage["id"], "metricName": "storage_gb"}]
    billed_tenant.save()
    customer = BillingCustomer.objects.get(tenant=billed_tenant)

    response = admin_client.post(
        "/admin/billing/billingcustomer/",
        {"action": "sync_subscription", "_selected_action": [customer.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "1 of 1 subscription(s) in sync" in response.content.decode()
    assert item_prices(stripe_billing) == [storage["id"]]


def test_sync_survives_a_lost_answer(stripe_billing, billed_tenant):
    stripe_billing.create_meter("storage_gb")
    storage = stripe_billing.create_price("storage_gb")
    billed_tenant.prices = [{"id": storage["id"], "metricName": "storage_gb"}]
    billed_tenant.save()
    subscription_id = next(iter(stripe_billing.subscriptions))
    stripe_billing.drop_next(1, path=f"/v1/subscriptions/{subscription_id}")

    billing_subscription_sync(tenant_id=billed_tenant.pk)

    assert item_prices(stripe_billing) == [storage["id"]]


def test_a_meter_losing_its_price_gets_its_last_usage_pushed_first(stripe_billing, billed_tenant):
    stripe_billing.create_meter("storage_gb")
    storage = stripe_billing.create_price("storage_gb")
    ingest(billed_tenant, 2, [6])
    ingest_now(billed_tenant, 4)
    billed_tenant.prices = [{"id": storage["id"], "metricName": "storage_gb"}]
    billed_tenant.save()
    stripe_billing.requests.clear()

    customer = billing_subscription_sync(tenant_id=billed_tenant.pk)

    subscription_id = customer.provider_subscription_id
    assert writes(stripe_billing) == [
        "POST /v1/billing/meter_events",
        "POST /v1/billing/meter_events",
        f"POST /v1/subscriptions/{subscription_id}",
    ], "api_calls' last usage (hour -2 and the hour in progress), then the item is removed"
    assert sum(stripe_billing.totals(METER, customer.provider_customer_id).values()) == Decimal(10)
    assert customer.billed_prices == [{"id": storage["id"], "metricName": "storage_gb"}]

    stripe_billing.requests.clear()
    ingest_now(billed_tenant, 50, event_id="unbilled")
    billing_subscription_sync(tenant_id=billed_tenant.pk)
    usage_push_run()
    assert writes(stripe_billing) == [], "api_calls is no longer billed, storage_gb has no usage"
