"""IAuth: the identity provider interface of the control plane (SBT's ``IAuth``).

An ``AuthProvider`` publishes the OAuth/JWT configuration an application plane needs (issuer,
audience, endpoints, client ids, the scope of each operation) and manages users. The built-in
provider (``accounts.providers.django.DjangoAuthProvider``) keeps users as Django users and
issues tokens with django-oauth-toolkit; another IdP plugs in through ``SBT_PROVIDERS["auth"]``.

Values crossing this boundary are the dataclasses below, never ORM or SDK objects.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sbt_site.conf import sbt_settings


@dataclass(frozen=True)
class AuthUser:
    """A user as IAuth describes it (CONTRACT.md "Users")."""

    user_name: str
    email: str
    user_role: str
    enabled: bool
    status: str
    tenant_id: UUID | None
    created: datetime
    modified: datetime


@dataclass(frozen=True)
class UserPage:
    users: list[AuthUser]
    next_token: str | None


@dataclass(frozen=True)
class CreatedAdmin:
    user: AuthUser
    created: bool
    # How the operator sets the password (the provider never prints or stores one in clear).
    password_instructions: str


def _scope_property(operation: str) -> property:
    def getter(self) -> str:
        return self.scope_for(operation)

    getter.__doc__ = f"The scope the {operation} operation needs."
    return property(getter)


class AuthProvider(ABC):
    """SBT's IAuth: OAuth/JWT configuration, scopes per operation, and user management.

    Every user operation raises ``sbt_site.errors.NotFound`` for an unknown user and
    ``Conflict`` for a duplicate one; ``tenant_id`` arguments limit the operation to the users
    of that tenant (a tenant-bound client), other users being not found.
    """

    # --- OAuth / JWT configuration --------------------------------------------------------
    @property
    @abstractmethod
    def jwt_issuer(self) -> str:
        """The ``iss`` claim of every token."""

    @property
    @abstractmethod
    def jwt_audience(self) -> str:
        """The ``aud`` claim of access tokens."""

    @property
    @abstractmethod
    def token_endpoint(self) -> str:
        """Where clients get tokens (client credentials, authorization code, refresh)."""

    @property
    @abstractmethod
    def well_known_endpoint_url(self) -> str:
        """The OpenID discovery document, which names the JWKS."""

    @property
    @abstractmethod
    def user_client_id(self) -> str | None:
        """The public client browsers log users in with (authorization code + PKCE)."""

    @property
    @abstractmethod
    def machine_client_id(self) -> str | None:
        """The confidential client an application plane uses to report back."""

    @property
    def machine_client_secret(self) -> str | None:
        """The machine client's secret, when the provider can reveal it.

        The built-in provider stores secrets hashed, so it returns None: the secret is shown once
        by ``machine_client_create``.
        """
        return None

    @property
    def machine_client_audience(self) -> str:
        """The ``aud`` of the machine client's tokens."""
        return self.jwt_audience

    # --- Scopes, one per operation (SBT's IAuth properties) -------------------------------
    def scope_for(self, operation: str) -> str:
        """The scope the API requires for ``operation`` (``SBT["SCOPES"]``)."""
        return sbt_settings.SCOPES[operation]

    def scopes(self) -> dict[str, str]:
        """``{"<operation>Scope": "<scope>"}`` for every operation, as /auth-info publishes it."""
        return {f"{operation}Scope": scope for operation, scope in sbt_settings.SCOPES.items()}

    fetch_tenant_registration_scope = _scope_property("fetchTenantRegistration")
    fetch_all_tenant_registrations_scope = _scope_property("fetchAllTenantRegistrations")
    create_tenant_registration_scope = _scope_property("createTenantRegistration")
    update_tenant_registration_scope = _scope_property("updateTenantRegistration")
    delete_tenant_registration_scope = _scope_property("deleteTenantRegistration")
    activate_tenant_registration_scope = _scope_property("activateTenantRegistration")
    deactivate_tenant_registration_scope = _scope_property("deactivateTenantRegistration")
    fetch_user_scope = _scope_property("fetchUser")
    fetch_all_users_scope = _scope_property("fetchAllUsers")
    create_user_scope = _scope_property("createUser")
    update_user_scope = _scope_property("updateUser")
    delete_user_scope = _scope_property("deleteUser")
    disable_user_scope = _scope_property("disableUser")
    enable_user_scope = _scope_property("enableUser")

    # --- Users ----------------------------------------------------------------------------
    @abstractmethod
    def create_user(self, *, user_name: str, email: str, user_role: str, tenant_id: UUID | None) -> AuthUser:
        """Create a user without a password (status FORCE_CHANGE_PASSWORD); Conflict if it exists."""

    @abstractmethod
    def fetch_user(self, *, user_name: str, tenant_id: UUID | None = None) -> AuthUser:
        """One user; NotFound if missing (or outside ``tenant_id``)."""

    @abstractmethod
    def fetch_all_users(self, *, limit: int, next_token: str | None, tenant_id: UUID | None = None) -> UserPage:
        """A page of users in a stable order; ``next_token`` is opaque (InvalidInput if malformed)."""

    @abstractmethod
    def update_user(
        self, *, user_name: str, email: str | None = None, user_role: str | None = None, tenant_id: UUID | None = None
    ) -> AuthUser:
        """Change a user's email and/or role."""

    @abstractmethod
    def delete_user(self, *, user_name: str, tenant_id: UUID | None = None) -> AuthUser:
        """Delete a user and everything it was issued; returns it as it was."""

    @abstractmethod
    def disable_user(self, *, user_name: str, tenant_id: UUID | None = None) -> AuthUser:
        """Block the user's logins and revoke its access and refresh tokens."""

    @abstractmethod
    def enable_user(self, *, user_name: str, tenant_id: UUID | None = None) -> AuthUser:
        """Allow the user to log in again (its revoked tokens stay revoked)."""

    @abstractmethod
    def revoke_user_tokens(self, *, user_name: str) -> None:
        """Revoke every access token, refresh token and unexchanged code the user holds."""

    @abstractmethod
    def revoke_tenant_tokens(self, *, tenant_id: UUID) -> None:
        """Revoke every token and unexchanged code held by the tenant's OAuth clients and users
        (the tenant was deactivated or offboarded)."""

    @abstractmethod
    def create_admin_user(self, *, name: str, email: str, role: str) -> CreatedAdmin:
        """Create (or find) a control-plane operator who can use the admin; idempotent."""
