"""Operators' view of tenants and registrations.

Rows are changed only through the services (the actions below call the same functions as the
API), so the admin never bypasses the status flow or forgets an event. Each action is recorded
in the admin history with the operator who ran it.
"""

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from sbt_site.errors import ServiceError
from tenants import services
from tenants.models import Tenant, TenantRegistration

STATUS_COLOURS = {
    TenantRegistration.Status.IN_PROGRESS: "#2563eb",
    TenantRegistration.Status.CREATED: "#16a34a",
    TenantRegistration.Status.FAILED: "#dc2626",
    TenantRegistration.Status.DELETING: "#d97706",
    TenantRegistration.Status.DELETED: "#6b7280",
}


def status_badge(status: str | None):
    if not status:
        return "-"
    colour = STATUS_COLOURS.get(status, "#6b7280")
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;white-space:nowrap">{}</span>',
        colour,
        status,
    )


class RegistrationStatusFilter(admin.SimpleListFilter):
    """The registration status by the value the badge shows ("In progress", "created", …): the
    field's choice labels are Django's title-cased member names ("In Progress"), and changing
    them would take a migration."""

    title = "registration status"
    parameter_name = "registration__status__exact"

    def lookups(self, request, model_admin):
        return [(status, status) for status in TenantRegistration.Status.values]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.parameter_name: self.value()})
        return queryset


class StatusFilter(RegistrationStatusFilter):
    """The same on the registrations list."""

    title = "status"
    parameter_name = "status__exact"


def pretty_json(value):
    return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>', json.dumps(value, indent=2))


class ServiceActionsMixin:
    """Admin actions that call a service per row and log each success in the admin history."""

    def _run(self, request, queryset, service, *, verb: str, target) -> None:
        done = 0
        for obj in queryset:
            try:
                service(**target(obj))
            except ServiceError as error:
                # Not "{obj}: ...": the admin capitalises a message's first letter, which would
                # misspell the tenant's name (globex → Globex).
                self.message_user(request, f"Skipped {obj}: {error.message}", messages.ERROR)
                continue
            self.log_change(request, obj, f"{verb} (admin action)")
            done += 1
        if done:
            self.message_user(request, f"{verb}: {done} tenant(s).", messages.SUCCESS)


class TenantRegistrationInline(admin.StackedInline):
    model = TenantRegistration
    can_delete = False
    extra = 0
    max_num = 0
    fields = ("id", "badge", "active", "status_reason", "offboarded", "free_form_data", "created", "modified")
    readonly_fields = fields

    @admin.display(description="registration status")
    def badge(self, registration):
        return status_badge(registration.status)

    @admin.display(description="free-form data")
    def free_form_data(self, registration):
        return pretty_json(registration.data)


@admin.register(Tenant)
class TenantAdmin(ServiceActionsMixin, admin.ModelAdmin):
    list_display = ("name", "tier", "badge", "active", "email", "created")
    list_filter = ("active", "tier", RegistrationStatusFilter, "created")

    def lookup_allowed(self, lookup, value, request=None):
        # The admin allows a related lookup only when a list_filter names that field path, and
        # RegistrationStatusFilter is a class; its parameter keeps the URLs the field filter had.
        return lookup == RegistrationStatusFilter.parameter_name or super().lookup_allowed(lookup, value, request)

    search_fields = ("name", "email", "=id", "=registration__id")
    list_select_related = ("registration",)
    date_hierarchy = "created"
    fields = (
        "id",
        "name",
        "email",
        "tier",
        "active",
        "prices_json",
        "tenant_config",
        "free_form_data",
        "created",
        "modified",
    )
    readonly_fields = fields
    inlines = [TenantRegistrationInline]
    actions = ["offboard", "activate", "deactivate"]

    def has_add_permission(self, request):
        return False  # onboarding goes through the registration service: API or `tenant_onboard`

    def has_delete_permission(self, request, obj=None):
        return False  # offboarding is a soft delete with an event: use the "offboard" action

    @admin.display(description="registration status", ordering="registration__status")
    def badge(self, tenant):
        registration = getattr(tenant, "registration", None)
        return status_badge(registration.status if registration else None)

    @admin.display(description="prices")
    def prices_json(self, tenant):
        return pretty_json(tenant.prices)

    @admin.display(description="tenant config")
    def tenant_config(self, tenant):
        return pretty_json(tenant.config)

    @admin.display(description="free-form data")
    def free_form_data(self, tenant):
        return pretty_json(tenant.data)

    @admin.action(description="Offboard the selected tenants")
    def offboard(self, request, queryset):
        self._run(request, queryset, services.tenant_offboard, verb="Offboarded", target=lambda t: {"tenant_id": t.pk})

    @admin.action(description="Activate the selected tenants")
    def activate(self, request, queryset):
        self._run(request, queryset, services.tenant_activate, verb="Activated", target=lambda t: {"tenant_id": t.pk})

    @admin.action(description="Deactivate the selected tenants")
    def deactivate(self, request, queryset):
        self._run(
            request, queryset, services.tenant_deactivate, verb="Deactivated", target=lambda t: {"tenant_id": t.pk}
        )


@admin.register(TenantRegistration)
class TenantRegistrationAdmin(ServiceActionsMixin, admin.ModelAdmin):
    list_display = ("id", "tenant_name", "tenant_tier", "badge", "active", "created")
    list_filter = (StatusFilter, "active", "tenant__tier", "created")
    search_fields = ("=id", "tenant__name", "tenant__email", "=tenant__id", "status_reason")
    list_select_related = ("tenant",)
    date_hierarchy = "created"
    fields = ("id", "tenant", "badge", "active", "status_reason", "offboarded", "free_form_data", "created", "modified")
    readonly_fields = fields
    actions = ["offboard", "activate", "deactivate"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="tenant name", ordering="tenant__name")
    def tenant_name(self, registration):
        return registration.tenant.name

    @admin.display(description="tier", ordering="tenant__tier")
    def tenant_tier(self, registration):
        return registration.tenant.tier

    @admin.display(description="registration status", ordering="status")
    def badge(self, registration):
        return status_badge(registration.status)

    @admin.display(description="free-form data")
    def free_form_data(self, registration):
        return pretty_json(registration.data)

    @admin.action(description="Offboard the selected registrations")
    def offboard(self, request, queryset):
        self._run(
            request,
            queryset,
            services.tenant_registration_delete,
            verb="Offboarded",
            target=lambda r: {"registration_id": r.pk},
        )

    @admin.action(description="Activate the selected registrations")
    def activate(self, request, queryset):
        self._run(
            request,
            queryset,
            services.tenant_registration_activate,
            verb="Activated",
            target=lambda r: {"registration_id": r.pk},
        )

    @admin.action(description="Deactivate the selected registrations")
    def deactivate(self, request, queryset):
        self._run(
            request,
            queryset,
            services.tenant_registration_deactivate,
            verb="Deactivated",
            target=lambda r: {"registration_id": r.pk},
        )
