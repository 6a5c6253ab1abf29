"""Routes of the billing API, under /api/v1/."""

urlpatterns = []
