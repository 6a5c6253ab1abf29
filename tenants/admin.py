"""Operators' view of tenants and registrations.

Rows are changed only through the services (the actions below call the same functions as the
API), so the admin never bypasses the status flow or forgets an event: "Add tenant" onboards
(POST /tenant-registrations), the tenant's page records a provisioning result by hand and
activates, deactivates or offboards after a confirmation page that says what will happen. Each
step is in the admin history and, with the operator's reason, in the audit log.
The forms live in tenants/admin_forms.py.
"""

import json

from django.contrib import admin, messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from audit.context import reason_given
from sbt_site.console_confirm import action_confirmation, action_confirmed, object_confirmation, posted_reason
from sbt_site.errors import ServiceError
from tenants import services
from tenants.admin_forms import ProvisioningResultForm, TenantOnboardForm
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


# What each lifecycle step does, as the confirmation page says it (tenants.services and the
# apps that subscribe to the events it publishes: billing cancels on offboardingRequest).
LIFECYCLE = {
    "deactivate": {
        "service": services.tenant_deactivate,
        "done": "Deactivated",
        "button": "Yes, deactivate",
        "consequences": [
            "The tenant and its registration become inactive (sbtaws_active: false).",
            "Every token of its users and OAuth clients is revoked at once; they get no new ones until it is "
            "activated again.",
            "Its usage is refused while it is inactive.",
            "deactivateRequest is sent to the application plane.",
        ],
    },
    "activate": {
        "service": services.tenant_activate,
        "done": "Activated",
        "button": "Yes, activate",
        "consequences": [
            "The tenant and its registration become active again; its users and clients may get new tokens "
            "(the revoked ones stay revoked).",
            "activateRequest is sent to the application plane.",
        ],
    },
    "offboard": {
        "service": services.tenant_offboard,
        "done": "Offboarded",
        "button": "Yes, offboard",
        "consequences": [
            "The tenant is offboarded for good: inactive, its registration 'deleting' until the application "
            "plane reports deprovisioning, its name free for a new tenant.",
            "Every token of its users and OAuth clients is revoked at once.",
            "Its billing is cancelled (the billing customer's subscription ends) and its metering customer closed.",
            "offboardingRequest is sent to the application plane.",
            "This cannot be undone.",
        ],
    },
}


