"""Billing providers. ``default_config`` picks the embedded default from the environment."""

from collections.abc import Mapping


def default_config(environ: Mapping[str, str]) -> dict:
    """The billing provider used when ``SBT_PROVIDERS["billing"]`` is not set (12-factor).

    ``STRIPE_API_KEY`` selects Stripe (with ``STRIPE_API_BASE`` for a Stripe-compatible server);
    otherwise the built-in local provider. ``BILLING_WEBHOOK_SECRETS`` (comma-separated, the
    newest first during a rotation) are the webhook signing secrets of either.
    """
    secrets = [secret.strip() for secret in environ.get("BILLING_WEBHOOK_SECRETS", "").split(",") if secret.strip()]
    if environ.get("STRIPE_API_KEY"):
        options = {"api_key": environ["STRIPE_API_KEY"], "webhook_secrets": secrets}
        if environ.get("STRIPE_API_BASE"):
            options["api_base"] = environ["STRIPE_API_BASE"]
        return {"BACKEND": "billing.providers.stripe.StripeBillingProvider", "OPTIONS": options}
    return {"BACKEND": "billing.providers.local.LocalBillingProvider", "OPTIONS": {"webhook_secrets": secrets}}
