"""Everything under ``/api/v1/``: each app's ``api/urls.py``."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include("tenants.api.urls")),
    path("", include("events.api.urls")),
    path("", include("metering.api.urls")),
    path("", include("billing.api.urls")),
]
