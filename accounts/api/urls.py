"""Routes of the accounts API, under /api/v1/."""

urlpatterns = []
