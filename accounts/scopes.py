"""Which scopes a token may carry: the client's (the scopes backend of the authorization server,
OAUTH2_PROVIDER["SCOPES_BACKEND_CLASS"]) and, for a token issued to a user, the user's role's
(SBT["ROLE_SCOPES"])."""

from oauth2_provider.scopes import BaseScopes

from sbt_site.conf import SCOPE_DESCRIPTIONS, sbt_settings

# Registered on a client (its allowed scopes), lets it introspect every token at /o/introspect/
# (accounts/introspection.py); without it a client introspects only its own tokens. It is a
# permission of the client, never carried by a token: it is not one of SCOPE_DESCRIPTIONS.
INTROSPECTION_SCOPE = "introspection"


def is_tenant_role(role: str) -> bool:
    """Whether ``role`` only makes sense bound to a tenant (SBT["TENANT_ROLES"])."""
    return role in sbt_settings.TENANT_ROLES


def role_scopes(role: str) -> list[str]:
    """The most a token issued to a user with ``role`` may carry: nothing for a role missing
    from SBT["ROLE_SCOPES"] (deny by default)."""
    scopes = sbt_settings.ROLE_SCOPES.get(role, [])
    return [scope for scope in scopes if scope in SCOPE_DESCRIPTIONS]


def user_scopes(role: str, tenant_id) -> list[str]:
    """The most a token issued to a user may carry: its role's scopes, and none for a tenant
    role without a tenant (unbound, its token would reach every tenant)."""
    if tenant_id is None and is_tenant_role(role):
        return []
    return role_scopes(role)


def scopes_for_user(scopes, user) -> list[str]:
    """``scopes`` narrowed to what ``user``'s role allows, in their original order."""
    allowed = set(user_scopes(user.role, user.tenant_id))
    return [scope for scope in scopes if scope in allowed]


def _token_user(request):
    """The user a token is being issued to, or None for a machine (client-credentials) token.

    ``request`` is oauthlib's request: DOT puts the logged-in user on it when it creates the
    authorization response and when it validates a code or a refresh token.
    """
    if request is None or getattr(request, "grant_type", None) == "client_credentials":
        return None
    user = getattr(request, "user", None)
    return user if getattr(user, "pk", None) is not None else None


class ApplicationScopes(BaseScopes):
    """A client may be granted only the scopes registered on it, and a user only those of its
    role as well; asking for none grants all of those."""

    def get_all_scopes(self):
        return dict(SCOPE_DESCRIPTIONS)

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        if application is None:
            return list(SCOPE_DESCRIPTIONS)
        scopes = [scope for scope in application.scope_list if scope in SCOPE_DESCRIPTIONS]
        user = _token_user(request)
        return scopes if user is None else scopes_for_user(scopes, user)

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return self.get_available_scopes(application, request)
