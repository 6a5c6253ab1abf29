"""The tenant page (one customer view): what the tenant's admin page shows above its fields —
its status and history, registration, users, OAuth clients, usage per meter, billing customer
and recent pushes, provisioning runs, its events and their deliveries — and its lifecycle
actions as buttons.

The buttons are the ones ``TenantAdmin.change_view`` offers for the tenant's state (record a
provisioning result, deactivate or activate, offboard), each leading to its page in
tenants/admin.py: a confirmation that says what will happen, or the provisioning result form.
"""

from datetime import datetime

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils.text import slugify

from accounts.selectors import tenant_oauth_client_list, tenant_user_list
from billing.selectors import billing_customer_list, usage_push_list
from events.selectors import delivery_list_for_events, event_list_for_tenant
from metering.selectors import meter_list, usage_daily_chart
from provisioning.selectors import provisioning_run_list
from sbt_site.console.usage_explorer import number
from tenants.models import Tenant

USAGE_DAYS = 30
EVENTS_SHOWN = 20
PUSHES_SHOWN = 10
RUNS_SHOWN = 10
HISTORY_SHOWN = 20


def tenant_panels(*, tenant: Tenant, buttons: list[tuple[str, str]], now: datetime) -> dict:
    """The panels' context; ``buttons`` are (label, URL) of the tenant's lifecycle pages."""
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
        "runs": list(provisioning_run_list(tenant_id=tenant.pk)[:RUNS_SHOWN]),
        "buttons": buttons,
    }
