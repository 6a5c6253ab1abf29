"""POST /billing/<path>: verified on the raw body, stored once, processed once."""

import json
import random
import time

import pytest
from django.core.management import call_command
from django.test import Client

from billing.interface import WebhookEventKind, WebhookVerificationError
from billing.models import BillingCustomer, WebhookEvent
from billing.services import billing_provider, webhook_events_reprocess
from billing.signatures import sign
from billing.tests.conftest import OLD_WEBHOOK_SECRET, WEBHOOK_SECRET
from events.models import Event

pytestmark = pytest.mark.django_db

URL = "/api/v1/billing/stripe/webhook"


@pytest.fixture
def customer(stripe_billing, make_tenant):
    tenant = make_tenant()
    return BillingCustomer.objects.create(
        tenant=tenant,
        provider="stripe",
        provider_customer_id="cus_webhook",
        provider_subscription_id="sub_webhook",
        subscription_status="active",
        status=BillingCustomer.Status.ACTIVE,
    )


def stripe_event(event_id: str, event_type: str = "invoice.paid", *, created: int | None = None, **obj) -> bytes:
    data = {"object": "invoice", "id": f"in_{event_id}", "customer": "cus_webhook", "amount_paid": 1200}
    data.update(obj)
    event = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": created or int(time.time()),
        "data": {"object": data},
    }
    return json.dumps(event, indent=2).encode()


def deliver(client: Client, body: bytes, signature: str | None = None, *, url: str = URL):
    headers = {}
    if signature is not None:
        headers["HTTP_STRIPE_SIGNATURE"] = signature
    return client.post(url, data=body, content_type="application/json", **headers)


def test_a_signed_invoice_paid_is_stored_processed_and_published(customer):
    body = stripe_event("evt_1")
    response = deliver(Client(), body, sign(body, WEBHOOK_SECRET))
    assert response.status_code == 200, response.content
    assert response.json()["data"] == {"received": True, "eventId": "evt_1", "duplicate": False, "status": "processed"}
    stored = WebhookEvent.objects.get()
    assert stored.body == body.decode(), "the raw body is stored exactly as signed"
    assert (stored.event_type, stored.status, stored.provider) == ("invoice.paid", "processed", "stripe")
    published = Event.objects.get(detail_type="billingSuccess")
    assert published.detail == {
        "tenantId": str(customer.tenant_id),
        "providerEventId": "evt_1",
        "eventType": "invoice.paid",
        "customerId": "cus_webhook",
        "invoiceId": "in_evt_1",
        "amount": 1200,
        "currency": "",
    }


def test_a_thousand_events_delivered_three_times_in_any_order_are_processed_once_each(customer):
    bodies = [stripe_event(f"evt_{n:04d}") for n in range(1000)]
    deliveries = [body for body in bodies for _ in range(3)]
    random.Random(1000).shuffle(deliveries)
    client = Client()
    duplicates = 0
    for body in deliveries:
        response = deliver(client, body, sign(body, WEBHOOK_SECRET))
        assert response.status_code == 200
        duplicates += response.json()["data"]["duplicate"]
    assert duplicates == 2000
    assert WebhookEvent.objects.count() == 1000
    assert WebhookEvent.objects.filter(status=WebhookEvent.Status.PROCESSED, attempts=1).count() == 1000
    assert Event.objects.filter(detail_type="billingSuccess").count() == 1000


def refused(client, body, signature):
    response = deliver(client, body, signature)
    assert response.status_code == 400, response.content
    assert response.json()["statusCode"] == 400
    assert response.json()["code"] == "invalid_webhook"
    return response.json()["message"]


