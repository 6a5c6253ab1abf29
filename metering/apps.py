from django.apps import AppConfig
from django.core import checks


class MeteringConfig(AppConfig):
    name = "metering"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from metering import handlers  # noqa: F401 - registers the event-bus subscribers
        from metering.checks import fast_ingest_check
        from sbt_site.providers import DEFAULT_PROVIDERS

        checks.register(fast_ingest_check)
        DEFAULT_PROVIDERS.setdefault("metering", {"BACKEND": "metering.providers.native.NativeMeteringProvider"})
