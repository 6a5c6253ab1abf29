from django.contrib.auth.models import AbstractUser
from django.db import models
from oauth2_provider.models import AbstractApplication


class User(AbstractUser):
    """A person: an operator of the control plane or a user of one tenant (IAuth users).

    ``username`` is SBT's ``userName``; ``is_active`` is its ``enabled``.
    """

    role = models.CharField("user role", max_length=64, blank=True, db_index=True)
    tenant = models.ForeignKey("tenants.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="users")
    modified = models.DateTimeField(auto_now=True)

    @property
    def status(self) -> str:
        """SBT's (Cognito's) user status: a user without a password has yet to set one."""
        return "CONFIRMED" if self.has_usable_password() else "FORCE_CHANGE_PASSWORD"


class OAuthApplication(AbstractApplication):
    """An OAuth client, with the scopes it may ask for and, optionally, the one tenant it is bound to."""

    class SystemRole(models.TextChoices):
        # The two clients IAuth publishes in /auth-info; every other client has no role.
        MACHINE = "machine", "machine client (application plane)"
        USER = "user", "user client (browser login)"

    allowed_scopes = models.TextField(blank=True, help_text="Space-separated scopes this client may be granted.")
    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="oauth_applications",
        help_text="A tenant-bound client sees only this tenant's data.",
    )
    system_role = models.CharField(
        max_length=16,
        choices=SystemRole.choices,
        blank=True,
        help_text="The machine or user client published in /auth-info; at most one of each.",
    )

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = "OAuth client"
        constraints = [
            models.UniqueConstraint(
                fields=["system_role"], condition=~models.Q(system_role=""), name="one_oauth_client_per_system_role"
            )
        ]

    @property
    def scope_list(self) -> list[str]:
        return self.allowed_scopes.split()
