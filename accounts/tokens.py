"""Access tokens as RS256-signed JWTs (RFC 9068), and the validator that checks them.

django-oauth-toolkit calls ``signed_access_token`` (OAUTH2_PROVIDER["ACCESS_TOKEN_GENERATOR"])
for every access token it issues. The JWT lets an application plane verify a token offline
against the JWKS; the control plane itself still looks every presented token up in its database
(by checksum), so a revoked token stops working at once whatever its signature says.
"""

import functools
import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from jwcrypto import jwt
from oauth2_provider.models import get_access_token_model, get_application_model, set_token_value
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.utils import jwk_from_pem
from oauthlib.common import Request as OAuthlibRequest

from accounts.scopes import scopes_for_user
from sbt_site.conf import sbt_settings
from sbt_site.db import execute_prepared, in_list, model_columns


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


@functools.cache
def _token_lookup() -> tuple[str, list]:
    """DOT's ``AccessToken.objects.select_related("application", "user")`` lookup by checksum,
    written once (see sbt_site/db.py): it runs on every API request. Any number of checksums,
    one prepared statement."""
    token, application, user = (
        model_columns(get_access_token_model(), "t"),
        model_columns(get_application_model(), "a"),
        model_columns(get_user_model(), "u"),
    )
    quote = connection.ops.quote_name
    table = {part.alias: quote(part.model._meta.db_table) for part in (token, application, user)}
    pk = {part.alias: quote(part.model._meta.pk.column) for part in (token, application, user)}
    sql = (
        f"SELECT {token.sql}, {application.sql}, {user.sql} FROM {table['t']} t"  # noqa: S608 (names from the models)
        f" LEFT JOIN {table['a']} a ON a.{pk['a']} = t.application_id"
        f" LEFT JOIN {table['u']} u ON u.{pk['u']} = t.user_id"
        " WHERE {}"
    )
    return sql, [token, application, user]


def access_tokens_load(raw_tokens) -> dict:
    """{raw token: the stored access token with its application and user, as DOT loads it} for
    those of ``raw_tokens`` that are stored, in one query."""
    sql, parts = _token_lookup()
    by_checksum = {hashlib.sha256(raw.encode("utf-8")).hexdigest(): raw for raw in raw_tokens}
    if not by_checksum:
        return {}
    condition, params = in_list("t.token_checksum", list(by_checksum))
    found = {}
    for row in execute_prepared(sql.format(condition), params):
        instances, offset = [], 0
        for part in parts:
            instances.append(part.load(row[offset : offset + len(part)]))
            offset += len(part)
        token, application, user = instances
        # what select_related caches: token.application and token.user cost no further query
        token._state.fields_cache["application"] = application
        token._state.fields_cache["user"] = user
        found[by_checksum[token.token_checksum]] = token
    return found


def access_token_load(raw_token: str):
    """The stored access token for ``raw_token`` with its application and user, or None."""
    return access_tokens_load([raw_token]).get(raw_token)


def token_tenant_id(token) -> uuid.UUID | None:
    """The tenant an access token is limited to, or None: its OAuth client's tenant (a
    tenant-bound client), else the tenant of the user it was issued to."""
    if token.application is not None and token.application.tenant_id is not None:
        return token.application.tenant_id
    return token.user.tenant_id if token.user is not None else None


@dataclass(frozen=True)
class BearerCheck:
    """A presented bearer token, to be checked as the API's authentication and the route's
    scope check would: the request's URI and method (what the validator reads of a request) and
    the scope the route needs."""

    token: str
    uri: str
    method: str
    scope: str


def bearer_checks(checks: list[BearerCheck]) -> list:
    """Per check, the access token when it passes (the validator's checks, then the scope), or
    None; every token is looked up in one query. For callers that authenticate many requests
    at once (metering's group commit); one request is checked by BearerTokenAuthentication."""
    loaded = access_tokens_load({check.token for check in checks})
    passed = {}
    for check in dict.fromkeys(checks):  # the requests of a group mostly present one token
        validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS()
        validator.preloaded_tokens = loaded
        request = OAuthlibRequest(check.uri, http_method=check.method)
        valid = validator.validate_bearer_token(check.token, [], request)
        passed[check] = request.access_token if valid and request.access_token.allow_scopes([check.scope]) else None
    return [passed[check] for check in checks]


class SbtOAuth2Validator(OAuth2Validator):
    """DOT's validator, refusing every grant and token of a disabled user (CONTRACT.md "Users"),
    and never issuing a user more than its role's scopes (SBT["ROLE_SCOPES"])."""

    @staticmethod
    def _user_disabled(user) -> bool:
        return user is not None and not user.is_active

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        valid = super().validate_code(client_id, code, client, request, *args, **kwargs)
        if not valid or self._user_disabled(request.user):
            return False
        # The code was issued with role-narrowed scopes; narrowing again holds even if the role
        # changed behind the API's back (a role change through it deletes the codes).
        request.scopes = scopes_for_user(request.scopes, request.user)
        return bool(request.scopes)

    def get_original_scopes(self, refresh_token, request, *args, **kwargs):
        # A refresh never widens, and narrows to the user's current role: oauthlib refuses a
        # requested scope outside these and otherwise issues exactly these.
        original = super().get_original_scopes(refresh_token, request, *args, **kwargs)
        original = original.split() if isinstance(original, str) else list(original)
        user = request.refresh_token_instance.user
        return " ".join(scopes_for_user(original, user) if user is not None else original)

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        return valid and not self._user_disabled(request.user)

    def validate_jwt_bearer_token(self, token, scopes, request):
        # oauthlib's OpenID server sends every JWT-shaped bearer token here, and DOT would accept
        # an ID token as an API credential. Our access tokens are JWTs: they are access tokens,
        # looked up like any other, and an ID token is never one.
        return self.validate_bearer_token(token, scopes, request)

    preloaded_tokens: dict | None = None  # {raw token: AccessToken} already looked up (bearer_checks)

    def _load_access_token(self, token):
        if self.preloaded_tokens is not None:
            return self.preloaded_tokens.get(token)
        return access_token_load(token)

    def validate_bearer_token(self, token, scopes, request):
        valid = super().validate_bearer_token(token, scopes, request)
        if valid and self._user_disabled(request.access_token.user):
            return False
        return valid
