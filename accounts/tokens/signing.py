"""Access tokens as RS256-signed JWTs (RFC 9068): their claims, their signature, and issuing one
outside the OAuth flows.

django-oauth-toolkit calls ``signed_access_token`` (OAUTH2_PROVIDER["ACCESS_TOKEN_GENERATOR"])
for every access token it issues. The JWT lets an application plane verify a token offline
against the JWKS; the control plane itself still looks every presented token up in its database
(by checksum, lookup.py), so a revoked token stops working at once whatever its signature says.
"""

import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from jwcrypto import jwt
from oauth2_provider.models import get_access_token_model, set_token_value
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.utils import jwk_from_pem

from sbt_site.conf import sbt_settings
from sbt_site.metrics import TOKENS_ISSUED


def jwt_issuer() -> str:
    """The ``iss`` of every token: the issuer OIDC discovery publishes."""
    return oauth2_settings.OIDC_ISS_ENDPOINT or settings.SBT_PUBLIC_URL + "/o"


def jwt_audience() -> str:
    """The ``aud`` of every access token: the control-plane API, unless configured otherwise."""
    return sbt_settings.AUTH_JWT_AUDIENCE or settings.SBT_PUBLIC_URL + "/api/v1/"


def signing_key():
    return jwk_from_pem(oauth2_settings.OIDC_RSA_PRIVATE_KEY)


def access_token_claims(*, application, user, scope: str, lifetime: int, now: int | None = None) -> dict:
    """The claims of an access token issued to ``application`` (for ``user``, or for itself)."""
    now = int(time.time()) if now is None else now
    tenant_id = application.tenant_id if application is not None else None
    if tenant_id is None and user is not None:
        tenant_id = user.tenant_id
    claims = {
        "iss": jwt_issuer(),
        "aud": jwt_audience(),
        "sub": str(user.pk) if user is not None else application.client_id,
        "client_id": application.client_id,
        "scope": scope,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    if user is not None:
        claims["username"] = user.get_username()
    if tenant_id is not None:
        claims["tenantId"] = str(tenant_id)
    return claims


def sign(claims: dict) -> str:
    key = signing_key()
    token = jwt.JWT(header={"alg": "RS256", "typ": "at+jwt", "kid": key.thumbprint()}, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


def signed_access_token(request) -> str:
    """ACCESS_TOKEN_GENERATOR: called by oauthlib with its request once the grant is validated."""
    user = request.user if getattr(request.user, "pk", None) is not None else None
    if request.grant_type == "client_credentials":
        user = None
    claims = access_token_claims(
        application=request.client,
        user=user,
        scope=" ".join(request.scopes or []),
        lifetime=int(request.expires_in or oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS),
    )
    TOKENS_ISSUED.labels(request.client.client_id).inc()
    return sign(claims)


def access_token_issue(*, application, scope: str, user=None, lifetime: int | None = None):
    """Issue an access token outside the OAuth flows (operator tooling, test fixtures).

    Returns the stored ``AccessToken`` (kept hashed) and the JWT, which exists only here.
    """
    lifetime = oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS if lifetime is None else lifetime
    raw = sign(access_token_claims(application=application, user=user, scope=scope, lifetime=lifetime))
    token = get_access_token_model()(
        application=application, user=user, scope=scope, expires=timezone.now() + timedelta(seconds=lifetime)
    )
    set_token_value(token, raw)
    token.save()
    return token, raw
