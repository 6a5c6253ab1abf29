"""Webhook tooling for operators, after Stripe's: the attempt log and the resend button on a
delivery's page, the health of each endpoint, and event types picked from the catalogue in the
subscription form (``EventTypesWidget``, the widget of events.admin's ``event_types_text``)."""

from datetime import datetime, timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import reverse

from events import services
from events.catalogue import APPLICATION_PLANE_EVENTS, CONTROL_PLANE_EVENTS
from events.models import Delivery
from events.selectors import delivery_attempt_list, delivery_get, subscription_health_list

HEALTH_WINDOW = timedelta(days=7)
ATTEMPTS_SHOWN = 50


class EventTypesWidget(forms.Widget):
    """The catalogue's event types as checkboxes, with a text box for custom names.

    Its value is what the form's text field held before: the names, comma-separated; the form's
    ``clean_event_types_text`` (events.services.event_types_normalize) still checks every name.
    """

    template_name = "console/widgets/event_types.html"
    GROUPS = (
        ("Control-plane events (sent to the application plane)", CONTROL_PLANE_EVENTS),
        ("Application-plane events (received; subscribe to relay them)", APPLICATION_PLANE_EVENTS),
    )

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        chosen = [part.strip() for part in (value or "").split(",") if part.strip()]
        known = {event for _, events in self.GROUPS for event in events}
        context["widget"]["groups"] = [
            (title, [(event, event in chosen) for event in events]) for title, events in self.GROUPS
        ]
        context["widget"]["other"] = ", ".join(name for name in chosen if name not in known)
        return context

    def format_value(self, value):
        return value or ""

    def value_from_datadict(self, data, files, name):
        chosen = data.getlist(name) if hasattr(data, "getlist") else list(data.get(name) or [])
        other = [part.strip() for part in (data.get(f"{name}_other") or "").split(",") if part.strip()]
        return ", ".join(dict.fromkeys(chosen + other))

    def value_omitted_from_data(self, data, files, name):
        return False  # no box ticked is a choice: every control-plane event


def delivery_panel(*, delivery: Delivery) -> dict:
    """What the delivery's page shows below its fields: its attempts (newest first, across
    replays) and whether it can be resent."""
    attempts = list(delivery_attempt_list(delivery_id=delivery.pk)[:ATTEMPTS_SHOWN])
    return {
        "delivery": delivery,
        "attempts": attempts,
        "resend_url": reverse("admin:console_delivery_resend", args=[delivery.pk]),
        "can_resend": delivery.status != Delivery.Status.SUCCEEDED,
    }


def subscription_panel(*, subscription_id, now: datetime) -> dict:
    health = subscription_health_list(since=now - HEALTH_WINDOW, subscription_id=subscription_id)
    return {"health": health[0] if health else None, "window_days": HEALTH_WINDOW.days}


def delivery_resend_view(request, *, delivery_id):
    """Resend a failed or dead delivery now (events.services.delivery_replay: a fresh set of
    attempts; the earlier attempts stay in its log). One that succeeded is never sent again."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not request.user.has_perm("events.change_delivery"):
        raise PermissionDenied
    delivery = delivery_get(delivery_id=delivery_id)
    if delivery is None:
        raise Http404(f"Delivery {delivery_id} not found")
    if delivery.status == Delivery.Status.SUCCEEDED:
        messages.warning(request, "This delivery succeeded already: it is never sent twice.")
    else:
        services.delivery_replay(delivery=delivery)
        messages.success(request, "Resending now: refresh to see the new attempt in the log below.")
    return redirect("admin:events_delivery_change", delivery.pk)
