"""Writes of the accounts app: users (through the configured AuthProvider) and OAuth clients."""

from collections.abc import Collection
from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import clear_expired, get_access_token_model, get_refresh_token_model

from accounts.boundary import tenant_in_reach
from accounts.interface import AuthProvider, AuthUser, CreatedAdmin
from accounts.models import OAuthApplication
from accounts.scopes import INTROSPECTION_SCOPE, is_tenant_role, role_scopes
from accounts.tokens.codes import code_exchanges_clear_expired
from events.services import event_publish
from sbt_site.conf import SCOPE_DESCRIPTIONS, sbt_settings
from sbt_site.errors import Forbidden, InvalidInput, NotFound
from sbt_site.providers import get_provider
from tenants.models import Tenant

MACHINE_CLIENT_NAME = "machine client (application plane)"
USER_CLIENT_NAME = "user client (browser login)"


def auth_provider() -> AuthProvider:
    return get_provider("auth")


# --- Users ------------------------------------------------------------------------------------


def _tenant_user_event_detail(user: AuthUser) -> dict:
    return {
        "tenantId": str(user.tenant_id),
        "userName": user.user_name,
        "email": user.email,
        "userRole": user.user_role,
    }


@transaction.atomic
def user_create(
    *,
    user_name: str,
    email: str,
    user_role: str,
    tenant_id: UUID | None = None,
    client_tenant_id: UUID | None = None,
    granter_scopes: Collection[str] | None = None,
) -> AuthUser:
    """Create a user; a tenant user is announced with tenantUserCreated.

    A tenant-bound client (``client_tenant_id``) creates users of its own tenant only; a user
    acting through its token (``granter_scopes``) creates users of roles within that token.
    """
    _check_may_manage(user_role, client_tenant_id=client_tenant_id, granter_scopes=granter_scopes)
    tenant_id = tenant_in_reach(
        bound=client_tenant_id, requested=tenant_id, not_found=f"Tenant not found for id {tenant_id}"
    )
    _check_tenant_role_has_tenant(user_role, tenant_id)
    user = auth_provider().create_user(user_name=user_name, email=email, user_role=user_role, tenant_id=tenant_id)
    if user.tenant_id is not None:
        event_publish(detail_type="tenantUserCreated", detail=_tenant_user_event_detail(user))
    return user


def _check_tenant_role_has_tenant(user_role: str, tenant_id: UUID | None) -> None:
    """A tenant role (SBT["TENANT_ROLES"]) needs a tenant: unbound, it would reach every tenant."""
    if tenant_id is None and is_tenant_role(user_role):
        msg = f"The role {user_role} is a tenant role: tenantId is required"
        raise InvalidInput(msg, detail=[{"loc": ["body", "tenantId"], "msg": msg, "type": "tenant_required"}])


def _check_may_manage(user_role: str, *, client_tenant_id: UUID | None, granter_scopes: Collection[str] | None) -> None:
    """Whether the caller may hand out ``user_role``, or act on a user who holds it.

    A tenant-bound caller manages its tenant's users of tenant roles only (SBT["TENANT_ROLES"]):
    never a SystemAdmin, whose token reaches every tenant. A user acting through its own token
    cannot grant, nor demote, disable or delete, a role worth more than that token (a TenantAdmin
    making itself a SystemAdmin, or disabling the SystemAdmin of its tenant).
    """
    if client_tenant_id is not None and not is_tenant_role(user_role):
        raise Forbidden(f"A tenant-bound caller cannot manage {user_role} users", code="role_not_grantable")
    if granter_scopes is not None and not set(role_scopes(user_role)) <= set(granter_scopes):
        raise Forbidden(f"Your token cannot manage the role {user_role}", code="role_not_grantable")


def _user_to_manage(*, user_name: str, client_tenant_id: UUID | None, granter_scopes) -> AuthUser:
    """The user ``user_name`` (of the caller's tenant, when it is bound), if the caller may act on it."""
    user = auth_provider().fetch_user(user_name=user_name, tenant_id=client_tenant_id)
    _check_may_manage(user.user_role, client_tenant_id=client_tenant_id, granter_scopes=granter_scopes)
    return user


