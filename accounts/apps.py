from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and OAuth clients"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from sbt_site.providers import DEFAULT_PROVIDERS

        DEFAULT_PROVIDERS.setdefault("auth", {"BACKEND": "accounts.providers.django.DjangoAuthProvider"})
