"""Kept for imports from before Stripe's webhook format moved behind the Stripe provider.

The code is in ``billing.providers.stripe_webhooks``; import from there.
"""

from billing.providers.stripe_webhooks import DEFAULT_TOLERANCE_SECONDS, SIGNATURE_HEADER, parse_event, sign, verify

__all__ = ["DEFAULT_TOLERANCE_SECONDS", "SIGNATURE_HEADER", "parse_event", "sign", "verify"]
