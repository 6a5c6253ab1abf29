"""The Stripe provider against Stripe's API itself: the fake by default, real Stripe test mode on demand.

These tests look at Stripe only through its API (never at the fake's internals), so the same
tests run against a real test-mode account (docs/billing.md "Testing against Stripe"):

    SBT_TEST_STRIPE_API_KEY=sk_test_… ./sbt test billing/tests/test_stripe_contract.py

Fault injection (lost answers, outages) needs the fake and lives in the other test modules.
"""

import os
import secrets
from datetime import timedelta
from decimal import Decimal

import pytest
import stripe
from django.utils import timezone

from billing.interface import CustomerRef, UsageRecord
from billing.models import BillingCustomer
from billing.services import billing_provider, billing_subscription_sync
from billing.tests.fake_stripe import FakeStripe
from sbt_site.errors import ProviderError

pytestmark = pytest.mark.django_db

LIVE_KEY = os.environ.get("SBT_TEST_STRIPE_API_KEY", "")


class StripeAccount:
    """What a test needs from a Stripe account, through the public API; removes what it created."""

    def __init__(self, *, api_key: str, api_base: str | None):
        base_addresses = {"api": api_base} if api_base else {}
        self.client = stripe.StripeClient(api_key, base_addresses=base_addresses, max_network_retries=0)
        self.api_key, self.api_base = api_key, api_base
        self.meters: list[str] = []
        self.emails: list[str] = []

    def create_meter(self, event_name: str) -> dict:
        meter = self.client.v1.billing.meters.create(
            {"display_name": event_name, "event_name": event_name, "default_aggregation": {"formula": "sum"}}
        ).to_dict()
        self.meters.append(meter["id"])
        return meter

    def create_price(self, meter: dict) -> dict:
        return self.client.v1.prices.create(
            {
                "currency": "usd",
                "unit_amount": 1,
                "product_data": {"name": meter["event_name"]},
                "recurring": {"interval": "month", "usage_type": "metered", "meter": meter["id"]},
            }
        ).to_dict()

    def customers_with_email(self, email: str) -> list[dict]:
        self.emails.append(email)
        return [c.to_dict() for c in self.client.v1.customers.list({"email": email, "limit": 100}).data]

    def subscriptions_of(self, customer_id: str) -> list[dict]:
        listing = self.client.v1.subscriptions.list({"customer": customer_id, "status": "all", "limit": 100})
        return [s.to_dict() for s in listing.data]

    def cleanup(self) -> None:
        for email in self.emails:
            for customer in self.client.v1.customers.list({"email": email, "limit": 100}).data:
                self.client.v1.customers.delete(customer.id)
        for meter_id in self.meters:
            self.client.v1.billing.meters.deactivate(meter_id)


@pytest.fixture
def account(settings):
    if LIVE_KEY and not LIVE_KEY.startswith(("sk_test_", "rk_test_")):
        raise RuntimeError("SBT_TEST_STRIPE_API_KEY must be a test-mode key (sk_test_… or rk_test_…)")
    fake = None if LIVE_KEY else FakeStripe().start()
    account = StripeAccount(api_key=LIVE_KEY or fake.api_key, api_base=None if LIVE_KEY else fake.api_base)
    settings.SBT_PROVIDERS = {
        "billing": {
            "BACKEND": "billing.providers.stripe.StripeBillingProvider",
            "OPTIONS": {"api_key": account.api_key, "api_base": account.api_base, "retry_backoff_seconds": 0.05},
        }
    }
    yield account
    account.cleanup()
    if fake is not None:
        fake.stop()


@pytest.fixture
def unique():
    return secrets.token_hex(4)


@pytest.fixture
def priced_tenant(account, make_tenant, unique):
    meter = account.create_meter(f"sbt_test_{unique}")
    price = account.create_price(meter)
    tenant = make_tenant(name=f"contract-{unique}", prices=[{"id": price["id"], "metricName": meter["event_name"]}])
    return tenant, meter


def test_onboarding_twice_and_offboarding_against_stripe(account, priced_tenant, onboard, publish):
    tenant, _ = priced_tenant
    onboard(tenant)
    onboard(tenant)

    customers = account.customers_with_email(tenant.email)
    assert len(customers) == 1
    assert customers[0]["metadata"]["tenant_id"] == str(tenant.pk)
    subscriptions = account.subscriptions_of(customers[0]["id"])
    assert [s["status"] for s in subscriptions] == ["active"]

    publish("offboardingRequest", {"tenantId": str(tenant.pk)})
    publish("offboardingRequest", {"tenantId": str(tenant.pk)})
    assert [s["status"] for s in account.subscriptions_of(customers[0]["id"])] == ["canceled"]
    assert BillingCustomer.objects.get(tenant=tenant).status == BillingCustomer.Status.CANCELED


def test_subscription_items_follow_changed_prices_against_stripe(account, priced_tenant, onboard, unique):
    tenant, _ = priced_tenant
    onboard(tenant)
    other_meter = account.create_meter(f"sbt_test_{unique}_b")
    other = account.create_price(other_meter)
    tenant.prices = [{"id": other["id"], "metricName": other_meter["event_name"]}]
    tenant.save()

    billing_subscription_sync(tenant_id=tenant.pk)
    billing_subscription_sync(tenant_id=tenant.pk)

    customer = BillingCustomer.objects.get(tenant=tenant)
    (subscription,) = account.subscriptions_of(customer.provider_customer_id)
    assert subscription["id"] == customer.provider_subscription_id
    assert [item["price"]["id"] for item in subscription["items"]["data"]] == [other["id"]]


def test_stripe_refuses_a_second_copy_of_a_meter_event(account, priced_tenant, onboard, unique):
    tenant, meter = priced_tenant
    onboard(tenant)
    ref = CustomerRef(customer_id=BillingCustomer.objects.get(tenant=tenant).provider_customer_id)
    record = UsageRecord(
        f"sbt-contract-{unique}", ref, meter["event_name"], timezone.now() - timedelta(hours=2), Decimal(3)
    )
    first = billing_provider().put_usage(record)
    second = billing_provider().put_usage(record)
    assert (first.already_recorded, second.already_recorded) == (False, True)


def test_stripe_refuses_usage_outside_its_timestamp_window(account, priced_tenant, onboard, unique):
    tenant, meter = priced_tenant
    onboard(tenant)
    ref = CustomerRef(customer_id=BillingCustomer.objects.get(tenant=tenant).provider_customer_id)
    old = UsageRecord(f"sbt-old-{unique}", ref, meter["event_name"], timezone.now() - timedelta(days=36), Decimal(1))
    with pytest.raises(ProviderError) as error:
        billing_provider().put_usage(old)
    assert error.value.retryable is False
    assert error.value.message.startswith("Stripe refused to record usage")


def test_a_bad_api_key_is_a_permanent_error(account, settings, make_tenant):
    settings.SBT_PROVIDERS = {
        "billing": {
            "BACKEND": "billing.providers.stripe.StripeBillingProvider",
            "OPTIONS": {"api_key": "sk_test_wrong", "api_base": account.api_base},
        }
    }
    from billing.services import billing_customer_create

    with pytest.raises(ProviderError) as error:
        billing_customer_create(tenant_id=make_tenant(name="badkey").pk)
    assert error.value.retryable is False
    assert "Invalid API Key" in error.value.message
