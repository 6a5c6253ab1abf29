"""Routes of the tenants API, under /api/v1/."""

urlpatterns = []
