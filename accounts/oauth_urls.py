"""The authorization server under /o/: django-oauth-toolkit's endpoints, minus the ones we don't offer.

DOT's default URL list also serves its application-management pages (any logged-in user could
register clients with any grant), device flow and dynamic registration; none of those is part
of this control plane, so only the endpoints below are mounted.
"""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy
from oauth2_provider import urls as dot_urls
from oauth2_provider import views as dot_views
from oauth2_provider.exceptions import OAuthToolkitError
from oauthlib import oauth2

from accounts.introspection import IntrospectTokenView
from accounts.oauth_errors import query_checked
from accounts.scopes import scopes_for_user


class LoginView(auth_views.LoginView):
    """The login page of the authorization-code flow: the admin's look, open to every enabled
    user (the admin's own login accepts staff only)."""

    template_name = "admin/login.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(admin.site.each_context(self.request))
        context.update(title="Log in", app_path=self.request.get_full_path())
        return context


class AuthorizationView(dot_views.AuthorizationView):
    login_url = reverse_lazy("oauth2_provider:login")

    def validate_authorization_request(self, request):
        """The requested (or default) scopes, narrowed to what the user's role allows.

        RFC 6749 §3.3 lets the server grant less than was asked; the token response then names
        the scopes granted. Narrowing here, before the consent screen, makes the screen, the code,
        the token response and the JWT agree. Nothing left is ``invalid_scope``.
        """
        scopes, credentials = super().validate_authorization_request(request)
        if request.user.is_authenticated:
            scopes = scopes_for_user(scopes, request.user)
            if not scopes:
                error = oauth2.InvalidScopeError(
                    description="None of the requested scopes is allowed for this user's role",
                    state=credentials.get("state"),
                )
                raise OAuthToolkitError(error=error, redirect_uri=credentials["redirect_uri"])
        return scopes, credentials


app_name = "oauth2_provider"

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("authorize/", AuthorizationView.as_view(), name="authorize"),
    path("token/", dot_views.TokenView.as_view(), name="token"),
    path("revoke_token/", dot_views.RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", IntrospectTokenView.as_view(), name="introspect"),
    *dot_urls.metadata_urlpatterns,
    # RP-initiated logout is off (OIDC_RP_INITIATED_LOGOUT_ENABLED), so its route is not mounted:
    # 404, where DOT's view would raise ImproperlyConfigured (a 500) with DEBUG on.
    *[pattern for pattern in dot_urls.oidc_urlpatterns if pattern.name != "rp-initiated-logout"],
]
urlpatterns = [query_checked(pattern) for pattern in urlpatterns]
