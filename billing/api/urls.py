"""Routes of the billing API, under /api/v1/."""

from django.urls import path

from billing.api.views import BillingCustomerDetailView, BillingCustomerListView, BillingWebhookView, UsagePushListView

urlpatterns = [
    path("billing/customers", BillingCustomerListView.as_view(), name="billing-customers"),
    path("billing/customers/<uuid:tenant_id>", BillingCustomerDetailView.as_view(), name="billing-customer"),
    path("billing/usage-pushes", UsagePushListView.as_view(), name="billing-usage-pushes"),
    # The webhook path itself is a setting (BILLING_WEBHOOK_PATH), checked by the view so that
    # a changed setting takes effect without touching the URLconf; it must not be one of the above.
    path("billing/<path:webhook_path>", BillingWebhookView.as_view(), name="billing-webhook"),
]
