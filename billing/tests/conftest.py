"""Fixtures of the billing tests: a fake Stripe on loopback and the provider pointed at it."""

import pytest
from django.db import transaction

from billing.tests.fake_stripe import FakeStripe
from events.services import event_publish
from tenants.models import Tenant
from tenants.tests.factories import TenantFactory

WEBHOOK_SECRET = "whsec_test_current"
OLD_WEBHOOK_SECRET = "whsec_test_previous"


@pytest.fixture
def fake_stripe():
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def stripe_billing(fake_stripe, settings):
    """The Stripe provider, talking to the fake, with two webhook secrets (a rotation)."""
    settings.SBT_PROVIDERS = {
        "billing": {
            "BACKEND": "billing.providers.stripe.StripeBillingProvider",
            "OPTIONS": {
                "api_key": fake_stripe.api_key,
                "api_base": fake_stripe.api_base,
                "webhook_secrets": [WEBHOOK_SECRET, OLD_WEBHOOK_SECRET],
                "timeout": 5,
                "retry_backoff_seconds": 0.001,
            },
        }
    }
    return fake_stripe


@pytest.fixture
def local_billing(settings):
    settings.SBT_PROVIDERS = {
        "billing": {
            "BACKEND": "billing.providers.local.LocalBillingProvider",
            "OPTIONS": {"webhook_secrets": [WEBHOOK_SECRET]},
        }
    }


@pytest.fixture
def publish(django_capture_on_commit_callbacks):
    """``publish(detail_type, detail)``: publish an event and run its subscribers, as after a commit."""

    def run(detail_type: str, detail: dict):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            return event_publish(detail_type=detail_type, detail=detail)

    return run


@pytest.fixture
def make_tenant(db):
    def make(name: str = "acme", prices: list | None = None, email: str | None = None) -> Tenant:
        return TenantFactory(name=name, email=email or f"billing@{name}.example", prices=prices or [])

    return make


@pytest.fixture
def onboard(publish):
    """``onboard(tenant)``: publish the onboardingRequest billing subscribes to, for a tenant made
    by ``make_tenant`` (tenants.tests.factories.tenant_registration_onboard onboards one through
    the service, with a registration)."""

    def run(tenant: Tenant):
        return publish(
            "onboardingRequest",
            {"tenantId": str(tenant.pk), "tenantName": tenant.name, "email": tenant.email, "prices": tenant.prices},
        )

    return run
