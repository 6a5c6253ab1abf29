"""Access tokens: RS256-signed JWTs (signing.py), the OAuth2 validator that checks them
(validator.py), and the database lookup of presented tokens (lookup.py).

Every public name is re-exported here, so ``accounts.tokens.signed_access_token`` and
``accounts.tokens.SbtOAuth2Validator`` (the dotted paths OAUTH2_PROVIDER names) and every
``from accounts.tokens import ...`` keep working.
"""

from accounts.tokens.lookup import (
    BearerCheck,
    access_token_load,
    access_tokens_load,
    bearer_checks,
    token_tenant_id,
)
from accounts.tokens.signing import (
    access_token_claims,
    access_token_issue,
    jwt_audience,
    jwt_issuer,
    sign,
    signed_access_token,
    signing_key,
)
from accounts.tokens.validator import SbtOAuth2Validator

__all__ = [
    "BearerCheck",
    "SbtOAuth2Validator",
    "access_token_claims",
    "access_token_issue",
    "access_token_load",
    "access_tokens_load",
    "bearer_checks",
    "jwt_audience",
    "jwt_issuer",
    "sign",
    "signed_access_token",
    "signing_key",
    "token_tenant_id",
]
