"""The OAuth2 validator (OAUTH2_PROVIDER["OAUTH2_VALIDATOR_CLASS"]): DOT's, with the control
plane's rules on disabled users, inactive tenants, role scopes, JWT-shaped bearer tokens and
authorization codes (stored as digests; a replayed one revokes what it produced)."""

from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError

from accounts.scopes import scopes_for_user
from accounts.tokens.codes import code_digest, code_exchange_record, code_replay_revoke, code_tokens_revoke
from accounts.tokens.lookup import access_token_load


class SbtOAuth2Validator(OAuth2Validator):
    """DOT's validator, refusing every grant and token of a disabled user or of a user of an
    inactive tenant (CONTRACT.md "Users"; a tenant-bound client of an inactive tenant is
    refused by ``OAuthApplication.is_usable``), and never issuing a user more than its role's
    scopes (SBT["ROLE_SCOPES"]).

    Authorization codes: DOT looks its Grant rows up by the code; every such lookup here passes
    the code's digest instead (accounts/tokens/codes.py), so the table never holds a usable code.
    """

    @staticmethod
    def _user_disabled(user) -> bool:
        return user is not None and not (user.is_active and user.tenant_active)

    # --- authorization codes ------------------------------------------------------------------

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        # ``code`` is also what oauthlib puts in the redirect: store the digest from a copy.
        super().save_authorization_code(client_id, {**code, "code": code_digest(code["code"])}, request)

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        digest = code_digest(code)
        valid = super().validate_code(client_id, digest, client, request, *args, **kwargs)
        if not valid:
            # RFC 6749 §4.1.2: a code used twice has leaked; what it produced is revoked.
            code_replay_revoke(digest=digest, application=client)
            return False
        if self._user_disabled(request.user):
            return False
        # The code was issued with role-narrowed scopes; narrowing again holds even if the role
        # changed behind the API's back (a role change through it deletes the codes).
        request.scopes = scopes_for_user(request.scopes, request.user)
        return bool(request.scopes)

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, *args, **kwargs):
        return super().confirm_redirect_uri(client_id, code_digest(code), redirect_uri, client, *args, **kwargs)

    def get_code_challenge(self, code, request):
        return super().get_code_challenge(code_digest(code), request)

    def get_code_challenge_method(self, code, request):
        return super().get_code_challenge_method(code_digest(code), request)

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request):
        return super().get_authorization_code_scopes(client_id, code_digest(code), redirect_uri, request)

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request):
        return super().get_authorization_code_nonce(client_id, code_digest(code), redirect_uri, request)

    def _check_and_set_request_resource(self, request):
        # DOT reads the Grant's resource indicators by ``request.code`` here.
        code = request.code
        if request.grant_type == "authorization_code" and code:
            request.code = code_digest(code)
        try:
            super()._check_and_set_request_resource(request)
        finally:
            request.code = code

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        refresh_token = super()._create_refresh_token(request, refresh_token_code, access_token, previous_refresh_token)
        if request.grant_type == "authorization_code":
            request.code_exchange_tokens = (access_token, refresh_token.token_family)
        return refresh_token

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        # oauthlib calls this once the tokens are saved. Deleting the Grant is what makes one of
        # two concurrent exchanges of a code lose (InvalidGrantError): the loser's tokens, never
        # delivered, are revoked with whatever the winner has recorded by then (a replay).
        digest = code_digest(code)
        access_token, token_family = getattr(request, "code_exchange_tokens", (None, None))
        try:
            super().invalidate_authorization_code(client_id, digest, request, *args, **kwargs)
        except InvalidGrantError:
            code_tokens_revoke(access_token_id=getattr(access_token, "pk", None), token_family=token_family)
            code_replay_revoke(digest=digest, application=request.client)
            raise
        code_exchange_record(
            digest=digest,
            application=request.client,
            user=request.user,
            access_token=access_token,
            token_family=token_family,
        )

    # --- refresh and bearer tokens -------------------------------------------------------------

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
        # DOT refuses a token whose client is not usable (OAuthApplication.is_usable: a client of
        # an inactive tenant); the lookup brought both tenants' ``active`` along, so neither
        # check costs a query.
        valid = super().validate_bearer_token(token, scopes, request)
        if valid and self._user_disabled(request.access_token.user):
            return False
        return valid
