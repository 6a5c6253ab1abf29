"""Writes of the provider's webhook events: store once, apply the provider-neutral event idempotently.

The provider turns its own event into a ``WebhookEventData`` (``parse_webhook``; Stripe's
vocabulary lives in ``billing/providers/stripe_webhooks.py``); what is applied here depends only
on its ``kind`` and ``standing``.
"""

import logging
import traceback

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.interface import CustomerStanding, WebhookEventKind
from billing.models import BillingCustomer, WebhookEvent
from billing.services.common import billing_provider
from events.services import event_publish
from sbt_site.errors import NotFound

logger = logging.getLogger(__name__)


def webhook_event_receive(*, body: bytes, headers) -> tuple[WebhookEvent, bool]:
    """Verify, store once and process a provider webhook; returns (event, whether it was new).

    Verification comes first: a request that fails it stores nothing. A provider event id seen
    before is acknowledged without being processed again.
    """
    provider = billing_provider()
    data = provider.parse_webhook(body, headers)
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                provider=provider.name,
                provider_event_id=data.event_id,
                event_type=data.event_type,
                body=body.decode("utf-8"),
                payload=data.payload,
                provider_created=data.created,
            )
    except IntegrityError:
        return WebhookEvent.objects.get(provider_event_id=data.event_id), False
    return webhook_event_process(webhook_event_id=event.pk), True


def webhook_event_process(*, webhook_event_id: int, force: bool = False) -> WebhookEvent:
    """Apply a stored webhook event in one transaction; a failure is recorded on the event.

    Processed and ignored events are left alone unless ``force`` (an operator's reprocess).
    """
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=webhook_event_id)
        if not force and event.status in (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED):
            return event
        event.attempts += 1
        try:
            with transaction.atomic():
                event.status, event.error = _webhook_event_apply(event)
        except Exception as exc:  # recorded on the event; the operator reprocesses it
            logger.exception("Processing webhook event %s failed", event.provider_event_id)
            event.status = WebhookEvent.Status.FAILED
            event.error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
        event.processed_at = timezone.now()
        event.save()
    return event


# What a customer's standing at the provider makes of its status (a cancelled customer stays so).
STANDING_STATUS = {
    CustomerStanding.ACTIVE: BillingCustomer.Status.ACTIVE,
    CustomerStanding.PAST_DUE: BillingCustomer.Status.PAST_DUE,
}


def _webhook_event_apply(event: WebhookEvent) -> tuple[str, str]:
    # The stored body was verified when it was received; its signature cannot be checked again
    # (the headers are not stored and its timestamp is long past the tolerance).
    data = billing_provider().parse_stored_webhook(event.body.encode("utf-8"))
    if data.kind == WebhookEventKind.OTHER:
        return WebhookEvent.Status.IGNORED, f"{data.event_type} needs no action"
    customer = None
    if data.customer_id:
        customer = (
            BillingCustomer.objects.select_for_update()
            .filter(provider=event.provider, provider_customer_id=data.customer_id)
            .first()
        )
    if customer is None:
        return WebhookEvent.Status.IGNORED, f"No billing customer has the provider id {data.customer_id!r}"
    newer = customer.status_changed_at is None or data.created is None or data.created >= customer.status_changed_at
    detail = {
        "tenantId": str(customer.tenant_id),
        "providerEventId": data.event_id,
        "eventType": data.event_type,
        "customerId": data.customer_id,
    }
    if data.kind in (WebhookEventKind.PAYMENT_SUCCEEDED, WebhookEventKind.PAYMENT_FAILED):
        paid = data.kind == WebhookEventKind.PAYMENT_SUCCEEDED
        detail.update({"invoiceId": data.invoice_id, "amount": data.amount, "currency": data.currency})
        if newer and customer.status != BillingCustomer.Status.CANCELED:
            customer.status = BillingCustomer.Status.ACTIVE if paid else BillingCustomer.Status.PAST_DUE
        event_publish(detail_type="billingSuccess" if paid else "billingFailure", detail=detail)
    elif newer and data.subscription_id and data.subscription_id == customer.provider_subscription_id:
        customer.subscription_status = data.subscription_status
        if data.standing is not None and customer.status != BillingCustomer.Status.CANCELED:
            customer.status = STANDING_STATUS[data.standing]
    if newer and data.created is not None:
        customer.status_changed_at = data.created
    customer.save()
    return WebhookEvent.Status.PROCESSED, ""


def webhook_events_reprocess(
    *, event_ids: list[str] | None = None, status: str | None = WebhookEvent.Status.FAILED
) -> list[WebhookEvent]:
    """Process stored webhook events again: the given provider event ids, or all with ``status``.

    Each goes through the provider's ``parse_stored_webhook`` on its stored raw body, like a new
    event through ``parse_webhook`` but without the signature check (see ``_webhook_event_apply``).
    """
    if event_ids:
        events = WebhookEvent.objects.filter(provider_event_id__in=event_ids)
        missing = set(event_ids) - set(events.values_list("provider_event_id", flat=True))
        if missing:
            raise NotFound(f"No webhook event with provider id {', '.join(sorted(missing))}")
    else:
        events = WebhookEvent.objects.filter(status=status)
    return [
        webhook_event_process(webhook_event_id=pk, force=True)
        for pk in events.order_by("received", "id").values_list("pk", flat=True)
    ]