@transaction.atomic
def user_update(
    *,
    user_name: str,
    email: str | None = None,
    user_role: str | None = None,
    client_tenant_id: UUID | None = None,
    granter_scopes: Collection[str] | None = None,
) -> AuthUser:
    """Change a user's email and/or role; a role change revokes every token the user holds.

    The user's tokens carry its old role's scopes (SBT["ROLE_SCOPES"]), and a refresh would
    carry them on: revoking makes a downgrade take effect at once, and an upgrade at next login.
    ``granter_scopes`` is the acting user's token scopes (None for a machine client).
    """
    provider = auth_provider()
    before = _user_to_manage(user_name=user_name, client_tenant_id=client_tenant_id, granter_scopes=granter_scopes)
    if user_role is not None:
        _check_may_manage(user_role, client_tenant_id=client_tenant_id, granter_scopes=granter_scopes)
        _check_tenant_role_has_tenant(user_role, before.tenant_id)
    user = provider.update_user(user_name=user_name, email=email, user_role=user_role, tenant_id=client_tenant_id)
    if user.user_role != before.user_role:
        provider.revoke_user_tokens(user_name=user_name)
    return user


@transaction.atomic
def user_delete(
    *, user_name: str, client_tenant_id: UUID | None = None, granter_scopes: Collection[str] | None = None
) -> AuthUser:
    """Delete a user and its tokens; a tenant user is announced with tenantUserDeleted."""
    _user_to_manage(user_name=user_name, client_tenant_id=client_tenant_id, granter_scopes=granter_scopes)
    user = auth_provider().delete_user(user_name=user_name, tenant_id=client_tenant_id)
    if user.tenant_id is not None:
        event_publish(detail_type="tenantUserDeleted", detail=_tenant_user_event_detail(user))
    return user


@transaction.atomic
def user_disable(
    *, user_name: str, client_tenant_id: UUID | None = None, granter_scopes: Collection[str] | None = None
) -> AuthUser:
    """Block the user's logins and revoke every token it holds."""
    _user_to_manage(user_name=user_name, client_tenant_id=client_tenant_id, granter_scopes=granter_scopes)
    return auth_provider().disable_user(user_name=user_name, tenant_id=client_tenant_id)


@transaction.atomic
def user_tokens_revoke(*, user_name: str) -> None:
    """Revoke every token and unexchanged code the user holds (e.g. after an operator changed
    its role, tenant or active flag in the admin, as the API's role change does)."""
    auth_provider().revoke_user_tokens(user_name=user_name)


@transaction.atomic
def tenant_tokens_revoke(*, tenant_id: UUID) -> None:
    """Revoke every token and unexchanged code of the tenant's clients and users: called when the
    tenant is deactivated or offboarded, so its access ends at once (reactivating restores
    logins and new tokens, never the revoked ones)."""
    auth_provider().revoke_tenant_tokens(tenant_id=tenant_id)


@transaction.atomic
def user_enable(
    *, user_name: str, client_tenant_id: UUID | None = None, granter_scopes: Collection[str] | None = None
) -> AuthUser:
    _user_to_manage(user_name=user_name, client_tenant_id=client_tenant_id, granter_scopes=granter_scopes)
    return auth_provider().enable_user(user_name=user_name, tenant_id=client_tenant_id)


def admin_user_create(*, name: str, email: str, role: str) -> CreatedAdmin:
    """Create the control-plane operator ``name`` unless it exists (idempotent)."""
    return auth_provider().create_admin_user(name=name, email=email, role=role)


# --- OAuth clients ----------------------------------------------------------------------------


def _validated_scopes(scopes: list[str]) -> list[str]:
    unknown = [scope for scope in scopes if scope not in SCOPE_DESCRIPTIONS and scope != INTROSPECTION_SCOPE]
    if unknown:
        known = " ".join([*SCOPE_DESCRIPTIONS, INTROSPECTION_SCOPE])
        raise InvalidInput(f"Unknown scope(s): {' '.join(unknown)}. Known scopes: {known}")
    if not scopes:
        raise InvalidInput("A client needs at least one scope")
    return list(dict.fromkeys(scopes))


@transaction.atomic
def oauth_client_create(
    *, name: str, scopes: list[str], tenant_id: UUID | str | None = None
) -> tuple[OAuthApplication, str]:
    """Create a confidential client-credentials client; returns it and its secret in clear.

    The secret is stored hashed, so the returned value is the only time it can be read.
    """
    tenant = None
    if tenant_id is not None:
        try:
            tenant = Tenant.objects.get(pk=tenant_id)
        except (Tenant.DoesNotExist, ValueError, TypeError, DjangoValidationError):
            raise NotFound(f"Tenant not found for id {tenant_id}") from None
    secret = generate_client_secret()
    application = OAuthApplication.objects.create(
        name=name,
        client_type=OAuthApplication.CLIENT_CONFIDENTIAL,
        authorization_grant_type=OAuthApplication.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        hash_client_secret=True,
        allowed_scopes=" ".join(_validated_scopes(scopes)),
        tenant=tenant,
        algorithm=OAuthApplication.RS256_ALGORITHM,
    )
    return application, secret


