"""The site's routes with POST /usage answered by DRF alone (no ``_ingest_fast``): the reference
the fast path's answers are compared with in test_fast_ingest.py."""

from django.urls import include, path

from metering.api.views import UsageView

urlpatterns = [
    # DRF's own as_view for UsageView, without UsageView's wrapper
    path("api/v1/usage", super(UsageView, UsageView).as_view()),
    path("", include("sbt_site.urls")),
]
