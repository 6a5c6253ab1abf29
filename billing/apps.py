import os

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from billing import handlers  # noqa: F401 - registers the event-bus subscribers
        from billing.providers import default_config
        from sbt_site.providers import DEFAULT_PROVIDERS

        DEFAULT_PROVIDERS.setdefault("billing", default_config(os.environ))
