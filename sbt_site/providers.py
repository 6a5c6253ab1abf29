"""Loading the configured provider of an interface (billing, metering, auth).

``settings.SBT_PROVIDERS`` is shaped like ``STORAGES``::

    SBT_PROVIDERS = {
        "billing": {"BACKEND": "billing.providers.stripe.StripeBillingProvider", "OPTIONS": {...}},
    }

An app registers its default with ``DEFAULT_PROVIDERS`` below so that an empty setting is the
embedded default.
"""

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

# The built-in providers, used when SBT_PROVIDERS does not name one.
DEFAULT_PROVIDERS: dict[str, dict] = {}


@cache
def get_provider(name: str):
    """Return the (cached) provider instance configured for interface ``name``."""
    config = getattr(settings, "SBT_PROVIDERS", {}).get(name) or DEFAULT_PROVIDERS.get(name)
    if config is None:
        raise ImproperlyConfigured(f"No provider configured for {name!r}: set SBT_PROVIDERS[{name!r}]['BACKEND']")
    backend = config.get("BACKEND")
    try:
        provider_class = import_string(backend)
    except (ImportError, TypeError) as exc:
        raise ImproperlyConfigured(
            f"SBT_PROVIDERS[{name!r}]['BACKEND'] = {backend!r} cannot be imported: {exc}"
        ) from exc
    return provider_class(**config.get("OPTIONS", {}))


@receiver(setting_changed)
def _reset_providers(*, setting, **kwargs):
    if setting == "SBT_PROVIDERS":
        get_provider.cache_clear()
