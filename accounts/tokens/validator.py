"""The OAuth2 validator (OAUTH2_PROVIDER["OAUTH2_VALIDATOR_CLASS"]): DOT's, with the control
plane's rules on disabled users, role scopes and JWT-shaped bearer tokens."""

from oauth2_provider.oauth2_validators import OAuth2Validator

from accounts.scopes import scopes_for_user
from accounts.tokens.lookup import access_token_load


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
