"""Rules that live in the services and selectors, not in the views: every entry point (API,
admin) refuses the same meters and queries with the same error, and the API's answer is the one
its serializers' errors have."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import checks
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from metering.checks import fast_ingest_check
from metering.interface import MeterSpec
from metering.models import Meter
from metering.selectors import usage_query_check
from metering.services import ingest, meter_create, usage_events_ingest
from sbt_site.api.exceptions import RequestValidationError, exception_handler
from sbt_site.errors import InvalidInput, NotFound

UNIQUE_RULE = "uniqueProperty is required for UNIQUE_COUNT"


def serializer_error_body(errors: dict, location: str = "body") -> dict:
    """What the API answers for these field errors when a serializer raises them."""
    return exception_handler(RequestValidationError(errors, location=location), {}).data


@pytest.mark.django_db
def test_a_unique_count_meter_needs_a_unique_property_wherever_it_is_created(api, make_meter):
    client = api("meter/meter_read meter/meter_write")
    created = client.post("/api/v1/meters", {"meterApiName": "u", "aggregation": "UNIQUE_COUNT"}, format="json")
    assert created.status_code == 422
    assert created.json() == serializer_error_body({"uniqueProperty": [UNIQUE_RULE]})
    with pytest.raises(InvalidInput):
        meter_create(spec=MeterSpec(api_name="u", label="u", aggregation=Meter.Aggregation.UNIQUE_COUNT))
    meter = make_meter()
    updated = client.put(f"/api/v1/meters/{meter.pk}", {"aggregation": "UNIQUE_COUNT"}, format="json")
    assert updated.status_code == 422
    assert updated.json() == serializer_error_body({"uniqueProperty": [UNIQUE_RULE]})
    assert list(Meter.objects.values_list("api_name", "aggregation")) == [("api-calls", "SUM")]


@pytest.mark.django_db
def test_a_meter_label_defaults_to_its_api_name(api):
    assert meter_create(spec=MeterSpec(api_name="calls", label="", aggregation="SUM")).label == "calls"
    created = api().post("/api/v1/meters", {"meterApiName": "storage", "aggregation": "MAX"}, format="json")
    assert created.json()["data"]["label"] == "storage"


@pytest.mark.django_db
def test_bad_usage_queries_answer_as_serializer_errors_do(api, make_meter):
    meter = make_meter(dimensions=("region",))
    response = api().get(f"/api/v1/usage/{meter.pk}", {"timeZone": "Mars/Olympus", "groupBy": "plan"})
    assert response.json() == serializer_error_body(
        {
            "timeZone": ["unknown IANA time zone 'Mars/Olympus'"],
            "groupBy": ["groupBy must be one of the meter's dimensions (region)"],
        },
        location="query",
    )


@pytest.mark.django_db
def test_the_usage_query_selector_binds_the_tenant_and_defaults_to_the_last_day(make_meter, make_tenant):
    meter, mine, other = make_meter(), make_tenant("mine"), make_tenant("other")
    now = timezone.now()
    query = usage_query_check(meter=meter, client_tenant_id=mine.pk, now=now)
    assert (query.tenant_id, query.start, query.end, query.interval) == (mine.pk, now - timedelta(days=1), now, "DAY")
    with pytest.raises(NotFound):
        usage_query_check(meter=meter, client_tenant_id=mine.pk, now=now, tenant_id=other.pk)
    with pytest.raises(InvalidInput) as refused:
        usage_query_check(meter=meter, client_tenant_id=None, now=now, end=now + timedelta(days=1000), interval="HOUR")
    assert [error["loc"] for error in refused.value.detail] == [["query", "timeGroupingInterval"]]


@pytest.mark.django_db
def test_the_admin_shows_the_services_refusals_on_the_meter_form(admin_client, make_meter, tenant):
    form = {"api_name": "visitors", "label": "", "aggregation": "UNIQUE_COUNT", "value_property": "meterValue",
            "unique_property": "", "dimensions": "[]", "unit": "", "description": "", "active": "on"}  # fmt: skip
    refused = admin_client.post(reverse("admin:metering_meter_add"), form)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors == {"unique_property": [UNIQUE_RULE]}
    assert not Meter.objects.filter(api_name="visitors").exists()
    added = admin_client.post(reverse("admin:metering_meter_add"), {**form, "unique_property": "visitor"})
    assert added.status_code == 302
    assert Meter.objects.get(api_name="visitors").label == "visitors"

    meter = make_meter()
    usage_events_ingest(events=[{"meterApiName": meter.api_name, "tenantId": str(tenant.pk), "meterValue": 1}])
    change = {**form, "api_name": meter.api_name, "aggregation": "MAX", "unique_property": ""}
    in_use = admin_client.post(reverse("admin:metering_meter_change", args=[meter.pk]), change)
    assert in_use.status_code == 200
    assert "it has usage events" in str(in_use.context["adminform"].form.non_field_errors())
    assert Meter.objects.get(pk=meter.pk).aggregation == "SUM"
    relabelled = {**change, "aggregation": "SUM", "label": "Calls"}
    renamed = admin_client.post(reverse("admin:metering_meter_change", args=[meter.pk]), relabelled)
    assert renamed.status_code == 302
    assert Meter.objects.get(pk=meter.pk).label == "Calls"


def test_the_fast_path_emulates_the_drf_view_as_configured():
    assert fast_ingest_check() == []
    assert "metering.E001" not in [message.id for message in checks.run_checks()]


def test_a_throttle_the_fast_path_would_skip_stops_the_server_from_starting():
    throttled = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"]}
    with override_settings(REST_FRAMEWORK=throttled):
        errors = fast_ingest_check()
        registered = [message.id for message in checks.run_checks()]
    assert [error.id for error in errors] == ["metering.E001"]
    assert "throttle_classes" in errors[0].msg
    assert "metering.E001" in registered


def test_the_group_commit_takes_its_largest_group_from_the_settings():
    assert ingest._group_commit._max_size() == 1000
    with override_settings(SBT={**getattr(settings, "SBT", {}), "USAGE_GROUP_COMMIT_MAX_GROUP_EVENTS": 200}):
        assert ingest._group_commit._max_size() == 200
