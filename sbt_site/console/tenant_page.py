"""The tenant page (one customer view): what the tenant's admin page shows below its fields —
its status and history, registration, users, OAuth clients, usage per meter, billing customer
and recent pushes, its events and their deliveries — and its lifecycle actions as buttons.

The buttons are the tenant admin's own actions (whatever ``TenantAdmin`` offers, so an action
added there appears here), posted to the tenant list for this one tenant as the list's action
bar would: the same code path, confirmations included.
"""

from datetime import datetime

from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import NoReverseMatch, reverse
from django.utils.text import slugify

from accounts.selectors import tenant_oauth_client_list, tenant_user_list
from billing.selectors import billing_customer_list, usage_push_list
from events.selectors import delivery_list_for_events, event_list_for_tenant
from metering.selectors import meter_list, usage_daily_chart
from sbt_site.console.usage_explorer import number
from tenants.models import Tenant

USAGE_DAYS = 30
EVENTS_SHOWN = 20
PUSHES_SHOWN = 10
HISTORY_SHOWN = 20

# Lifecycle pages of one tenant that are not list actions (a confirmation or a form of their
# own): (label, URL name taking the tenant's id). Listed here, they show as buttons beside the
# actions once their URL exists; a name that does not resolve is skipped.
LIFECYCLE_PAGES: tuple[tuple[str, str], ...] = ()


def tenant_pages(*, tenant: Tenant) -> list[dict]:
    pages = []
    for label, url_name in LIFECYCLE_PAGES:
        try:
            pages.append({"label": label, "url_name": url_name, "url": reverse(url_name, args=[tenant.pk])})
        except NoReverseMatch:
            continue
    return pages


def tenant_actions(*, request, site) -> list[dict]:
    """The tenant admin's actions (but bulk delete) as buttons: name and label."""
    try:
        model_admin = site.get_model_admin(Tenant)
    except NotRegistered:
        return []
    actions = model_admin.get_actions(request)
    return [
        {"name": name, "label": description.replace(" the selected tenants", "").replace("selected ", "")}
        for name, (_, _, description) in actions.items()
        if name != "delete_selected"
    ]


def tenant_panels(*, tenant: Tenant, request, site, now: datetime) -> dict:
    events = list(event_list_for_tenant(tenant_id=tenant.pk)[:EVENTS_SHOWN])
    deliveries: dict = {}
    for delivery in delivery_list_for_events(event_ids=[event.pk for event in events]):
        deliveries.setdefault(delivery.event_id, []).append(delivery)
    usage = []
    for meter in meter_list().filter(active=True).order_by("api_name"):
        chart = usage_daily_chart(meter=meter, tenant_id=tenant.pk, days=USAGE_DAYS, now=now)
        chart_id = f"usage-{slugify(meter.api_name)}"
        usage.append(
            {
                "meter": meter,
                "chart_id": chart_id,
                "chart_data_id": f"{chart_id}-data",
                "total": number(chart.total) if chart.total is not None else None,
                "chart": {
                    "type": "bar",
                    "labels": [day.isoformat() for day in chart.days],
                    "datasets": [{"label": meter.label or meter.api_name, "data": [float(v) for v in chart.values]}],
                    "yTitle": meter.unit or meter.aggregation.lower(),
                    "xTitle": "day (UTC)",
                },
                "explorer_url": reverse("admin:console_usage")
                + f"?meter={meter.pk}&tenant={tenant.pk}&start={chart.days[0]}&end={chart.days[-1]}"
                "&granularity=DAY&time_zone=UTC",
            }
        )
    customer = billing_customer_list(tenant_id=tenant.pk).first()
    history = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Tenant), object_id=str(tenant.pk)
    ).select_related("user")[:HISTORY_SHOWN]
    return {
        "tenant": tenant,
        "registration": getattr(tenant, "registration", None),
        "history": history,
        "users": tenant_user_list(tenant_id=tenant.pk),
        "clients": tenant_oauth_client_list(tenant_id=tenant.pk),
        "usage": usage,
        "usage_days": USAGE_DAYS,
        "customer": customer,
        "pushes": list(usage_push_list(tenant_id=tenant.pk)[:PUSHES_SHOWN]) if customer else [],
        "events": [{"event": event, "deliveries": deliveries.get(event.pk, [])} for event in events],
        "actions": tenant_actions(request=request, site=site),
        "pages": tenant_pages(tenant=tenant),
        "actions_url": reverse("admin:tenants_tenant_changelist") + f"?id__exact={tenant.pk}",
    }
