from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from oauth2_provider.models import AbstractApplication
from oauth2_provider.settings import oauth2_settings


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

    @property
    def tenant_active(self) -> bool:
        """Whether the user's tenant, if it has one, is active. A user of a deactivated, offboarded
        or deleted tenant neither logs in nor gets or uses tokens until the tenant is active again."""
        return self.tenant_id is None or self.tenant.active


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

    def is_usable(self, request) -> bool:
        """DOT's hook for disabling a client: a client bound to an inactive (deactivated,
        offboarded, deleted) tenant does not authenticate at the token endpoint, so it gets no
        token (``invalid_client``), and its tokens fail validation."""
        return super().is_usable(request) and (self.tenant_id is None or self.tenant.active)

    def redirect_uri_allowed(self, uri: str) -> bool:
        """A registered redirect URI, character for character (docs/auth.md).

        DOT accepts a loopback URI (127.0.0.1, [::1]) on any port, as RFC 8252 §7.3 allows for
        native apps that listen on an ephemeral port; the user client registers its callbacks
        with their ports, so any other port is someone else's listener.
        """
        return uri in self.redirect_uris.split() and super().redirect_uri_allowed(uri)


class AuthorizationCodeExchange(models.Model):
    """An authorization code already exchanged, and the tokens it produced.

    django-oauth-toolkit deletes a code once exchanged, so a replay would only be refused; RFC
    6749 §4.1.2 says the server SHOULD also revoke the tokens the code produced (a replayed code
    means it leaked). This row is what finds them: the first access token and the refresh
    token family (every rotation of that refresh token carries the family). It is kept as long
    as that family may live (the refresh-token lifetime), then cleared with expired tokens.
    """

    code_digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the code, hex.")
    application = models.ForeignKey(oauth2_settings.APPLICATION_MODEL, on_delete=models.CASCADE, related_name="+")
    access_token = models.ForeignKey(
        oauth2_settings.ACCESS_TOKEN_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    token_family = models.UUIDField(null=True, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    expires = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"code exchange #{self.pk}"
