from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from oauth2_provider.views import ConnectDiscoveryInfoView

from sbt_site.api.exceptions import api_not_found
from sbt_site.health import healthz, readyz
from sbt_site.metrics_endpoint import metrics

admin.site.site_header = "SBT control plane"
admin.site.site_title = "SBT control plane"
admin.site.index_title = "Operations"

urlpatterns = [
    # A newcomer opening the server's address lands in the console (its login page first).
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False), name="home"),
    path("admin/", admin.site.urls),
    path("o/", include("accounts.oauth_urls", namespace="oauth2_provider")),
    # OpenID discovery at the site root too (CONTRACT.md); the issuer it names is still /o.
    path(".well-known/openid-configuration", ConnectDiscoveryInfoView.as_view(), name="openid-configuration"),
    path("api/v1/", include("sbt_site.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/schema/swagger-ui/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/schema/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("readyz", readyz, name="readyz"),
    # Last: any other /api/ path is the envelope's 404, also with DEBUG on (where Django would
    # otherwise answer with its HTML debug page instead of handler404).
    re_path(r"^api/", api_not_found),
]

handler400 = "sbt_site.api.exceptions.json_or_html_400"
handler404 = "sbt_site.api.exceptions.json_or_html_404"
handler500 = "sbt_site.api.exceptions.json_or_html_500"
