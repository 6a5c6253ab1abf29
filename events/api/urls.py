"""Routes of the events API, under /api/v1/."""

from django.urls import path

from events.api.views import EventListView

urlpatterns = [
    path("events", EventListView.as_view(), name="events"),
]
