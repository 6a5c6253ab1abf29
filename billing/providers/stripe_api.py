"""Every call this project makes to Stripe, through the official ``stripe`` library.

One thin module (saleor's ``stripe_api.py`` pattern): it builds the client, retries what Stripe
says is worth retrying with exponential backoff and jitter, and turns every ``stripe`` error
into ``sbt_site.errors.ProviderError(retryable=...)``. Nothing outside it imports ``stripe``.
The library's own retries are off so that this module alone decides (and tests can count).
"""

import hashlib
import logging
import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

import stripe

from sbt_site.errors import ProviderError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Stripe's answer to a meter event identifier it already holds (a retry of a delivered event).
DUPLICATE_IDENTIFIER_CODES = {"duplicate_meter_event"}
DUPLICATE_IDENTIFIER_MESSAGE = "already exists with identifier"


def is_retryable(exc: stripe.StripeError) -> bool:
    should_retry = (exc.headers or {}).get("stripe-should-retry") if hasattr(exc, "headers") else None
    if should_retry in ("true", "false"):
        return should_retry == "true"
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    if isinstance(exc, stripe.IdempotencyError):
        return exc.code == "idempotency_key_in_use"  # the first request is still running
    if isinstance(exc, stripe.APIError):
        return (exc.http_status or 500) >= 500
    return False


def is_duplicate_identifier(exc: stripe.StripeError) -> bool:
    return isinstance(exc, stripe.InvalidRequestError) and (
        exc.code in DUPLICATE_IDENTIFIER_CODES or DUPLICATE_IDENTIFIER_MESSAGE in (exc.user_message or str(exc))
    )


