"""Routes of the events API, under /api/v1/."""

urlpatterns = []
