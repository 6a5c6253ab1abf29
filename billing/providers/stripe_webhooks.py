"""Stripe's webhooks: the signature scheme and the event vocabulary, behind the Stripe provider.

Everything Stripe-specific about a webhook is here: the ``Stripe-Signature`` header, Stripe's
event types and subscription statuses. ``parse_event`` turns them into the neutral
``WebhookEventData`` the services act on. The local provider speaks the same format (so the
same signed test events and ``stripe listen`` forwarding work against it); both take it from
``StripeWebhookFormat``. No ``stripe`` import: the SDK stays in ``stripe_api.py``.

``Stripe-Signature: t=<unix time>,v1=<hex hmac>[,v1=<hex hmac>...]`` where each v1 is
HMAC-SHA256(secret, "<t>.<raw body>"). We verify it ourselves rather than with
``stripe.WebhookSignature`` because that helper only refuses *stale* timestamps: a timestamp
from the future is as suspicious as an old one (a captured signature replayed later, or a
clock we should not trust), so both are refused here.
"""

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from billing.interface import CustomerStanding, WebhookEventData, WebhookEventKind, WebhookVerificationError
from sbt_site import strict_json

SIGNATURE_HEADER = "Stripe-Signature"
DEFAULT_TOLERANCE_SECONDS = 300

EVENT_KINDS = {
    "invoice.paid": WebhookEventKind.PAYMENT_SUCCEEDED,
    "invoice.payment_succeeded": WebhookEventKind.PAYMENT_SUCCEEDED,
    "invoice.payment_failed": WebhookEventKind.PAYMENT_FAILED,
    "customer.subscription.created": WebhookEventKind.SUBSCRIPTION_CHANGED,
    "customer.subscription.updated": WebhookEventKind.SUBSCRIPTION_CHANGED,
    "customer.subscription.deleted": WebhookEventKind.SUBSCRIPTION_CHANGED,
    "customer.subscription.paused": WebhookEventKind.SUBSCRIPTION_CHANGED,
    "customer.subscription.resumed": WebhookEventKind.SUBSCRIPTION_CHANGED,
}
# Subscription statuses that say something about the customer; the others (incomplete,
# incomplete_expired, paused, canceled) leave its status as it is.
STANDINGS = {
    "active": CustomerStanding.ACTIVE,
    "trialing": CustomerStanding.ACTIVE,
    "past_due": CustomerStanding.PAST_DUE,
    "unpaid": CustomerStanding.PAST_DUE,
}


def sign(body: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value for ``body`` (what Stripe sends; used by tests and docs)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise WebhookVerificationError unless one v1 signature matches one of ``secrets``.

    Several secrets are accepted so that a secret can be rotated without refusing events
    signed with the old one; several v1 signatures are accepted because Stripe sends one per
    active secret during its own rotation.
    """
    secrets = [secret for secret in secrets if secret]
    if not secrets:
        raise WebhookVerificationError("No webhook signing secret is configured: refusing every webhook.")
    header = _header(headers, SIGNATURE_HEADER)
    if not header:
        raise WebhookVerificationError(f"Missing {SIGNATURE_HEADER} header.")
    timestamp = None
    signatures = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookVerificationError(f"Malformed {SIGNATURE_HEADER} header: bad timestamp.") from None
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookVerificationError(f"Malformed {SIGNATURE_HEADER} header: a timestamp and a v1 signature needed.")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"Signature timestamp is more than {tolerance} seconds away from the server's clock."
        )
    signed = f"{timestamp}.".encode() + body
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            return
    raise WebhookVerificationError("No signature matches the body with any configured secret.")


def _string(value) -> str:
    return value if isinstance(value, str) else ""


def parse_event(body: bytes) -> WebhookEventData:
    """A Stripe event (``{"id", "type", "created", "data": {"object": {...}}}``) from a verified body.

    Raises WebhookVerificationError for a body that is not an event we could store.
    """
    try:
        payload = strict_json.loads(body)
    except strict_json.InvalidJSON as exc:
        raise WebhookVerificationError(f"The webhook body is not JSON we accept: {exc}.") from None
    text = body.decode("utf-8")
    if "\x00" in text or "\\u0000" in text:
        raise WebhookVerificationError("The webhook body contains NUL characters, which cannot be stored.")
    try:
        # What PostgreSQL's jsonb refuses besides NUL: lone surrogates (\ud800) and numbers too
        # large for a float (1e999). Checked here so that such an event is refused, not a 500.
        json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        raise WebhookVerificationError("The webhook body holds values that cannot be stored.") from None
    if not isinstance(payload, dict) or not _string(payload.get("id")) or not _string(payload.get("type")):
        raise WebhookVerificationError("The webhook body is not an event: it needs an id and a type.")
    if len(payload["id"]) > 255 or len(payload["type"]) > 128:
        raise WebhookVerificationError("The event's id or type is too long to be a provider event.")
    created = payload.get("created")
    created_at = None
    if isinstance(created, int) and not isinstance(created, bool) and 0 <= created < 2**35:
        created_at = datetime.fromtimestamp(created, tz=UTC)
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    obj = obj if isinstance(obj, dict) else {}
    object_type = obj.get("object")
    customer = obj.get("customer") if object_type != "customer" else obj.get("id")
    if isinstance(customer, dict):  # an expanded customer
        customer = customer.get("id")
    subscription_id = ""
    subscription_status = ""
    if object_type == "subscription":
        subscription_id = _string(obj.get("id"))
        subscription_status = _string(obj.get("status"))
    elif object_type == "invoice":
        subscription_id = _string(obj.get("subscription"))
    kind = EVENT_KINDS.get(payload["type"], WebhookEventKind.OTHER)
    amount = obj.get("amount_due") if kind == WebhookEventKind.PAYMENT_FAILED else obj.get("amount_paid")
    return WebhookEventData(
        event_id=payload["id"],
        event_type=payload["type"],
        created=created_at,
        payload=payload,
        kind=kind,
        customer_id=_string(customer),
        subscription_id=subscription_id,
        subscription_status=subscription_status,
        standing=STANDINGS.get(subscription_status),
        invoice_id=_string(obj.get("id")) if object_type == "invoice" else "",
        amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        currency=_string(obj.get("currency")),
    )


class StripeWebhookFormat:
    """``parse_webhook`` / ``parse_stored_webhook`` of a provider whose webhooks are Stripe's.

    The provider sets ``webhook_secrets`` (newest first during a rotation) and ``webhook_tolerance``.
    """

    webhook_secrets: list[str]
    webhook_tolerance: int = DEFAULT_TOLERANCE_SECONDS

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEventData:
        verify(body, headers, self.webhook_secrets, tolerance=self.webhook_tolerance)
        return parse_event(body)

    def parse_stored_webhook(self, body: bytes) -> WebhookEventData:
        return parse_event(body)
