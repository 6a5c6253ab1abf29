"""The console's admin site: the stock AdminSite with the overview as its index, grouped
navigation, and the console's own pages under /admin/console/."""

from django.contrib import admin
from django.urls import path
from django.utils import timezone

from sbt_site.console import dashboard, navigation, usage_explorer, webhooks


class ConsoleAdminSite(admin.AdminSite):
    site_header = "SBT control plane"
    site_title = "SBT control plane"
    index_title = "Overview"
    index_template = "console/dashboard.html"

    def get_app_list(self, request, app_label=None):
        """Grouped by what operators do; an app's own index page (``app_label``) stays the stock
        one, so /admin/<app>/ keeps working."""
        app_list = super().get_app_list(request, app_label)
        return app_list if app_label else navigation.grouped_app_list(app_list)

    def index(self, request, extra_context=None):
        context = {"overview": dashboard.overview(request=request, now=timezone.now()), **(extra_context or {})}
        return super().index(request, extra_context=context)

    def get_urls(self):
        console = [
            path("console/usage/", self.admin_view(self.usage_explorer), name="console_usage"),
            path(
                "console/deliveries/<uuid:delivery_id>/resend/",
                self.admin_view(self.delivery_resend),
                name="console_delivery_resend",
            ),
        ]
        return console + super().get_urls()

    def usage_explorer(self, request):
        return usage_explorer.usage_explorer_view(request, site=self)

    def delivery_resend(self, request, delivery_id):
        return webhooks.delivery_resend_view(request, delivery_id=delivery_id)
