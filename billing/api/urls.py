"""Routes of the billing API, under /api/v1/."""

from django.urls import path

from billing.api.views import BillingWebhookView

urlpatterns = [
    # The path itself is a setting (BILLING_WEBHOOK_PATH), checked by the view so that
    # override_settings and a changed setting take effect without touching the URLconf.
    path("billing/<path:webhook_path>", BillingWebhookView.as_view(), name="billing-webhook"),
]