def _provider_error(exc: stripe.StripeError, action: str) -> ProviderError:
    retryable = is_retryable(exc)
    detail = exc.user_message or str(exc) or type(exc).__name__
    return ProviderError(
        f"Stripe refused to {action}: {detail}" if not retryable else f"Stripe could not {action} now: {detail}",
        retryable=retryable,
        code=f"stripe_{exc.code}" if getattr(exc, "code", None) else "stripe_error",
    )


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def format_value(value: Decimal) -> str:
    """A meter value as Stripe reads it: plain decimal notation, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


class StripeApi:
    def __init__(
        self,
        *,
        api_key: str,
        api_base: str | None = None,
        timeout: float = 30,
        max_attempts: int = 4,
        retry_backoff_seconds: float = 0.5,
    ):
        base_addresses = {}
        if api_base:
            base_addresses = {"api": api_base, "meter_events": api_base, "files": api_base, "connect": api_base}
        self.client = stripe.StripeClient(
            api_key,
            base_addresses=base_addresses,
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout),
        )
        self.max_attempts = max(1, max_attempts)
        self.retry_backoff_seconds = retry_backoff_seconds

    def call(self, action: str, request: Callable[[], T], *, accept: Callable[[stripe.StripeError], T] | None = None):
        """Run ``request``, retrying retryable failures; ``accept`` turns a known error into a result."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return request()
            except stripe.StripeError as exc:
                if accept is not None:
                    accepted = accept(exc)
                    if accepted is not None:
                        return accepted
                if not is_retryable(exc) or attempt == self.max_attempts:
                    raise _provider_error(exc, action) from exc
                ceiling = self.retry_backoff_seconds * 2 ** (attempt - 1)
                delay = random.uniform(ceiling / 2, ceiling)
                logger.info("Stripe: %s failed (attempt %s), retrying in %.2fs: %s", action, attempt, delay, exc)
                time.sleep(delay)
        raise AssertionError("unreachable")

    # --- customers and subscriptions -----------------------------------------------------------

    def customer_create(self, *, tenant_id: str, name: str, email: str) -> dict:
        params = {"name": name, "metadata": {"tenant_id": tenant_id}}
        if email:
            params["email"] = email
        # Stripe keeps idempotency keys for 24 hours: a retried onboarding gets the same customer.
        options = {"idempotency_key": f"sbt-customer-{tenant_id}"}
        customer = self.call("create a customer", lambda: self.client.v1.customers.create(params, options))
        return customer.to_dict()

    def customer_search(self, *, tenant_id: str) -> list[dict]:
        """Customers whose ``metadata.tenant_id`` is ``tenant_id``, oldest first.

        Stripe's search is eventually consistent (searchable within a minute, up to an hour
        behind during outages): it finds customers created before the idempotency key's 24 hours
        ran out, not one created a moment ago (the idempotency key covers those).
        """
        if "'" in tenant_id or "\\" in tenant_id:
            raise ValueError(f"Unexpected character in tenant id {tenant_id!r}")
        params = {"query": f"metadata['tenant_id']:'{tenant_id}'", "limit": 10}
        result = self.call("search customers", lambda: self.client.v1.customers.search(params))
        customers = [customer.to_dict() for customer in result.data]
        return sorted(customers, key=lambda customer: (customer.get("created") or 0, customer["id"]))

    def subscriptions_of_tenant(self, *, tenant_id: str, customer_id: str) -> list[dict]:
        """The customer's subscriptions that are not cancelled and were created for ``tenant_id``.

        A list, not a search: lists are consistent the moment a subscription exists.
        """
        params = {"customer": customer_id, "limit": 100}
        result = self.call("list subscriptions", lambda: self.client.v1.subscriptions.list(params))
        subscriptions = [subscription.to_dict() for subscription in result.data]
        return sorted(
            (sub for sub in subscriptions if (sub.get("metadata") or {}).get("tenant_id") == tenant_id),
            key=lambda sub: (sub.get("created") or 0, sub["id"]),
        )

    def subscription_create(self, *, tenant_id: str, customer_id: str, price_ids: list[str]) -> dict:
        params = {
            "customer": customer_id,
            "items": [{"price": price_id} for price_id in price_ids],
            "metadata": {"tenant_id": tenant_id},
        }
        # The prices are part of the key: a retry after the tenant's prices were corrected is a
        # new request, not an idempotency_error about different parameters.
        prices = _digest(price_ids)
        options = {"idempotency_key": f"sbt-subscription-{tenant_id}-{prices}"}
        subscription = self.call("create a subscription", lambda: self.client.v1.subscriptions.create(params, options))
        return subscription.to_dict()

    def subscription_items_update(
        self, *, subscription_id: str, add_price_ids: list[str], delete_item_ids: list[str]
    ) -> dict:
        """Add prices to a subscription and remove items from it, in one request."""
        items = [{"id": item_id, "deleted": True} for item_id in delete_item_ids]
        items += [{"price": price_id} for price_id in add_price_ids]
        params = {"items": items, "proration_behavior": "none"}
        # Unique per change: the items it starts from and the prices it adds.
        change = _digest([*sorted(delete_item_ids), "+", *sorted(add_price_ids)])
        options = {"idempotency_key": f"sbt-subscription-items-{subscription_id}-{change}"}
        subscription = self.call(
            "change a subscription's prices",
            lambda: self.client.v1.subscriptions.update(subscription_id, params, options),
        )
        return subscription.to_dict()

    def subscription_retrieve(self, subscription_id: str) -> dict:
        subscription = self.call("read a subscription", lambda: self.client.v1.subscriptions.retrieve(subscription_id))
        return subscription.to_dict()

    def subscription_cancel(self, subscription_id: str) -> dict:
        # invoice_now bills the usage recorded since the last invoice instead of dropping it.
        params = {"invoice_now": True}

        def already_canceled(exc: stripe.StripeError):
            # A retry after a lost answer finds the subscription cancelled by the first attempt.
            if isinstance(exc, stripe.InvalidRequestError):
                current = self.subscription_retrieve(subscription_id)
                if current.get("status") == "canceled":
                    return current
            return None

        subscription = self.call(
            "cancel a subscription",
            lambda: self.client.v1.subscriptions.cancel(subscription_id, params),
            accept=already_canceled,
        )
        return subscription if isinstance(subscription, dict) else subscription.to_dict()

    # --- usage ---------------------------------------------------------------------------------

    def meter_event_create(
        self, *, event_name: str, identifier: str, timestamp: int, customer_id: str, value: Decimal
    ) -> tuple[dict, bool]:
        """Send one meter event; returns (Stripe's answer, whether Stripe already held it)."""
        params = {
            "event_name": event_name,
            "identifier": identifier,
            "timestamp": timestamp,
            "payload": {"stripe_customer_id": customer_id, "value": format_value(value)},
        }

        def duplicate(exc: stripe.StripeError):
            return ({"identifier": identifier, "duplicate": True}, True) if is_duplicate_identifier(exc) else None

        result = self.call(
            "record usage",
            lambda: self.client.v1.billing.meter_events.create(params),
            accept=duplicate,
        )
        if isinstance(result, tuple):
            return result
        return result.to_dict(), False

    def meter_event_total(self, *, event_name: str, customer_id: str, start: int, end: int) -> Decimal:
        """The value Stripe aggregates for the customer's live meter events of ``event_name``
        timestamped in [start, end) (event summaries; settled minutes after the events arrive)."""
        meters = self.call("list billing meters", lambda: self.client.v1.billing.meters.list({"limit": 100}))
        meter = next((meter for meter in meters.auto_paging_iter() if meter["event_name"] == event_name), None)
        if meter is None:
            raise ProviderError(f"Stripe has no billing meter for the event name {event_name}", retryable=False)
        params = {"customer": customer_id, "start_time": start, "end_time": end}
        summaries = self.call(
            "read a usage total", lambda: self.client.v1.billing.meters.event_summaries.list(meter["id"], params)
        )
        return sum((Decimal(str(summary["aggregated_value"])) for summary in summaries.data), start=Decimal(0))

    def meter_event_cancel(self, *, event_name: str, identifier: str) -> dict:
        params = {"event_name": event_name, "type": "cancel", "cancel": {"identifier": identifier}}
        # A retry after a dropped answer replays the first answer instead of cancelling twice.
        options = {"idempotency_key": f"sbt-cancel-{identifier}"}
        adjustment = self.call(
            "cancel a usage record", lambda: self.client.v1.billing.meter_event_adjustments.create(params, options)
        )
        return adjustment.to_dict()
