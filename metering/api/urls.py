"""Routes of the metering API, under /api/v1/."""

from django.urls import path

from metering.api import firehose, views

urlpatterns = [
    path("meters", views.MeterListView.as_view(), name="meter-list"),
    path("meters/<uuid:meter_id>", views.MeterDetailView.as_view(), name="meter-detail"),
    path("usage", views.UsageView.as_view(), name="usage"),
    # Amazon Data Firehose's HTTP endpoint destination (its own protocol; not in the OpenAPI document).
    path("usage/firehose", firehose.FirehoseDeliveryView.as_view(), name="usage-firehose"),
    path("usage/<uuid:meter_id>", views.UsageQueryView.as_view(), name="usage-query"),
]
