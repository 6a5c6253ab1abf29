"""Operators' view of billing: customers, usage pushes (retry, run a push now) and webhook
events (reprocess).

All three are written by the billing services only (onboarding and offboarding handlers, the
usage push, the webhook endpoint): read-only here, never deleted, changed through the actions.
"""

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Sum
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing import services
from billing.models import BillingCustomer, BillingUser, UsagePush, WebhookEvent
from sbt_site.console_confirm import TEMPLATE as CONFIRMATION_TEMPLATE
from sbt_site.console_format import plain_number
from sbt_site.console_ledger import LedgerAdmin
from sbt_site.errors import ServiceError


class BillingUserInline(admin.TabularInline):
    model = BillingUser
    extra = 0
    fields = ("user_name", "email", "provider_user_id", "status", "created")
    readonly_fields = fields
    can_delete = False


@admin.register(BillingCustomer)
class BillingCustomerAdmin(LedgerAdmin):
    list_display = ("tenant", "provider", "provider_link", "status", "subscription_status", "modified")
    list_select_related = ("tenant",)
    list_filter = ("provider", "status", "subscription_status", "modified")
    search_fields = ("tenant__name", "provider_customer_id", "provider_subscription_id", "tenant__id")
    readonly_fields = (
        "tenant",
        "provider",
        "provider_link",
        "provider_customer_id",
        "provider_subscription_id",
        "subscription_status",
        "billed_prices",
        "status",
        "status_changed_at",
        "last_error",
        "created",
        "modified",
    )
    inlines = [BillingUserInline]
    actions = ["sync_subscription"]

    @admin.action(description="Sync the selected customers' subscriptions with their tenants' prices")
    def sync_subscription(self, request, queryset):
        results = services.billing_subscriptions_sync(tenant_ids=list(queryset.values_list("tenant_id", flat=True)))
        for tenant_id, error in results:
            if error:
                self.message_user(request, f"{tenant_id}: {error}", messages.ERROR)
        synced = sum(1 for _, error in results if not error)
        self.message_user(request, f"{synced} of {len(results)} subscription(s) in sync with their tenants' prices.")

    @admin.display(description="provider customer")
    def provider_link(self, customer):
        if customer.provider == "stripe" and customer.provider_customer_id:
            return format_html(
                '<a href="https://dashboard.stripe.com/customers/{}" target="_blank" rel="noopener">{}</a>',
                customer.provider_customer_id,
                customer.provider_customer_id,
            )
        return customer.provider_customer_id or "-"


def push_plan(result) -> list[str]:
    """What a dry run of the usage push found to send, one line per tenant and meter."""
    return [
        f"{line.tenant_name} / {line.meter_api_name}: {line.sent} new window(s), {line.corrected} correction(s), "
        f"{line.retried} resend(s), value {plain_number(line.value_sent)}"
        for line in result.lines
        if line.sent or line.corrected or line.retried
    ]


