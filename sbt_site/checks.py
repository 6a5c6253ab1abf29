"""System checks of the project (``manage.py check``)."""

from django.conf import settings
from django.core import checks

from sbt_site.conf import sbt_settings

PER_PROCESS_CACHES = ("django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache")


def shared_cache_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """In production, the rate limits need a cache every process shares (CACHE_URL)."""
    limits = sbt_settings.API_RATE_LIMIT or sbt_settings.USAGE_EVENTS_PER_MINUTE_PER_TENANT
    if not (getattr(settings, "PRODUCTION", False) and limits):
        return []
    if settings.CACHES["default"]["BACKEND"] not in PER_PROCESS_CACHES:
        return []
    return [
        checks.Warning(
            "The API's rate limit and the ingestion quota count in each process's own memory: every "
            "gunicorn process (and every host) lets a client have the whole limit again.",
            hint="Set CACHE_URL to a Redis every process reaches (redis://host:6379/1); "
            "docs/operations.md, Throttling and lockout.",
            id="sbt_site.W001",
        )
    ]
