"""Routes of the metering API, under /api/v1/."""

urlpatterns = []