@admin.register(UsagePush)
class UsagePushAdmin(LedgerAdmin):
    change_list_template = "admin/billing/usagepush/change_list.html"
    list_display = ("tenant", "meter_api_name", "window_start", "kind", "amount", "total", "status", "sent_at")
    list_select_related = ("customer__tenant",)
    list_filter = ("status", "kind", "meter_api_name")
    search_fields = ("identifier", "customer__tenant__name", "meter_api_name")
    date_hierarchy = "window_start"
    readonly_fields = [field.name for field in UsagePush._meta.fields]
    actions = ["retry"]

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context=extra_context)
        # The sums follow the operator's filters: they are computed on the changelist's queryset.
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None:
            totals = changelist.queryset.filter(status=UsagePush.Status.SENT).aggregate(total=Sum("value"))
            failed = changelist.queryset.filter(status=UsagePush.Status.FAILED).count()
            messages.info(request, f"Sent value in this view: {totals['total'] or 0}; failed pushes: {failed}.")
        return response

    def get_urls(self):
        push_now = self.admin_site.admin_view(self.push_now_view)
        return [path("push-now/", push_now, name="billing_usagepush_push_now"), *super().get_urls()]

    def push_now_view(self, request):
        """ "Run a usage push now": what the periodic task billing.usage_push does, on demand. A
        dry run of the same service says what will be sent; the push runs once confirmed."""
        changelist_url = reverse("admin:billing_usagepush_changelist")
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        if request.method == "POST":
            try:
                result = services.usage_push_run()
            except (ServiceError, ImproperlyConfigured) as exc:
                self.message_user(request, f"Usage push not run: {getattr(exc, 'message', exc)}", messages.ERROR)
                return HttpResponseRedirect(changelist_url)
            for line in result.lines:
                for error in line.errors:
                    # Not "{tenant}: …": the admin capitalises a message's first letter (acme → Acme).
                    self.message_user(
                        request, f"Not sent for {line.tenant_name} / {line.meter_api_name}: {error}", messages.ERROR
                    )
            level = messages.WARNING if result.failed else messages.SUCCESS
            self.message_user(
                request,
                f"Usage push: {result.sent} sent, {result.failed} failed, "
                f"value {plain_number(result.total('value_sent'))}.",
                level,
            )
            return HttpResponseRedirect(changelist_url)
        try:
            provider = services.billing_provider()
            plan = push_plan(services.usage_push_run(dry_run=True))
        except (ServiceError, ImproperlyConfigured) as exc:
            self.message_user(request, f"Usage push not run: {getattr(exc, 'message', exc)}", messages.ERROR)
            return HttpResponseRedirect(changelist_url)
        context = {
            **self.admin_site.each_context(request),
            "title": "Run a usage push now?",
            "objects": plan or ["Nothing new to send: every closed hour is billed already."],
            "consequences": [
                "Every closed hourly window since the last push is sent to the billing provider "
                f"({provider.name}) for each active billing customer and price-mapped meter, "
                "as the periodic task billing.usage_push does.",
                "Windows whose usage changed since they were sent are corrected; failed pushes are retried.",
                "Sending again later sends nothing twice (each window has its own identifier).",
            ],
            "button": "Yes, push now",
            "with_reason": False,
            "opts": self.model._meta,
            "cancel_url": changelist_url,
        }
        return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)

    @admin.display(description="tenant", ordering="customer__tenant__name")
    def tenant(self, push):
        return push.customer.tenant.name

    @admin.display(description="value", ordering="value")
    def amount(self, push):
        return plain_number(push.value)

    @admin.display(description="window total", ordering="window_total")
    def total(self, push):
        return plain_number(push.window_total)

    @admin.action(description="Retry the selected failed, pending or cancelling pushes")
    def retry(self, request, queryset):
        try:
            result = services.usage_pushes_retry(push_ids=list(queryset.values_list("pk", flat=True)))
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        level = messages.WARNING if result.failed else messages.SUCCESS
        self.message_user(request, f"Retried: {result.sent} sent, {result.failed} failed.", level)


@admin.register(WebhookEvent)
class WebhookEventAdmin(LedgerAdmin):
    list_display = ("provider_event_id", "event_type", "provider", "status", "attempts", "received", "processed_at")
    list_filter = ("status", "event_type", "provider")
    date_hierarchy = "received"
    search_fields = ("provider_event_id", "event_type")
    readonly_fields = [field.name for field in WebhookEvent._meta.fields]
    actions = ["reprocess"]

    @admin.action(description="Reprocess the selected webhook events")
    def reprocess(self, request, queryset):
        ids = list(queryset.values_list("provider_event_id", flat=True))
        events = services.webhook_events_reprocess(event_ids=ids)
        failed = sum(1 for event in events if event.status == WebhookEvent.Status.FAILED)
        level = messages.WARNING if failed else messages.SUCCESS
        self.message_user(request, f"Reprocessed {len(events)} event(s); {failed} failed.", level)
