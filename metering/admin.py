"""Operators' view of metering: meters (created and changed through the meter services, whose
refusals show on the form), a 30-day usage chart per meter and tenant, metering customers, and
raw events with a cancel action. Everything goes through the same services and selectors as the
API."""

import dataclasses
from collections import defaultdict
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from audit.context import reason_given
from metering import services
from metering.interface import MeterSpec
from metering.models import Meter, MeteringCustomer, RollupZone, UsageEvent, UsageEventKey
from metering.selectors import usage_daily_chart
from sbt_site.console_confirm import action_confirmation, action_confirmed, posted_reason
from sbt_site.console_format import plain_number
from sbt_site.console_ledger import LedgerAdmin
from sbt_site.errors import ServiceError
from sbt_site.ids import parse_uuid
from tenants.models import Tenant

CHART_DAYS = 30
# the API's field names in a service's error, as the form's
FORM_FIELDS = {"uniqueProperty": "unique_property", "meterApiName": "api_name"}


class MeterForm(forms.ModelForm):
    class Meta:
        model = Meter
        fields = tuple(MeterSpec.__dataclass_fields__)  # what the services take: MeterSpec names the columns

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        if not isinstance(cleaned["dimensions"], list):
            self.add_error("dimensions", 'A list of dimension names, e.g. ["region"].')
            return cleaned
        self.spec = MeterSpec(
            **{name: cleaned[name] for name in MeterSpec.__dataclass_fields__ if name != "dimensions"},
            dimensions=tuple(cleaned["dimensions"]),
        )
        try:
            services.meter_check(spec=self.spec, meter_id=None if self.instance._state.adding else self.instance.pk)
        except ServiceError as exc:
            for error in exc.detail or [{"loc": [], "msg": exc.message}]:
                self.add_error(FORM_FIELDS.get(error["loc"][-1]) if error["loc"] else None, error["msg"])
        return cleaned


