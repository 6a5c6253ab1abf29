from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from billing import handlers  # noqa: F401 - registers the event-bus subscribers
        from sbt_site.providers import DEFAULT_PROVIDERS

        DEFAULT_PROVIDERS.setdefault("billing", {"BACKEND": "billing.providers.local.LocalBillingProvider"})