@transaction.atomic
def oauth_client_tokens_revoke(*, application: OAuthApplication) -> None:
    """Revoke every token issued to the client (after an operator narrowed its scopes, moved
    its tenant binding or replaced its secret in the admin)."""
    _revoke_client_tokens(application)


def _revoke_client_tokens(application: OAuthApplication) -> None:
    get_refresh_token_model().objects.filter(application=application, revoked__isnull=True).update(
        revoked=timezone.now(), access_token=None
    )
    get_access_token_model().objects.filter(application=application).delete()


@transaction.atomic
def machine_client_ensure(*, rotate: bool = False) -> tuple[OAuthApplication, str | None]:
    """The machine client an application plane reports back with (created on first call).

    Returns the secret in clear only when it is new: on creation, or with ``rotate``, which also
    revokes the tokens issued with the old secret.
    """
    application = (
        OAuthApplication.objects.select_for_update().filter(system_role=OAuthApplication.SystemRole.MACHINE).first()
    )
    if application is None:
        application, secret = oauth_client_create(
            name=MACHINE_CLIENT_NAME, scopes=list(sbt_settings.AUTH_MACHINE_CLIENT_SCOPES)
        )
        application.system_role = OAuthApplication.SystemRole.MACHINE
        application.save(update_fields=["system_role"])
        return application, secret
    if not rotate:
        return application, None
    secret = generate_client_secret()
    application.client_secret = secret
    application.save(update_fields=["client_secret", "updated"])
    _revoke_client_tokens(application)
    return application, secret


@transaction.atomic
def user_client_ensure(*, redirect_uris: list[str] | None = None) -> OAuthApplication:
    """The public client users log in with (authorization code + PKCE S256), created on first call.

    ``redirect_uris`` replaces the registered callback URLs (exact match is required at login).
    """
    application = _user_client_locked() or _user_client_new()
    if redirect_uris is not None:
        application.redirect_uris = " ".join(redirect_uris)
    if not application.redirect_uris:
        raise InvalidInput("The user client needs at least one redirect URI (--redirect-uri)")
    try:
        application.clean()
    except DjangoValidationError as exc:
        raise InvalidInput(" ".join(exc.messages)) from None
    application.save()
    return application


def _user_client_locked() -> OAuthApplication | None:
    return OAuthApplication.objects.select_for_update().filter(system_role=OAuthApplication.SystemRole.USER).first()


def _user_client_new() -> OAuthApplication:
    return OAuthApplication(
        name=USER_CLIENT_NAME,
        client_type=OAuthApplication.CLIENT_PUBLIC,
        authorization_grant_type=OAuthApplication.GRANT_AUTHORIZATION_CODE,
        hash_client_secret=True,
        # A first-party login: the operator registered it, so no consent screen.
        skip_authorization=True,
        allowed_scopes=" ".join(SCOPE_DESCRIPTIONS),
        algorithm=OAuthApplication.RS256_ALGORITHM,
        system_role=OAuthApplication.SystemRole.USER,
    )


@transaction.atomic
def user_client_reserve() -> OAuthApplication:
    """The user client, created without redirect URIs when there is none, so that its id (SBT's
    IAuth ``userClientId``, published by GET /auth-info) exists from the first ``migrate`` on.

    Runs after every migrate (``accounts.apps``). With no
    redirect URI nobody can log in through it: the authorization endpoint refuses every
    redirect_uri, so no code goes anywhere, until the operator registers the application's
    callbacks with ``user_client_create --redirect-uri`` (which keeps the id).
    """
    application = _user_client_locked()
    if application is None:
        application = _user_client_new()
        application.save()
    return application


def tokens_clear_expired() -> None:
    """Delete expired access tokens, authorization codes and refresh tokens past their lifetime,
    and the records of exchanged codes past it.

    Revoked refresh tokens and exchanged codes are kept until then: they are what detects a
    replayed one.
    """
    clear_expired()
    code_exchanges_clear_expired()