@admin.register(Meter)
class MeterAdmin(admin.ModelAdmin):
    form = MeterForm
    list_display = ("api_name", "label", "aggregation", "unit", "active", "usage_link")
    list_filter = ("aggregation", "active")
    search_fields = ("api_name", "label")
    readonly_fields = ("id", "created", "modified")
    actions = ["archive_meters", "delete_meters"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deleting goes through meter_delete: "delete_meters"
        return actions

    @admin.action(description="Archive the selected meters…", permissions=["change"])
    def archive_meters(self, request, queryset):
        if not action_confirmed(request):
            return action_confirmation(
                self, request, queryset, title="Archive the selected meters?", button="Yes, archive",
                consequences=[
                    "Archived meters refuse new usage (the API answers 422 for their events).",
                    "Their events and rollups stay, and their usage can still be read and billed.",
                    "An archived meter can then be deleted, which deletes its events.",
                ],
            )  # fmt: skip
        self._each(request, queryset, lambda meter: services.meter_archive(meter_id=meter.pk), "Archived")
        return None

    @admin.action(description="Delete the selected meters…", permissions=["delete"])
    def delete_meters(self, request, queryset):
        if not action_confirmed(request):
            return action_confirmation(
                self, request, queryset, title="Delete the selected meters?", button="Yes, delete",
                consequences=[
                    "A meter without usage is deleted.",
                    "A meter with usage is refused unless it is archived; an archived one is deleted with its events "
                    "and rollups, for good.",
                ],
            )  # fmt: skip
        self._each(request, queryset, lambda meter: services.meter_delete(meter_id=meter.pk), "Deleted")
        return None

    def _each(self, request, queryset, service, done: str) -> None:
        count = 0
        for meter in queryset:
            try:
                with reason_given(posted_reason(request)):
                    service(meter)
            except ServiceError as error:
                self.message_user(request, f"Skipped {meter.api_name}: {error.message}", messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, f"{done}: {count} meter(s).", messages.SUCCESS)

    def delete_view(self, request, object_id, extra_context=None):
        """Django's confirmation page, then meter_delete (its refusal is a message, not a 500)."""
        if request.method != "POST":
            return super().delete_view(request, object_id, extra_context)
        meter = self.get_object(request, object_id)
        if meter is None or not self.has_delete_permission(request, meter):
            raise PermissionDenied
        try:
            services.meter_delete(meter_id=meter.pk)
        except ServiceError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:metering_meter_change", args=[meter.pk]))
        self.log_deletion(request, meter, str(meter))
        self.message_user(request, f"Deleted meter {meter.api_name}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:metering_meter_changelist"))

    @admin.display(description="usage")
    def usage_link(self, meter):
        return format_html(
            '<a href="{}">last {} days</a>', reverse("admin:metering_meter_usage", args=[meter.pk]), CHART_DAYS
        )

    def save_model(self, request, obj, form, change):
        try:
            if change:
                services.meter_update(meter_id=obj.pk, changes=dataclasses.asdict(form.spec))
            else:
                obj.pk = services.meter_create(spec=form.spec).id
        except ServiceError as exc:  # the form checked; only a concurrent change gets here
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.refresh_from_db()

    def get_urls(self):
        usage = path("<uuid:meter_id>/usage/", self.admin_site.admin_view(self.usage_view), name="metering_meter_usage")
        return [usage, *super().get_urls()]

    def usage_view(self, request, meter_id):
        meter = get_object_or_404(Meter, pk=meter_id)
        tenant_id = parse_uuid(request.GET.get("tenant"))
        chart = usage_daily_chart(meter=meter, tenant_id=tenant_id, days=CHART_DAYS, now=timezone.now())
        peak = max(chart.values, default=Decimal(0)) or Decimal(1)
        bars = [
            {"x": index * 22, "height": float(value / peak * 180), "y": 200 - float(value / peak * 180),
             "day": day, "value": value}
            for index, (day, value) in enumerate(zip(chart.days, chart.values, strict=True))
        ]  # fmt: skip
        context = {
            **self.admin_site.each_context(request),
            "title": f"Usage of {meter.api_name}, last {CHART_DAYS} days (UTC)",
            "meter": meter,
            "bars": bars,
            "total": chart.total,
            "tenants": Tenant.objects.order_by("name")[:500],
            "tenant_id": tenant_id,
            "all_tenants_allowed": chart.all_tenants_allowed,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/metering/meter_usage.html", context)


@admin.register(RollupZone)
class RollupZoneAdmin(LedgerAdmin):
    """Added and removed with ``manage.py metering_rollup_zones`` (a backfill of every tenant's
    days takes longer than a web request may): shown here with whether it is ready."""

    list_display = ("name", "ready", "created")
    readonly_fields = ("name", "ready", "created")

    def changelist_view(self, request, extra_context=None):
        subtitle = (
            "Added and removed with: manage.py metering_rollup_zones add America/New_York "
            "(docs/metering.md, “Rollups in your customers' time zones”)."
        )
        return super().changelist_view(request, {**(extra_context or {}), "subtitle": subtitle})


@admin.register(MeteringCustomer)
class MeteringCustomerAdmin(LedgerAdmin):
    """Written only by the metering handlers (onboarding and offboarding): read-only here."""

    list_display = ("tenant", "created", "offboarded")
    list_select_related = ("tenant",)
    search_fields = ("tenant__name", "=tenant__id")
    date_hierarchy = "created"
    readonly_fields = ("tenant", "created", "modified", "offboarded")


@admin.register(UsageEvent)
class UsageEventAdmin(LedgerAdmin):
    """Events are cancelled, never changed nor deleted: they stay for audit."""

    list_display = ("event_id", "tenant_name", "meter", "timestamp", "amount", "cancelled_at")
    # A date filter rather than date_hierarchy: the hierarchy aggregates the whole (partitioned) table.
    list_filter = ("meter", "timestamp", ("cancelled_at", admin.EmptyFieldListFilter))
    search_fields = ("event_id",)
    search_help_text = "An event id, a tenant id (exact) or a tenant's name."
    list_select_related = ("meter", "tenant")
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
        named = list(Tenant.objects.filter(name__icontains=term).values_list("pk", flat=True)[:100])
        if named:
            match |= Q(tenant_id__in=named)
        return queryset.filter(match), False

    @admin.display(description="tenant", ordering="tenant__name")
    def tenant_name(self, event):
        return event.tenant.name if event.tenant else event.tenant_id

    @admin.display(description="value", ordering="value")
    def amount(self, event):
        return plain_number(event.value)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    @admin.action(description="Cancel the selected usage events…")
    def cancel_events(self, request, queryset):
        if not action_confirmed(request):
            return action_confirmation(
                self, request, queryset, title="Cancel the selected usage events?", button="Yes, cancel them",
                consequences=[
                    "The events stop counting: the rollups and every usage read drop their values at once.",
                    "They stay stored for audit, marked cancelled; cancelling cannot be undone.",
                    "Usage already pushed to the billing provider is corrected at the next usage push.",
                ],
            )  # fmt: skip
        by_tenant = defaultdict(list)
        for tenant_id, event_id in queryset.values_list("tenant_id", "event_id"):
            by_tenant[tenant_id].append(event_id)
        cancelled = sum(
            services.usage_events_cancel(client_tenant_id=None, tenant_id=tenant_id, event_ids=event_ids)
            for tenant_id, event_ids in by_tenant.items()
        )
        self.message_user(request, f"Cancelled {cancelled} events; rollups adjusted.", messages.SUCCESS)
        return None
