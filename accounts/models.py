from django.contrib.auth.models import AbstractUser
from django.db import models
from oauth2_provider.models import AbstractApplication


class User(AbstractUser):
    """A person: an operator of the control plane or a user of one tenant (IAuth users).

    ``username`` is SBT's ``userName``; ``is_active`` is its ``enabled``.
    """

    role = models.CharField("user role", max_length=64, blank=True, db_index=True)
    tenant = models.ForeignKey("tenants.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="users")


class OAuthApplication(AbstractApplication):
    """An OAuth client, with the scopes it may ask for and, optionally, the one tenant it is bound to."""

    allowed_scopes = models.TextField(blank=True, help_text="Space-separated scopes this client may be granted.")
    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="oauth_applications",
        help_text="A tenant-bound client sees only this tenant's data.",
    )

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = "OAuth client"

    @property
    def scope_list(self) -> list[str]:
        return self.allowed_scopes.split()
