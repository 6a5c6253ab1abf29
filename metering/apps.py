from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "metering"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from metering import handlers  # noqa: F401 - registers the event-bus subscribers
        from sbt_site.providers import DEFAULT_PROVIDERS

        DEFAULT_PROVIDERS.setdefault("metering", {"BACKEND": "metering.providers.native.NativeMeteringProvider"})
