"""Reads of the accounts app: users through the configured AuthProvider, and the IAuth config."""

from uuid import UUID

from django.db.models import QuerySet

from accounts.interface import AuthUser, UserPage
from accounts.models import OAuthApplication, User
from accounts.services import auth_provider


def user_get(*, user_name: str, client_tenant_id: UUID | None = None) -> AuthUser:
    return auth_provider().fetch_user(user_name=user_name, tenant_id=client_tenant_id)


def user_list(*, limit: int, next_token: str | None, client_tenant_id: UUID | None = None) -> UserPage:
    return auth_provider().fetch_all_users(limit=limit, next_token=next_token, tenant_id=client_tenant_id)


def auth_info() -> dict:
    """The public IAuth configuration an application plane bootstraps from (GET /auth-info)."""
    provider = auth_provider()
    return {
        "jwtIssuer": provider.jwt_issuer,
        # SBT's IAuth lists every audience its API accepts (Cognito: the client ids); ours
        # accepts one, the ``aud`` every access token carries, which is also what a machine
        # client may name as ``audience`` when it asks for a token.
        "jwtAudience": [provider.jwt_audience],
        "machineClientAudience": provider.jwt_audience,
        "tokenEndpoint": provider.token_endpoint,
        "wellKnownEndpointUrl": provider.well_known_endpoint_url,
        "userClientId": provider.user_client_id,
        "machineClientId": provider.machine_client_id,
        "scopes": provider.scopes(),
    }


def tenant_user_list(*, tenant_id: UUID) -> QuerySet[User]:
    """The people of one tenant, for the operator's tenant page."""
    return User.objects.filter(tenant_id=tenant_id).order_by("username")


def tenant_oauth_client_list(*, tenant_id: UUID) -> QuerySet[OAuthApplication]:
    """The OAuth clients bound to one tenant."""
    return OAuthApplication.objects.filter(tenant_id=tenant_id).order_by("name", "pk")
