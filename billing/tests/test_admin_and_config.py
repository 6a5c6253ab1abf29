"""The operator's admin pages and actions, and how the provider is chosen."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from billing.models import BillingCustomer, UsagePush, WebhookEvent
from billing.providers import default_config
from billing.providers.stripe import StripeBillingProvider
from billing.signatures import sign
from billing.tests.conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_superuser("operator", "op@example.com", "a-long-password-123")
    client.force_login(user)
    return client


@pytest.fixture
def stripe_customer(stripe_billing, make_tenant, onboard):
    stripe_billing.create_meter("api_calls")
    price = stripe_billing.create_price("api_calls")
    tenant = make_tenant(prices=[{"id": price["id"], "metricName": "api_calls"}])
    onboard(tenant)
    return BillingCustomer.objects.get(tenant=tenant)


def failed_push(customer) -> UsagePush:
    from datetime import timedelta

    from django.utils import timezone

    window = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    return UsagePush.objects.create(
        customer=customer,
        meter_api_name="api_calls",
        window_start=window,
        window_end=window + timedelta(hours=1),
        identifier="sbt-admin-retry-r0",
        value=5,
        window_total=5,
        status=UsagePush.Status.FAILED,
        error="Stripe could not record usage now",
        attempts=4,
    )


def test_customer_pages_link_to_the_provider(operator, stripe_customer):
    page = operator.get("/admin/billing/billingcustomer/")
    assert page.status_code == 200
    assert f"https://dashboard.stripe.com/customers/{stripe_customer.provider_customer_id}" in page.content.decode()
    assert operator.get(f"/admin/billing/billingcustomer/{stripe_customer.pk}/change/").status_code == 200


def test_retry_action_resends_a_failed_push(operator, stripe_customer, stripe_billing):
    push = failed_push(stripe_customer)
    page = operator.get("/admin/billing/usagepush/")
    assert page.status_code == 200
    assert "failed pushes: 1" in page.content.decode()
    response = operator.post(
        "/admin/billing/usagepush/", {"action": "retry", "_selected_action": [push.pk]}, follow=True
    )
    assert "Retried: 1 sent, 0 failed." in response.content.decode()
    push.refresh_from_db()
    assert (push.status, push.attempts) == (UsagePush.Status.SENT, 5)
    assert list(stripe_billing.meter_events) == ["sbt-admin-retry-r0"]


def test_reprocess_action_and_webhook_pages(operator, stripe_customer):
    body = json.dumps(
        {"id": "evt_admin", "type": "invoice.paid", "created": 1, "data": {"object": {"object": "invoice"}}}
    ).encode()
    event = WebhookEvent.objects.create(
        provider="stripe",
        provider_event_id="evt_admin",
        event_type="invoice.paid",
        body=body.decode(),
        payload=json.loads(body),
        status=WebhookEvent.Status.FAILED,
    )
    assert operator.get("/admin/billing/webhookevent/").status_code == 200
    assert operator.get(f"/admin/billing/webhookevent/{event.pk}/change/").status_code == 200
    response = operator.post(
        "/admin/billing/webhookevent/", {"action": "reprocess", "_selected_action": [event.pk]}, follow=True
    )
    assert "Reprocessed 1 event(s); 0 failed." in response.content.decode()
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.IGNORED, "an invoice without a customer needs no action"


def test_the_environment_selects_the_provider():
    assert default_config({}) == {
        "BACKEND": "billing.providers.local.LocalBillingProvider",
        "OPTIONS": {"webhook_secrets": []},
    }
    config = default_config(
        {
            "STRIPE_API_KEY": "sk_test_x",
            "BILLING_WEBHOOK_SECRETS": "whsec_new, whsec_old",
            "STRIPE_API_BASE": "http://s",
        }
    )
    assert config == {
        "BACKEND": "billing.providers.stripe.StripeBillingProvider",
        "OPTIONS": {"api_key": "sk_test_x", "webhook_secrets": ["whsec_new", "whsec_old"], "api_base": "http://s"},
    }


def test_stripe_without_an_api_key_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="api_key"):
        StripeBillingProvider(webhook_secrets=["whsec_x"])


def test_without_a_webhook_secret_every_webhook_is_refused(settings, client):
    settings.SBT_PROVIDERS = {"billing": {"BACKEND": "billing.providers.local.LocalBillingProvider"}}
    body = b'{"id": "evt_x", "type": "invoice.paid"}'
    response = client.post(
        "/api/v1/billing/stripe/webhook",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, WEBHOOK_SECRET),
    )
    assert response.status_code == 400
    assert "No webhook signing secret is configured" in response.json()["message"]
    assert not WebhookEvent.objects.exists()
