"""Operators' view of the event bus: events with their deliveries and subscriber runs,
publications to EventBridge, subscriptions, and the replay / test actions (all calling
events.services).

Events, deliveries, bus publications and subscriber runs are the bus's ledger: never changed nor
deleted here. A subscription is not deleted either (its deliveries would go with it): disable it
instead.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from events import services
from events.models import BusPublication, Delivery, Event, HandlerRun, Subscription
from events.selectors import event_tenant_id
from sbt_site.console.webhooks import EventTypesWidget
from sbt_site.console_ledger import LedgerAdmin
from sbt_site.errors import ServiceError
from tenants.models import Tenant


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ("subscription", "status", "attempts", "last_status_code", "last_error", "next_attempt_at", "delivered_at")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class HandlerRunInline(admin.TabularInline):
    model = HandlerRun
    extra = 0
    can_delete = False
    fields = ("handler", "status", "attempts", "last_error", "next_attempt_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class DeliveryStatusFilter(admin.SimpleListFilter):
    title = "delivery status"
    parameter_name = "delivery_status"

    def lookups(self, request, model_admin):
        return Delivery.Status.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(deliveries__status=self.value()).distinct()
        return queryset


class DispatchedFilter(admin.SimpleListFilter):
    title = "dispatched"
    parameter_name = "dispatched"

    def lookups(self, request, model_admin):
        return (("yes", "dispatched"), ("no", "not yet dispatched"))

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(dispatched_at__isnull=self.value() == "no")
        return queryset


def _report(modeladmin, request, done: int, what: str) -> None:
    modeladmin.message_user(request, f"{what}: {done}. Sending happens in the background; refresh to see results.")


@admin.register(Event)
class EventAdmin(LedgerAdmin):
    list_display = ("detail_type", "tenant", "direction", "source", "sent_by", "created", "dispatched_at")
    list_filter = ("detail_type", "direction", DispatchedFilter, DeliveryStatusFilter)
    search_fields = ("id", "detail_type", "sender", "detail__tenantId", "detail__tenantRegistrationId")
    date_hierarchy = "created"
    fields = (
        "id",
        "detail_type",
        "tenant",
        "source",
        "sent_by",
        "direction",
        "detail_json",
        "created",
        "dispatched_at",
    )
    readonly_fields = fields
    inlines = (DeliveryInline, HandlerRunInline)
    actions = ("replay_event",)

    search_help_text = "An event id, a type, a sender, a tenant or registration id, or a tenant's name."

    def get_search_results(self, request, queryset, search_term):
        results, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        named = [str(pk) for pk in Tenant.objects.filter(name__icontains=term).values_list("pk", flat=True)[:100]]
        if term and named:
            results |= queryset.filter(detail__tenantId__in=named)
        return results, duplicates

    @admin.display(description="tenant")
    def tenant(self, event):
        """The tenant the event is about (its detail's tenantId) by name, linked to its page."""
        tenant_id = event_tenant_id(event)
        if not tenant_id:
            return "-"
        name = Tenant.objects.filter(pk=tenant_id).values_list("name", flat=True).first() or str(tenant_id)
        try:
            url = reverse("admin:tenants_tenant_change", args=[tenant_id])
        except NoReverseMatch:  # the tenants app is not installed
            return name
        return format_html('<a href="{}">{}</a>', url, name)

    @admin.display(description="sender")
    def sent_by(self, event):
        """Who really sent the event (its ``source`` is what the sender claimed)."""
        if event.direction == Event.Direction.OUTBOUND:
            return "control plane"
        return f"client {event.sender}" if event.sender else "-"

    @admin.display(description="detail")
    def detail_json(self, event):
        return format_html(
            '<pre style="margin:0;white-space:pre-wrap">{}</pre>',
            json.dumps(event.detail, indent=2, ensure_ascii=False),
        )

    @admin.action(description="Replay event (retry what did not succeed, reach new subscriptions)")
    def replay_event(self, request, queryset):
        for event in queryset:
            services.event_replay(event=event)
        _report(self, request, queryset.count(), "Events replayed")


@admin.register(Delivery)
class DeliveryAdmin(LedgerAdmin):
    list_display = ("event", "subscription", "status", "attempts", "last_status_code", "next_attempt_at", "created")
    list_filter = ("status", "event__detail_type", "subscription")
    search_fields = ("id", "event__id", "subscription__url")
    readonly_fields = (
        "id",
        "event",
        "subscription",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "last_attempt_at",
        "delivered_at",
        "created",
        "modified",
    )
    list_select_related = ("event", "subscription")
    date_hierarchy = "created"
    actions = ("replay_delivery",)

    @admin.action(description="Replay delivery (fresh attempts; already succeeded ones are skipped)")
    def replay_delivery(self, request, queryset):
        replayed = 0
        for delivery in queryset:
            if delivery.status != Delivery.Status.SUCCEEDED:
                services.delivery_replay(delivery=delivery)
                replayed += 1
        _report(self, request, replayed, "Deliveries replayed")


@admin.register(BusPublication)
class BusPublicationAdmin(LedgerAdmin):
    """Events published to EventBridge (docs/events.md "EventBridge"): read-only, replayed
    through the event, which gives every unsuccessful part of it fresh attempts."""

    list_display = ("event", "status", "attempts", "next_attempt_at", "published_at", "created")
    list_filter = ("status", "event__detail_type")
    search_fields = ("event__id", "bus_event_id")
    readonly_fields = (
        "event",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "bus_event_id",
        "published_at",
        "created",
        "modified",
    )
    list_select_related = ("event",)
    actions = ("replay_publication",)

    @admin.action(description="Replay publication (fresh attempts; published ones are skipped)")
    def replay_publication(self, request, queryset):
        replayed = 0
        for publication in queryset.select_related("event"):
            if publication.status != BusPublication.Status.SUCCEEDED:
                services.event_replay(event=publication.event)
                replayed += 1
        _report(self, request, replayed, "Publications replayed")


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    event_types_text = forms.CharField(
        label="event types",
        required=False,
        help_text="Comma-separated, e.g. onboardingRequest, offboardingRequest. Empty: every control-plane event.",
        widget=EventTypesWidget(),
    )
    new_secret = forms.CharField(
        label="signing secret",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to generate one (new subscription) or keep the current one. Shown once, never again.",
    )

    class Meta:
        model = Subscription
        fields = ("url", "description", "enabled")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["event_types_text"] = ", ".join(self.instance.event_types)

    def clean_url(self):
        try:
            return services.subscription_url_validate(self.cleaned_data["url"])
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_event_types_text(self):
        names = [name.strip() for name in self.cleaned_data["event_types_text"].split(",") if name.strip()]
        try:
            self.cleaned_data["event_types"] = services.event_types_normalize(names)
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from None
        return self.cleaned_data["event_types_text"]

    def clean_new_secret(self):
        secret = self.cleaned_data["new_secret"]
        if secret and len(secret) < services.SECRET_MIN_LENGTH:
            raise forms.ValidationError(f"A signing secret needs at least {services.SECRET_MIN_LENGTH} characters.")
        return secret


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ("url", "description", "event_types", "enabled", "created")
    list_filter = ("enabled",)
    search_fields = ("url", "description")
    actions = ("send_test_event",)

    def has_delete_permission(self, request, obj=None):
        return False  # its deliveries would go with it: disable it (uncheck "enabled") instead

    def save_model(self, request, obj, form, change):
        # The services own encryption and the one-time display of the secret.
        if change:
            services.subscription_update(
                subscription=obj,
                url=obj.url,
                event_types=form.cleaned_data["event_types"],
                description=obj.description,
                enabled=obj.enabled,
                secret=form.cleaned_data["new_secret"] or None,
            )
            return
        created, secret = services.subscription_create(
            url=obj.url,
            event_types=form.cleaned_data["event_types"],
            secret=form.cleaned_data["new_secret"] or None,
            description=obj.description,
            enabled=obj.enabled,
        )
        obj.pk = created.pk
        obj.secret_encrypted = created.secret_encrypted
        if not form.cleaned_data["new_secret"]:
            self.message_user(
                request,
                f"Signing secret (shown only now, store it in the receiver): {secret}",
                level=messages.WARNING,
            )

    @admin.action(description="Send test event")
    def send_test_event(self, request, queryset):
        for subscription in queryset:
            services.subscription_send_test_event(subscription=subscription)
        _report(self, request, queryset.count(), "Test events sent")