def test_untrustworthy_requests_are_refused_and_nothing_is_stored(customer):
    client = Client()
    body = stripe_event("evt_bad")
    now = int(time.time())
    assert "Missing Stripe-Signature" in refused(client, body, None)
    assert "No signature matches" in refused(client, body, sign(body, "whsec_forged"))
    assert "300 seconds" in refused(client, body, sign(body, WEBHOOK_SECRET, timestamp=now - 301))
    assert "300 seconds" in refused(client, body, sign(body, WEBHOOK_SECRET, timestamp=now + 301))
    reserialised = json.dumps(json.loads(body)).encode()
    assert reserialised != body
    assert "No signature matches" in refused(client, reserialised, sign(body, WEBHOOK_SECRET))
    assert "Malformed" in refused(client, body, "v1=deadbeef")
    assert "Malformed" in refused(client, body, "t=soon,v1=deadbeef")
    assert "not an event" in refused(client, b"[1, 2]", sign(b"[1, 2]", WEBHOOK_SECRET))
    assert "not JSON" in refused(client, b"\xff\xfe", sign(b"\xff\xfe", WEBHOOK_SECRET))
    nul = b'{"id": "evt_nul", "type": "invoice.paid", "note": "a\\u0000b"}'
    assert "NUL" in refused(client, nul, sign(nul, WEBHOOK_SECRET))
    long_id = json.dumps({"id": "evt_" + "x" * 300, "type": "invoice.paid"}).encode()
    assert "too long" in refused(client, long_id, sign(long_id, WEBHOOK_SECRET))
    assert WebhookEvent.objects.count() == 0
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),  # json.loads: RecursionError
        ("[" * 900 + "]" * 900, "nested too deeply"),  # parses, then RecursionError when stored
        ("NaN", "NaN is not valid JSON"),
        ("1e999", "cannot be stored"),  # a float infinity: jsonb refuses it
        ('"\\ud800"', "cannot be stored"),  # a lone surrogate: jsonb refuses it
    ],
)
def test_a_validly_signed_body_that_cannot_be_stored_is_refused_not_a_500(customer, value, reason):
    body = f'{{"id": "evt_odd", "type": "invoice.paid", "created": {int(time.time())}, "data": {{"object": {value}}}}}'
    body = body.encode()
    assert reason in refused(Client(), body, sign(body, WEBHOOK_SECRET))
    assert not WebhookEvent.objects.exists()


def test_signatures_within_the_tolerance_and_during_a_rotation_are_accepted(customer):
    client = Client()
    now = int(time.time())
    body = stripe_event("evt_edge")
    assert deliver(client, body, sign(body, WEBHOOK_SECRET, timestamp=now - 290)).status_code == 200
    body = stripe_event("evt_old_secret")
    assert deliver(client, body, sign(body, OLD_WEBHOOK_SECRET)).status_code == 200
    body = stripe_event("evt_two_signatures")
    header = sign(body, WEBHOOK_SECRET, timestamp=now)
    two = f"t={now},v1={'0' * 64},{header.split(',')[1]}"
    assert deliver(client, body, two).status_code == 200
    assert WebhookEvent.objects.count() == 3


def test_a_wrong_path_is_not_found_and_the_path_is_a_setting(customer, settings):
    body = stripe_event("evt_path")
    assert deliver(Client(), body, sign(body, WEBHOOK_SECRET), url="/api/v1/billing/other").status_code == 404
    settings.SBT = {"BILLING_WEBHOOK_PATH": "hooks/stripe-7f3a"}
    assert deliver(Client(), body, sign(body, WEBHOOK_SECRET)).status_code == 404
    response = deliver(Client(), body, sign(body, WEBHOOK_SECRET), url="/api/v1/billing/hooks/stripe-7f3a")
    assert response.status_code == 200


def test_payment_failure_marks_the_customer_past_due_and_publishes_billing_failure(customer):
    client = Client()
    body = stripe_event("evt_fail", "invoice.payment_failed", amount_due=900, amount_paid=0)
    assert deliver(client, body, sign(body, WEBHOOK_SECRET)).status_code == 200
    customer.refresh_from_db()
    assert customer.status == BillingCustomer.Status.PAST_DUE
    failure = Event.objects.get(detail_type="billingFailure")
    assert (failure.detail["amount"], failure.detail["tenantId"]) == (900, str(customer.tenant_id))


def test_subscription_changes_apply_in_provider_order_whatever_the_delivery_order(customer):
    client = Client()
    now = int(time.time())
    newer = stripe_event(
        "evt_sub_2",
        "customer.subscription.updated",
        created=now,
        object="subscription",
        id="sub_webhook",
        status="active",
    )
    older = stripe_event(
        "evt_sub_1",
        "customer.subscription.updated",
        created=now - 60,
        object="subscription",
        id="sub_webhook",
        status="past_due",
    )
    for body in (newer, older):
        assert deliver(client, body, sign(body, WEBHOOK_SECRET)).status_code == 200
    customer.refresh_from_db()
    assert (customer.subscription_status, customer.status) == ("active", BillingCustomer.Status.ACTIVE)
    body = stripe_event(
        "evt_sub_3",
        "customer.subscription.updated",
        created=now + 1,
        object="subscription",
        id="sub_webhook",
        status="unpaid",
    )
    deliver(client, body, sign(body, WEBHOOK_SECRET))
    customer.refresh_from_db()
    assert (customer.subscription_status, customer.status) == ("unpaid", BillingCustomer.Status.PAST_DUE)


