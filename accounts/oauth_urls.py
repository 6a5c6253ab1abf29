"""The authorization server under /o/: django-oauth-toolkit's endpoints, minus the ones we don't offer.

DOT's default URL list also serves its application-management pages (any logged-in user could
register clients with any grant), device flow and dynamic registration; none of those is part
of this control plane, so only the endpoints below are mounted. The views that differ from
DOT's (login, authorization, and the lockout of the client endpoints) are in
accounts/oauth_views.py.
"""

from django.urls import path
from oauth2_provider import urls as dot_urls

from accounts import oauth_views
from accounts.oauth_errors import query_checked

app_name = "oauth2_provider"

urlpatterns = [
    path("login/", oauth_views.LoginView.as_view(), name="login"),
    path("authorize/", oauth_views.AuthorizationView.as_view(), name="authorize"),
    path("token/", oauth_views.TokenView.as_view(), name="token"),
    path("revoke_token/", oauth_views.RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", oauth_views.IntrospectTokenView.as_view(), name="introspect"),
    *dot_urls.metadata_urlpatterns,
    # RP-initiated logout is off (OIDC_RP_INITIATED_LOGOUT_ENABLED), so its route is not mounted:
    # 404, where DOT's view would raise ImproperlyConfigured (a 500) with DEBUG on.
    *[pattern for pattern in dot_urls.oidc_urlpatterns if pattern.name != "rp-initiated-logout"],
]
urlpatterns = [query_checked(pattern) for pattern in urlpatterns]
