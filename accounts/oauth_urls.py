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


app_name = "oauth2_provider"

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("authorize/", AuthorizationView.as_view(), name="authorize"),
    path("token/", dot_views.TokenView.as_view(), name="token"),
    path("revoke_token/", dot_views.RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", dot_views.IntrospectTokenView.as_view(), name="introspect"),
    *dot_urls.metadata_urlpatterns,
    *dot_urls.oidc_urlpatterns,
]
