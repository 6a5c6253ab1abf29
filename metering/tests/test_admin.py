"""The admin: meters, the 30-day usage chart (server-side SVG, no CDN), events and cancel."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from metering.models import ROLLUP_SPANS, UsageEvent, UsageRollup
from metering.services import usage_events_ingest


@pytest.fixture
def usage(tenant, make_meter):
    meter = make_meter()
    now = timezone.now()
    events = [
        {"eventId": f"e{day}", "meterApiName": meter.api_name, "tenantId": str(tenant.pk), "meterValue": day + 1,
         "timestamp": (now - timedelta(days=day)).isoformat()}
        for day in range(5)
    ]  # fmt: skip
    usage_events_ingest(events=events)
    return meter


@pytest.mark.django_db
def test_the_usage_page_draws_30_days_of_bars_without_external_assets(admin_client, usage, tenant):
    page = admin_client.get(reverse("admin:metering_meter_usage", args=[usage.pk]), {"tenant": str(tenant.pk)})
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<rect ") == 30
    assert "total over the period: <strong>15</strong>" in html
    # no asset from another host (a bare "cdn" also matched inside random CSRF tokens)
    assert not re.search(r"(?:src|href)\s*=\s*[\"'](?:https?:)?//", html)
    assert "cdn." not in html.lower()
    assert '<script src="http' not in html
    everyone = admin_client.get(reverse("admin:metering_meter_usage", args=[usage.pk]))
    assert "<strong>15</strong>" in everyone.content.decode()
    assert admin_client.get(reverse("admin:metering_meter_changelist")).status_code == 200


@pytest.mark.django_db
def test_events_are_searchable_and_cancelled_from_the_admin(admin_client, usage, tenant):
    changelist = reverse("admin:metering_usageevent_changelist")
    by_event = admin_client.get(changelist, {"q": "e3"})
    assert by_event.status_code == 200
    assert by_event.context["cl"].result_list[0].event_id == "e3"
    by_tenant = admin_client.get(changelist, {"q": str(tenant.pk)})
    assert len(by_tenant.context["cl"].result_list) == 5
    selected = list(UsageEvent.objects.filter(event_id__in=["e0", "e1"]).values_list("pk", flat=True))
    response = admin_client.post(changelist, {"action": "cancel_events", "_selected_action": selected}, follow=True)
    assert response.status_code == 200
    assert UsageEvent.objects.filter(cancelled_at__isnull=False).count() == 2
    for span in ROLLUP_SPANS:
        assert sum(row.total for row in UsageRollup.objects.filter(span=span)) == 15 - 1 - 2