class LifecycleActionsMixin:
    """Activate, deactivate and offboard, as bulk actions (deactivate and offboard after a
    confirmation page) calling the tenants services, each success in the admin history."""

    def _tenant_of(self, obj) -> Tenant:
        raise NotImplementedError

    def _step(self, request, obj, verb: str, reason: str) -> str | None:
        """Run one lifecycle step on ``obj`` through its service; the service's refusal, if any."""
        step = LIFECYCLE[verb]
        try:
            with reason_given(reason):
                step["service"](tenant_id=self._tenant_of(obj).pk)
        except ServiceError as error:
            return error.message
        self.log_change(request, obj, f"{step['done']} (admin){f': {reason}' if reason else ''}")
        return None

    def _lifecycle(self, request, queryset, verb: str, *, confirm: bool):
        step = LIFECYCLE[verb]
        if confirm and not action_confirmed(request):
            noun = self.model._meta.verbose_name_plural
            return action_confirmation(
                self,
                request,
                queryset,
                title=f"{verb.capitalize()} the selected {noun}?",
                consequences=step["consequences"],
                button=step["button"],
            )
        reason = posted_reason(request)
        done = 0
        for obj in queryset:
            error = self._step(request, obj, verb, reason)
            if error:
                # Not "{obj}: ...": the admin capitalises a message's first letter, which would
                # misspell the tenant's name (globex → Globex).
                self.message_user(request, f"Skipped {obj}: {error}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{step['done']}: {done} tenant(s).", messages.SUCCESS)
        return None

    @admin.action(description="Offboard the selected tenants…")
    def offboard(self, request, queryset):
        return self._lifecycle(request, queryset, "offboard", confirm=True)

    @admin.action(description="Activate the selected tenants")
    def activate(self, request, queryset):
        return self._lifecycle(request, queryset, "activate", confirm=False)

    @admin.action(description="Deactivate the selected tenants…")
    def deactivate(self, request, queryset):
        return self._lifecycle(request, queryset, "deactivate", confirm=True)


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
class TenantAdmin(LifecycleActionsMixin, admin.ModelAdmin):
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

    def _tenant_of(self, tenant):
        return tenant

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:  # "Add tenant" is onboarding, through the registration service
            return TenantOnboardForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": list(TenantOnboardForm.base_fields)})]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        """The onboarding form saved the tenant through the service while validating; a
        tenant's own columns change only through the services (lifecycle pages, the API)."""

    def save_related(self, request, form, formsets, change):
        """Nothing is edited beside the tenant: its registration changes through the services."""

    def has_change_permission(self, request, obj=None):
        return False  # read-only page; its buttons (lifecycle, provisioning result) call the services

    def has_delete_permission(self, request, obj=None):
        return False  # offboarding is a soft delete with an event: the "Offboard" button

    def response_add(self, request, obj, post_url_continue=None):
        if "_addanother" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(
            request,
            f"Tenant {obj.name} onboarded: registration 'In progress', onboardingRequest sent. "
            "Record the provisioning result here when the application plane cannot.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:tenants_tenant_change", args=[obj.pk]))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<uuid:tenant_id>/lifecycle/<str:verb>/", view(self.lifecycle_view), name="tenants_tenant_lifecycle"),
            path("<uuid:tenant_id>/provisioning/", view(self.provisioning_view), name="tenants_tenant_provisioning"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        tenant = self.get_object(request, object_id)
        registration = getattr(tenant, "registration", None) if tenant else None
        buttons = []
        if registration is not None and registration.offboarded is None:
            if registration.status in (TenantRegistration.Status.IN_PROGRESS, TenantRegistration.Status.FAILED):
                buttons.append(("Record provisioning result", "provisioning", None))
            verb = "deactivate" if tenant.active else "activate"
            buttons += [(f"{verb.capitalize()}…", "lifecycle", verb), ("Offboard…", "lifecycle", "offboard")]
        extra_context = {
            **(extra_context or {}),
            "lifecycle_buttons": [
                (label, reverse(f"admin:tenants_tenant_{name}", args=[tenant.pk, *([verb] if verb else [])]))
                for label, name, verb in buttons
            ],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def lifecycle_view(self, request, tenant_id, verb):
        tenant = get_object_or_404(Tenant, pk=tenant_id)
        if verb not in LIFECYCLE or not self.has_view_permission(request, tenant):
            raise Http404(f"No such step: {verb}")
        step = LIFECYCLE[verb]
        change_url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
        if request.method != "POST":
            return object_confirmation(
                self,
                request,
                tenant,
                title=f"{verb.capitalize()} tenant {tenant.name}?",
                consequences=step["consequences"],
                button=step["button"],
                cancel_url=change_url,
            )
        error = self._step(request, tenant, verb, posted_reason(request))
        if error:
            self.message_user(request, f"Not done: {error}", messages.ERROR)
        else:
            self.message_user(request, f"{step['done']} tenant {tenant.name}.", messages.SUCCESS)
        return HttpResponseRedirect(change_url)

    def provisioning_view(self, request, tenant_id):
        tenant = get_object_or_404(Tenant.objects.select_related("registration"), pk=tenant_id)
        registration = getattr(tenant, "registration", None)
        if registration is None or not self.has_view_permission(request, tenant):
            raise Http404("This tenant has no registration (it was created with POST /tenants).")
        form = ProvisioningResultForm(request.POST or None, registration=registration)
        if request.method == "POST" and form.is_valid():
            outcome = form.cleaned_data["outcome"]
            self.log_change(request, tenant, f"Provisioning result recorded by hand: {outcome}")
            self.message_user(request, f"Registration of {tenant.name} is now '{outcome}'.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:tenants_tenant_change", args=[tenant.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Record the provisioning result of {tenant.name}",
            "form": form,
            "tenant": tenant,
            "registration": registration,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/tenants/tenant/provisioning.html", context)

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


@admin.register(TenantRegistration)
class TenantRegistrationAdmin(LifecycleActionsMixin, admin.ModelAdmin):
    list_display = ("tenant_name", "tenant_tier", "badge", "active", "created")
    list_filter = (StatusFilter, "active", "tenant__tier", "created")
    search_fields = ("=id", "tenant__name", "tenant__email", "=tenant__id", "status_reason")
    list_select_related = ("tenant",)
    date_hierarchy = "created"
    fields = ("id", "tenant", "badge", "active", "status_reason", "offboarded", "free_form_data", "created", "modified")
    readonly_fields = fields
    actions = ["offboard", "activate", "deactivate"]

    def _tenant_of(self, registration):
        return registration.tenant

    def has_add_permission(self, request):
        return False  # onboarding: "Add tenant"

    def has_change_permission(self, request, obj=None):
        return False  # read-only; the tenant's page has the buttons

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
