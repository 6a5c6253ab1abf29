"""The overview: what an operator checks first, each figure a link to the list behind it.

Every figure is read through the apps' selectors. A link is given only when the operator may
view that list (``Figure.url`` is None otherwise), and it is the stock changelist with the
filter a click on its sidebar would set, so the list shows exactly the rows counted.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.urls import reverse

from billing.selectors import billing_customer_status_counts, usage_push_status_counts
from events.selectors import delivery_status_counts, recent_event_list, subscription_health_list
from metering.selectors import usage_period_comparison
from tenants.selectors import tenant_list, tenant_registrations_stalled, tenant_status_counts

# A registration still "In progress" after this long has not heard from the application plane.
STALLED_AFTER = timedelta(hours=1)
RECENT_EVENTS = timedelta(hours=24)
RECENT_EVENTS_SHOWN = 8
HEALTH_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Figure:
    label: str
    value: object
    url: str | None = None
    tone: str = ""  # "bad" when it needs the operator's attention


@dataclass
class Card:
    title: str
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Overview:
    cards: list[Card]
    usage: object  # metering.selectors.PeriodComparison
    usage_rows: list[dict]
    endpoints: list  # events.selectors.SubscriptionHealth
    recent_events: list


def changelist(request, model_label: str, **filters) -> str | None:
    """The admin list of ``app_label.model`` with ``filters``, or None when the operator may not
    view it."""
    app_label, model_name = model_label.split(".")
    if not (
        request.user.has_perm(f"{app_label}.view_{model_name}")
        or request.user.has_perm(f"{app_label}.change_{model_name}")
    ):
        return None
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def _since(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def overview(*, request, now: datetime) -> Overview:
    statuses = tenant_status_counts()
    tenants = Card("Tenants")
    for status, count in statuses.items():
        tenants.figures.append(
            Figure(
                status,
                count,
                changelist(request, "tenants.tenant", registration__status__exact=status),
                "bad" if status == "failed" and count else "",
            )
        )
    inactive = tenant_list().filter(active=False).count()  # deactivated or offboarded, as the list's filter
    tenants.figures.append(Figure("inactive", inactive, changelist(request, "tenants.tenant", active__exact=0)))

    deliveries = delivery_status_counts()
    stalled_since = now - STALLED_AFTER
    # (label, count, list, its filter): each a figure that turns red when it is not zero
    alerts = (
        (
            f"registrations in progress over {int(STALLED_AFTER.total_seconds() // 3600)} h",
            tenant_registrations_stalled(started_before=stalled_since).count(),
            "tenants.tenantregistration",
            {"status__exact": "In progress", "created__lt": _since(stalled_since)},
        ),
        ("registrations failed", statuses["failed"], "tenants.tenantregistration", {"status__exact": "failed"}),
        ("webhook deliveries failing (retrying)", deliveries["failed"], "events.delivery", {"status__exact": "failed"}),
        ("webhook deliveries dead", deliveries["dead"], "events.delivery", {"status__exact": "dead"}),
        ("usage pushes failed", usage_push_status_counts()["failed"], "billing.usagepush", {"status__exact": "failed"}),
        (
            "billing customers past due",
            billing_customer_status_counts()["past_due"],
            "billing.billingcustomer",
            {"status__exact": "past_due"},
        ),
    )
    attention = Card(
        "Needs attention",
        [
            Figure(label, count, changelist(request, model_label, **filters), "bad" if count else "")
            for label, count, model_label, filters in alerts
        ],
    )

    events = Card("Events")
    recent_since = now - RECENT_EVENTS
    recent = recent_event_list(since=recent_since)
    events.figures.append(
        Figure(
            "events in the last 24 h",
            recent.count(),
            changelist(request, "events.event", created__gte=_since(recent_since)),
        )
    )
    events.figures.append(
        Figure(
            "deliveries pending", deliveries["pending"], changelist(request, "events.delivery", status__exact="pending")
        )
    )

    usage = usage_period_comparison(now=now)
    explorer = reverse("admin:console_usage")
    usage_rows = [
        {
            "meter": row.meter,
            "this_period": row.this_period,
            "last_period": row.last_period,
            "change": _change(row.this_period, row.last_period),
            "this_url": f"{explorer}?{urlencode(_explorer_range(row.meter, usage.this_start, usage.this_end))}",
            "last_url": f"{explorer}?{urlencode(_explorer_range(row.meter, usage.last_start, usage.last_end))}",
        }
        for row in usage.meters
    ]
    return Overview(
        cards=[tenants, attention, events],
        usage=usage,
        usage_rows=usage_rows,
        endpoints=subscription_health_list(since=now - HEALTH_WINDOW),
        recent_events=list(recent[:RECENT_EVENTS_SHOWN]),
    )


def _explorer_range(meter, start: datetime, end: datetime) -> dict:
    """The usage explorer's query for ``meter`` per day over [start, end) (UTC days)."""
    return {
        "meter": meter.pk,
        "start": start.date().isoformat(),
        "end": (end - timedelta(days=1)).date().isoformat(),
        "granularity": "DAY",
        "time_zone": "UTC",
    }


def _change(this_period, last_period) -> str:
    """The change from last period in percent, as shown ("+12 %"), or "" when it means nothing."""
    if this_period is None or not last_period:
        return ""
    percent = (this_period - last_period) / last_period * 100
    return f"{percent:+.0f} %"
