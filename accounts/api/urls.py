"""Routes of the accounts API, under /api/v1/."""

from django.urls import path

from accounts.api import views

urlpatterns = [
    path("auth-info", views.AuthInfoView.as_view(), name="auth-info"),
    path("users", views.UserListView.as_view(), name="user-list"),
    path("users/<str:user_name>", views.UserDetailView.as_view(), name="user-detail"),
    path("users/<str:user_name>/enable", views.UserEnableView.as_view(), name="user-enable"),
    path("users/<str:user_name>/disable", views.UserDisableView.as_view(), name="user-disable"),
]
