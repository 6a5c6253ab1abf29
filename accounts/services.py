"""Writes of the accounts app: OAuth clients (and, later, users)."""

from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from oauth2_provider.generators import generate_client_secret

from accounts.models import OAuthApplication
from sbt_site.conf import SCOPE_DESCRIPTIONS
from sbt_site.errors import InvalidInput, NotFound
from tenants.models import Tenant


def _validated_scopes(scopes: list[str]) -> list[str]:
    unknown = [scope for scope in scopes if scope not in SCOPE_DESCRIPTIONS]
    if unknown:
        known = " ".join(SCOPE_DESCRIPTIONS)
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
    )
    return application, secret
