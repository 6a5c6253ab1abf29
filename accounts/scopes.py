"""The scopes backend of the authorization server (OAUTH2_PROVIDER["SCOPES_BACKEND_CLASS"])."""

from oauth2_provider.scopes import BaseScopes

from sbt_site.conf import SCOPE_DESCRIPTIONS


class ApplicationScopes(BaseScopes):
    """A client may be granted only the scopes registered on it; asking for none grants all of them."""

    def get_all_scopes(self):
        return dict(SCOPE_DESCRIPTIONS)

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        if application is None:
            return list(SCOPE_DESCRIPTIONS)
        return [scope for scope in application.scope_list if scope in SCOPE_DESCRIPTIONS]

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return self.get_available_scopes(application, request)
