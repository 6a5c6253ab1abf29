"""Routes of the tenants API, under /api/v1/.

Ids are plain path segments, not ``<uuid:>``: a malformed id gets the route's own "not found"
message (as SBT answers) instead of a generic 404.
"""

from django.urls import path

from tenants.api import views

urlpatterns = [
    path("tenant-registrations", views.TenantRegistrationListView.as_view()),
    path("tenant-registrations/<str:registration_id>", views.TenantRegistrationDetailView.as_view()),
    path("tenant-registrations/<str:registration_id>/activate", views.TenantRegistrationActivateView.as_view()),
    path("tenant-registrations/<str:registration_id>/deactivate", views.TenantRegistrationDeactivateView.as_view()),
    path("tenants", views.TenantListView.as_view()),
    path("tenants/<str:tenant_id>", views.TenantDetailView.as_view()),
    path("tenant-config", views.TenantConfigView.as_view()),
    path("tenant-config/<str:tenant_name>", views.TenantConfigByNameView.as_view()),
]
