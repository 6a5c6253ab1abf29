from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and OAuth clients"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from sbt_site.providers import DEFAULT_PROVIDERS

        DEFAULT_PROVIDERS.setdefault("auth", {"BACKEND": "accounts.providers.django.DjangoAuthProvider"})

        # GET /auth-info publishes userClientId without the operator running a command first.
        post_migrate.connect(_user_client_reserve, sender=self, dispatch_uid="accounts.user_client_reserve")


def _user_client_reserve(**signal_arguments) -> None:
    from accounts.services import user_client_reserve

    user_client_reserve()
