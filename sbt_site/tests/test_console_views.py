"""The console's pages through Django's test client: grouped navigation, the overview's links,
the usage explorer's answers and refusals (never a 500), its CSV, the subscription form's
catalogue checkboxes and the delivery's resend button."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from events.models import Delivery, Subscription
from events.services import subscription_create, subscription_send_test_event
from metering.interface import MeterSpec
from metering.models import Meter
from metering.services import meter_create, usage_events_ingest
from tenants.models import TenantRegistration
from tenants.services import tenant_registration_apply_job_output
from tenants.tests.factories import tenant_registration_onboard

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser(username="operator", email="op@example.com", password="x" * 16)
    client.force_login(user)
    return client


@pytest.fixture
def calls_meter(settings):
    settings.SBT = {**settings.SBT, "USAGE_MAX_BACKDATE_DAYS": 3650}
    info = meter_create(
        spec=MeterSpec(api_name="calls", label="Calls", aggregation="SUM", dimensions=("region",), unit="calls")
    )
    return Meter.objects.get(pk=info.id)


def test_navigation_is_grouped_by_task_with_the_framework_models_last(operator):
    response = operator.get("/admin/")
    groups = {app["name"]: [model["name"] for model in app["models"]] for app in response.context["available_apps"]}
    assert list(groups) == ["Tenants", "Usage", "Billing", "Events", "Access", "Advanced"]
    assert groups["Tenants"] == ["Tenants", "Tenant registrations"]
    assert groups["Usage"][:3] == ["Usage explorer", "Meters", "Usage events"]
    assert groups["Events"][:3] == ["Events", "Deliveries", "Subscriptions"]
    assert {"Groups", "Clocked", "Solar events", "Id tokens"} <= set(groups["Advanced"])
    # an app's own page is still the stock one
    assert operator.get("/admin/tenants/").status_code == 200
    assert operator.get("/admin/django_celery_beat/").status_code == 200


def figure_link(page: str, label: str) -> str:
    match = re.search(rf"<dt>{re.escape(label)}</dt>\s*<dd><a href=\"([^\"]+)\">(\d+)</a>", page)
    assert match, f"no linked figure {label!r}"
    return match.group(1).replace("&amp;", "&"), int(match.group(2))


def test_each_dashboard_figure_links_to_the_list_of_what_it_counts(operator):
    for name in ("waiting", "stuck", "pending"):
        tenant_registration_onboard(name)
    broken = tenant_registration_onboard("broken")
    tenant_registration_apply_job_output(registration_id=broken.pk, outcome="provisionFailure", reason="no room")
    TenantRegistration.objects.filter(tenant__name="stuck").update(created=timezone.now() - timedelta(hours=5))

    page = operator.get("/admin/").content.decode()

    url, count = figure_link(page, "failed")
    assert count == 1
    listed = operator.get(url)
    assert [tenant.name for tenant in listed.context["cl"].result_list] == ["broken"]

    url, count = figure_link(page, "registrations in progress over 1 h")
    assert count == 1
    listed = operator.get(url)
    assert [registration.tenant.name for registration in listed.context["cl"].result_list] == ["stuck"]

    url, count = figure_link(page, "In progress")
    assert count == 3
    listed = operator.get(url)
    assert sorted(tenant.name for tenant in listed.context["cl"].result_list) == ["pending", "stuck", "waiting"]


def ingest(meter: Meter, tenant_id, *values: tuple[datetime, int, str]) -> None:
    usage_events_ingest(
        events=[
            {
                "eventId": f"e-{index}",
                "meterApiName": meter.api_name,
                "tenantId": str(tenant_id),
                "meterValue": value,
                "timestamp": at.isoformat(),
                "dimensions": {"region": region},
            }
            for index, (at, value, region) in enumerate(values)
        ]
    )


def test_the_explorer_answers_in_the_chosen_zone_and_exports_the_same_rows_as_csv(operator, calls_meter):
    acme = tenant_registration_onboard("acme").tenant
    ingest(
        calls_meter,
        acme.pk,
        (datetime(2026, 1, 1, 22, 30, tzinfo=UTC), 5, "eu"),  # 2 January in Tokyo (UTC+9)
        (datetime(2026, 1, 2, 3, 0, tzinfo=UTC), 7, "eu"),  # 2 January in Tokyo
        (datetime(2026, 1, 2, 16, 0, tzinfo=UTC), 11, "us"),  # 3 January in Tokyo
    )
    query = {
        "meter": calls_meter.pk,
        "tenant": acme.pk,
        "start": "2026-01-02",
        "end": "2026-01-03",
        "granularity": "DAY",
        "time_zone": "Asia/Tokyo",
        "group_by": "",
    }
    response = operator.get("/admin/console/usage/", query)
    assert response.status_code == 200
    rows = [(item["start"], item["row"].tenant_name, item["value"]) for item in response.context["rows"]]
    assert rows == [("2026-01-02 00:00", "acme", "12"), ("2026-01-03 00:00", "acme", "11")]
    assert response.context["total"] == "23"
    assert response.context["chart"]["labels"] == ["2026-01-02", "2026-01-03"]
    assert response.context["chart"]["datasets"] == [{"label": "usage", "data": [12.0, 11.0]}]

    grouped = operator.get("/admin/console/usage/", {**query, "group_by": "region", "format": "csv"})
    assert grouped["Content-Type"] == "text/csv; charset=utf-8"
    lines = list(csv.reader(io.StringIO(grouped.content.decode())))
    assert lines[0] == ["windowStart", "windowEnd", "tenantId", "tenantName", "group", "value", "eventCount"]
    assert [(line[0], line[4], line[5], line[6]) for line in lines[1:]] == [
        ("2026-01-02T00:00:00+09:00", "eu", "12", "2"),
        ("2026-01-03T00:00:00+09:00", "us", "11", "1"),
    ]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone", "is not an IANA time zone"),
        ({"end": "2025-12-01"}, "end", "ends before it starts"),
        ({"start": "yesterday"}, "start", "Enter a valid date"),
        ({"granularity": "FORTNIGHT"}, "granularity", "Select a valid choice"),
        ({"group_by": "colour"}, "group_by", "groupBy must be one of the meter's dimensions (region)"),
        ({"meter": "not-a-meter"}, "meter", "is not a valid UUID"),
        ({"tenant": "00000000-0000-0000-0000-000000000000"}, "tenant", "Select a valid choice"),
        ({"granularity": "HOUR", "start": "2000-01-01"}, "granularity", "the range spans more than 10000 windows"),
    ],
)
def test_bad_explorer_input_is_a_form_error_never_a_500(operator, calls_meter, change, field, message):
    query = {"meter": calls_meter.pk, "start": "2026-01-01", "end": "2026-01-07", "granularity": "DAY"}
    query["time_zone"] = "UTC"
    response = operator.get("/admin/console/usage/", {**query, **change})
    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field]), response.context["form"].errors
    assert "rows" not in response.context


def test_the_explorer_needs_the_permission_to_view_meters(client, calls_meter):
    staff = get_user_model().objects.create_user(username="staff", password="x" * 16, is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/console/usage/").status_code == 403


def test_the_explorer_is_listed_only_to_those_who_may_view_meters(client):
    staff = get_user_model().objects.create_user(username="staff", password="x" * 16, is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_usageevent"))
    client.force_login(staff)
    groups = {
        app["name"]: [model["name"] for model in app["models"]]
        for app in client.get("/admin/").context["available_apps"]
    }
    assert groups == {"Usage": ["Usage events"]}

    staff.user_permissions.add(Permission.objects.get(codename="view_meter"))
    groups = {
        app["name"]: [model["name"] for model in app["models"]]
        for app in client.get("/admin/").context["available_apps"]
    }
    assert groups == {"Usage": ["Usage explorer", "Meters", "Usage events"]}


def test_the_explorer_opens_on_the_last_week_of_the_first_meter(operator, calls_meter):
    response = operator.get("/admin/console/usage/")
    form = response.context["form"]
    today = timezone.now().date()
    assert form.cleaned_data["meter"] == calls_meter
    assert (form.cleaned_data["start"], form.cleaned_data["end"]) == (today - timedelta(days=6), today)


def test_the_subscription_form_offers_the_catalogue_and_keeps_custom_names(operator):
    page = operator.get("/admin/events/subscription/add/").content.decode()
    assert 'type="checkbox" name="event_types_text" value="onboardingRequest"' in page
    assert 'type="checkbox" name="event_types_text" value="provisionSuccess"' in page

    response = operator.post(
        "/admin/events/subscription/add/",
        {
            "url": "http://127.0.0.1:9/hook",
            "description": "app plane",
            "enabled": "on",
            "event_types_text": ["onboardingRequest", "offboardingRequest"],
            "event_types_text_other": "myCustomThing",
            "new_secret": "",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    subscription = Subscription.objects.get(description="app plane")
    assert subscription.event_types == ["onboardingRequest", "offboardingRequest", "myCustomThing"]

    page = operator.get(f"/admin/events/subscription/{subscription.pk}/change/").content.decode()
    assert 'value="onboardingRequest" checked' in page
    assert 'value="myCustomThing"' in page  # the custom name is in the text box

    refused = operator.post(
        f"/admin/events/subscription/{subscription.pk}/change/",
        {
            "url": subscription.url,
            "description": "app plane",
            "enabled": "on",
            "event_types_text_other": "onbordingRequest",
        },
    )
    assert refused.status_code == 200
    (error,) = refused.context["adminform"].form.errors["event_types_text"]
    assert "did you mean 'onboardingRequest'?" in error


def test_resend_replays_a_failed_delivery_and_never_a_delivered_one(operator, django_capture_on_commit_callbacks):
    subscription, _ = subscription_create(url="http://127.0.0.1:9/hook", event_types=[])
    delivery = subscription_send_test_event(subscription=subscription)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.DEAD, attempts=8)
    url = f"/admin/console/deliveries/{delivery.pk}/resend/"

    assert operator.get(url).status_code == 405
    response = operator.post(url)
    assert response.status_code == 302 and response["Location"] == f"/admin/events/delivery/{delivery.pk}/change/"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.PENDING, 0)

    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SUCCEEDED)
    page = operator.post(url, follow=True).content.decode()
    assert "never sent twice" in page
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED
    assert operator.post("/admin/console/deliveries/00000000-0000-0000-0000-000000000000/resend/").status_code == 404
