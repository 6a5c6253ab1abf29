"""Operators' view of metering: meters, a 30-day usage chart per meter and tenant, raw events
with a cancel action. Everything goes through the same services and selectors as the API."""

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.contrib import admin, messages
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from metering import services
from metering.models import Meter, MeteringCustomer, UsageEvent, UsageEventKey
from metering.selectors import usage_windows
from sbt_site.ids import parse_uuid
from tenants.models import Tenant

CHART_DAYS = 30
ADDITIVE = ("SUM", "COUNT")


@admin.register(Meter)
class MeterAdmin(admin.ModelAdmin):
    list_display = ("api_name", "label", "aggregation", "unit", "active", "usage_link")
    list_filter = ("aggregation", "active")
    search_fields = ("api_name", "label")
    readonly_fields = ("id", "created", "modified")

    @admin.display(description="usage")
    def usage_link(self, meter):
        return format_html(
            '<a href="{}">last {} days</a>', reverse("admin:metering_meter_usage", args=[meter.pk]), CHART_DAYS
        )

    def get_urls(self):
        usage = path("<uuid:meter_id>/usage/", self.admin_site.admin_view(self.usage_view), name="metering_meter_usage")
        return [usage, *super().get_urls()]

    def usage_view(self, request, meter_id):
        meter = get_object_or_404(Meter, pk=meter_id)
        tenant_id = parse_uuid(request.GET.get("tenant"))
        end = timezone.now()
        start = (end - timedelta(days=CHART_DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        windows = usage_windows(meter=meter, tenant_id=tenant_id, start=start, end=end, interval="DAY")
        per_day: dict = defaultdict(Decimal)
        # bars over all tenants only for additive meters: a MAX or LATEST summed over tenants means nothing
        if tenant_id is not None or meter.aggregation in ADDITIVE:
            for window in windows:
                per_day[window.window_start.date()] += window.value
        days = [(start + timedelta(days=offset)).date() for offset in range(CHART_DAYS)]
        values = [per_day.get(day, Decimal(0)) for day in days]
        peak = max(values, default=Decimal(0)) or Decimal(1)
        bars = [
            {"x": index * 22, "height": float(value / peak * 180), "y": 200 - float(value / peak * 180),
             "day": day, "value": value}
            for index, (day, value) in enumerate(zip(days, values, strict=True))
        ]  # fmt: skip
        context = {
            **self.admin_site.each_context(request),
            "title": f"Usage of {meter.api_name}, last {CHART_DAYS} days (UTC)",
            "meter": meter,
            "bars": bars,
            "total": sum(values) if meter.aggregation in ADDITIVE else None,
            "tenants": Tenant.objects.order_by("name")[:500],
            "tenant_id": tenant_id,
            "all_tenants_allowed": meter.aggregation in ADDITIVE,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/metering/meter_usage.html", context)


@admin.register(MeteringCustomer)
class MeteringCustomerAdmin(admin.ModelAdmin):
    list_display = ("tenant", "created", "offboarded")
    readonly_fields = ("tenant", "created", "modified", "offboarded")


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "tenant_id", "meter", "timestamp", "value", "ingested_at", "cancelled_at")
    list_filter = ("meter", ("cancelled_at", admin.EmptyFieldListFilter))
    search_fields = ("event_id",)
    search_help_text = "An event id or a tenant id (exact)."
    list_select_related = ("meter",)
    show_full_result_count = False  # counting a partitioned table of millions of rows is slow
    actions = ["cancel_events"]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        tenant_id = parse_uuid(term)
        if tenant_id is not None:
            return queryset.filter(tenant_id=tenant_id), False
        # through the key store, which knows each event's timestamp (so its partition)
        match = Q(pk__in=[])
        for key_tenant, timestamp in UsageEventKey.objects.filter(event_id=term).values_list("tenant_id", "timestamp"):
            match |= Q(tenant_id=key_tenant, timestamp=timestamp, event_id=term)
        return queryset.filter(match), False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # events are cancelled, never deleted: they stay for audit

    @admin.action(description="Cancel the selected usage events")
    def cancel_events(self, request, queryset):
        by_tenant = defaultdict(list)
        for tenant_id, event_id in queryset.values_list("tenant_id", "event_id"):
            by_tenant[tenant_id].append(event_id)
        cancelled = sum(
            services.usage_events_cancel(client_tenant_id=None, tenant_id=tenant_id, event_ids=event_ids)
            for tenant_id, event_ids in by_tenant.items()
        )
        self.message_user(request, f"Cancelled {cancelled} events; rollups adjusted.", messages.SUCCESS)