def test_events_for_unknown_customers_or_types_are_stored_and_ignored(customer):
    client = Client()
    for body in (stripe_event("evt_other", customer="cus_stranger"), stripe_event("evt_type", "charge.refunded")):
        assert deliver(client, body, sign(body, WEBHOOK_SECRET)).json()["data"]["status"] == "ignored"
    assert WebhookEvent.objects.filter(status=WebhookEvent.Status.IGNORED).count() == 2
    assert not Event.objects.exists()


def test_reprocess_command_processes_failed_events_again(customer, capsys):
    body = stripe_event("evt_retry")
    WebhookEvent.objects.create(
        provider="stripe",
        provider_event_id="evt_retry",
        event_type="invoice.paid",
        body=body.decode(),
        payload=json.loads(body),
        status=WebhookEvent.Status.FAILED,
        error="database was down",
        attempts=1,
    )
    call_command("billing_webhook_reprocess")
    stored = WebhookEvent.objects.get()
    assert (stored.status, stored.error, stored.attempts) == ("processed", "", 2)
    assert "Reprocessed 1 event(s): 1 processed" in capsys.readouterr().out
    assert Event.objects.filter(detail_type="billingSuccess").count() == 1
    call_command("billing_webhook_reprocess", "evt_retry")
    assert WebhookEvent.objects.get().attempts == 3


def test_reprocess_command_names_unknown_events(customer):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="No webhook event with provider id evt_nope"):
        call_command("billing_webhook_reprocess", "evt_nope")


@pytest.mark.parametrize(
    ("event_type", "obj", "kind", "standing"),
    [
        ("invoice.paid", {}, WebhookEventKind.PAYMENT_SUCCEEDED, None),
        ("invoice.payment_succeeded", {}, WebhookEventKind.PAYMENT_SUCCEEDED, None),
        ("invoice.payment_failed", {}, WebhookEventKind.PAYMENT_FAILED, None),
        (
            "customer.subscription.updated",
            {"object": "subscription", "status": "trialing"},
            "subscription_changed",
            "active",
        ),
        (
            "customer.subscription.updated",
            {"object": "subscription", "status": "unpaid"},
            "subscription_changed",
            "past_due",
        ),
        (
            "customer.subscription.deleted",
            {"object": "subscription", "status": "canceled"},
            "subscription_changed",
            None,
        ),
        ("charge.refunded", {"object": "charge"}, WebhookEventKind.OTHER, None),
    ],
)
def test_the_stripe_provider_turns_its_events_into_neutral_ones(customer, event_type, obj, kind, standing):
    body = stripe_event("evt_neutral", event_type, **obj)
    data = billing_provider().parse_webhook(body, {"Stripe-Signature": sign(body, WEBHOOK_SECRET)})
    assert (data.kind, data.standing, data.event_type, data.customer_id) == (kind, standing, event_type, "cus_webhook")
    assert billing_provider().parse_stored_webhook(body) == data, "a stored event reads as it was received"


def test_a_stored_event_is_reprocessed_without_its_long_expired_signature(customer):
    body = stripe_event("evt_old", created=int(time.time()) - 7 * 86400)
    with pytest.raises(WebhookVerificationError, match="300 seconds"):
        billing_provider().parse_webhook(body, {"Stripe-Signature": sign(body, WEBHOOK_SECRET, timestamp=1)})
    WebhookEvent.objects.create(
        provider="stripe", provider_event_id="evt_old", event_type="invoice.paid", body=body.decode(), payload={}
    )
    [event] = webhook_events_reprocess(event_ids=["evt_old"])
    assert (event.status, event.error) == ("processed", "")


def test_the_local_provider_verifies_webhooks_too(local_billing, make_tenant):
    body = stripe_event("evt_local")
    assert deliver(Client(), body, sign(body, "whsec_forged")).status_code == 400
    assert deliver(Client(), body, sign(body, WEBHOOK_SECRET)).status_code == 200


def test_an_oversized_body_is_refused_before_it_is_read(customer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = stripe_event("evt_big", padding="x" * 2000)
    response = deliver(Client(), body, sign(body, WEBHOOK_SECRET))
    assert response.status_code == 413
    assert not WebhookEvent.objects.exists()


def test_other_methods_are_not_allowed(customer):
    response = Client().get(URL)
    assert response.status_code == 405
    assert response.json()["statusCode"] == 405
