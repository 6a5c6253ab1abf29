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
    response = admin_client.post(
        changelist, {"post": "yes", "action": "cancel_events", "_selected_action": selected}, follow=True
    )
    assert response.status_code == 200
    assert UsageEvent.objects.filter(cancelled_at__isnull=False).count() == 2
    for span in ROLLUP_SPANS:
        assert sum(row.total for row in UsageRollup.objects.filter(span=span)) == 15 - 1 - 2


METER_FORM = {"api_name": "seats_used", "label": "Seats", "aggregation": "SUM", "value_property": "meterValue",
              "unique_property": "", "dimensions": "[]", "unit": "", "description": "", "active": "on"}  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "body"),
    [
        ({"api_name": "Seats Used"}, "api_name", {"meterApiName": "Seats Used", "aggregation": "SUM"}),
        ({"aggregation": "UNIQUE_COUNT"}, "unique_property", {"meterApiName": "seats", "aggregation": "UNIQUE_COUNT"}),
    ],
)
def test_the_meter_form_refuses_what_the_api_refuses_with_the_apis_message(admin_client, api, changes, field, body):
    from metering.models import Meter

    page = admin_client.post(reverse("admin:metering_meter_add"), {**METER_FORM, **changes})
    assert page.status_code == 200
    form_errors = page.context["adminform"].form.errors[field]
    answer = api().post("/api/v1/meters", body, format="json")
    assert answer.status_code == 422
    assert form_errors == [answer.json()["detail"][0]["msg"]]
    assert not Meter.objects.exists()


@pytest.mark.django_db
def test_a_meter_with_usage_is_archived_not_deleted(admin_client, usage):
    from metering.models import Meter

    changelist = reverse("admin:metering_meter_changelist")
    assert "delete_selected" not in admin_client.get(changelist).content.decode()
    refused = admin_client.post(reverse("admin:metering_meter_delete", args=[usage.pk]), {"post": "yes"}, follow=True)
    assert "has usage events: archive it first" in refused.content.decode()
    selection = {"_selected_action": [str(usage.pk)]}
    bulk = admin_client.post(changelist, {**selection, "action": "delete_meters", "post": "yes"}, follow=True)
    assert f"Skipped {usage.api_name}: " in bulk.content.decode()
    assert Meter.objects.filter(pk=usage.pk).exists() and UsageEvent.objects.filter(meter_id=usage.pk).count() == 5
    confirmation = admin_client.post(changelist, {**selection, "action": "archive_meters"}).content.decode()
    assert "Archived meters refuse new usage" in confirmation
    admin_client.post(changelist, {**selection, "action": "archive_meters", "post": "yes"})
    assert Meter.objects.get(pk=usage.pk).active is False


@pytest.mark.django_db
def test_usage_events_show_tenant_names_and_plain_numbers_and_are_found_by_tenant_name(admin_client, usage, tenant):
    page = admin_client.get(reverse("admin:metering_usageevent_changelist"), {"q": tenant.name[:4]})
    html = page.content.decode()
    assert len(page.context["cl"].result_list) == 5
    assert f">{tenant.name}<" in html and "5.000000000" not in html and ">5<" in html
    confirmation = admin_client.post(
        reverse("admin:metering_usageevent_changelist"),
        {"action": "cancel_events", "_selected_action": [UsageEvent.objects.first().pk]},
    ).content.decode()
    assert "They stay stored for audit" in confirmation
    assert not UsageEvent.objects.filter(cancelled_at__isnull=False).exists()
