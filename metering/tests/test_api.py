"""The /meters and /usage routes: contract shapes, scopes, tenant binding, bad input."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from metering.models import ROLLUP_SPANS, Meter, UsageEvent, UsageRollup

SECONDS = int(timezone.now().timestamp())


def event(tenant, **fields):
    return {"meterApiName": "api-calls", "tenantId": str(tenant.pk), "meterValue": 1, **fields}


@pytest.mark.django_db
def test_meter_crud_follows_the_contract(api):
    client = api("meter/meter_read meter/meter_write")
    created = client.post(
        "/api/v1/meters",
        {"meterApiName": "storage", "label": "Storage", "meterType": "max", "unit": "GB", "dimensions": ["region"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    meter = created.json()["data"]
    assert meter["aggregation"] == "MAX"
    assert meter["valueProperty"] == "meterValue"
    assert set(meter) == {
        "meterId", "meterApiName", "label", "aggregation", "valueProperty", "uniqueProperty", "dimensions",
        "unit", "description", "active", "created", "modified",
    }  # fmt: skip
    assert (
        client.post("/api/v1/meters", {"meterApiName": "storage", "aggregation": "SUM"}, format="json").status_code
        == 409
    )
    listed = client.get("/api/v1/meters").json()
    assert [item["meterApiName"] for item in listed["data"]] == ["storage"]
    assert "next_token" not in listed
    updated = client.put(f"/api/v1/meters/{meter['meterId']}", {"label": "Disk"}, format="json")
    assert updated.json()["data"]["label"] == "Disk"
    assert client.get(f"/api/v1/meters/{meter['meterId']}").json()["data"]["label"] == "Disk"
    assert client.delete(f"/api/v1/meters/{meter['meterId']}").status_code == 200
    missing = client.get(f"/api/v1/meters/{meter['meterId']}")
    assert missing.status_code == 404
    assert missing.json()["message"] == f"Meter not found for id {meter['meterId']}"


@pytest.mark.django_db
def test_bad_meters_are_422(api):
    client = api("meter/meter_write")
    for body in (
        {"meterApiName": "x", "aggregation": "MEDIAN"},
        {"meterApiName": "x"},
        {"meterApiName": "has space", "aggregation": "SUM"},
        {"meterApiName": "u", "aggregation": "UNIQUE_COUNT"},
    ):
        response = client.post("/api/v1/meters", body, format="json")
        assert response.status_code == 422, body
        assert response.json()["detail"]
    assert Meter.objects.count() == 0


@pytest.mark.django_db
def test_a_meter_with_events_is_deleted_only_once_archived(api, tenant, make_meter):
    meter = make_meter()
    client = api()
    assert client.post("/api/v1/usage", event(tenant), format="json").status_code == 201
    refused = client.delete(f"/api/v1/meters/{meter.pk}")
    assert refused.status_code == 409
    changed = client.put(f"/api/v1/meters/{meter.pk}", {"aggregation": "MAX"}, format="json")
    assert changed.status_code == 409
    assert client.put(f"/api/v1/meters/{meter.pk}", {"active": False}, format="json").status_code == 200
    assert client.post("/api/v1/usage", event(tenant), format="json").status_code == 422, "archived meters refuse usage"
    assert client.delete(f"/api/v1/meters/{meter.pk}").status_code == 200
    assert UsageEvent.objects.count() == 0


@pytest.mark.django_db
def test_ingest_query_and_cancel_over_http(api, tenant, make_meter):
    meter = make_meter(dimensions=("region",))
    client = api()
    now = timezone.now()
    batch = {"events": [event(tenant, eventId=f"e{i}", meterValue=i, dimensions={"region": "eu" if i % 2 else "us"})
                        for i in range(10)]}  # fmt: skip
    first = client.post("/api/v1/usage", batch, format="json")
    assert first.status_code == 201
    assert first.json() == {"data": {"accepted": 10, "duplicates": 0}}
    assert client.post("/api/v1/usage", batch, format="json").json() == {"data": {"accepted": 0, "duplicates": 10}}
    query = client.get(f"/api/v1/usage/{meter.pk}", {"tenantId": str(tenant.pk), "groupBy": "region"})
    assert query.status_code == 200, query.json()
    data = query.json()["data"]
    assert (data["meterId"], data["meterApiName"], data["aggregation"], data["timeGroupingInterval"]) == (
        str(meter.pk), "api-calls", "SUM", "DAY",
    )  # fmt: skip
    by_region = {}
    for result in data["results"]:
        by_region[result["group"]["region"]] = by_region.get(result["group"]["region"], 0) + result["value"]
    assert by_region == {"eu": 25, "us": 20}
    # JSON integers (PostgreSQL's sum of the rollups' counts used to come back as a Decimal: 5.0)
    assert all(type(result["eventCount"]) is int for result in data["results"])
    assert sum(result["eventCount"] for result in data["results"]) == 10
    cancelled = client.delete("/api/v1/usage", {"eventIds": ["e1", "e2", "nope"]}, format="json")
    assert cancelled.json() == {"data": {"cancelled": 2}}
    assert client.delete("/api/v1/usage", {"eventIds": ["e1", "e2"]}, format="json").json()["data"]["cancelled"] == 0
    total = sum(r["value"] for r in client.get(f"/api/v1/usage/{meter.pk}").json()["data"]["results"])
    assert total == 45 - 3
    assert UsageEvent.objects.count() == 10
    time.sleep(2)
    client.post("/api/v1/usage", event(tenant, eventId="late", meterValue=100), format="json")
    second = int(UsageEvent.objects.get(event_id="late").ingested_at.timestamp())
    time_range = {"startTimeInSeconds": second, "endTimeInSeconds": second + 1}
    by_filter = client.delete(
        "/api/v1/usage", {"meterApiName": "api-calls", "ingestionTimeRange": time_range}, format="json"
    )
    assert by_filter.json() == {"data": {"cancelled": 1}}
    for span in ROLLUP_SPANS:
        assert sum(row.total for row in UsageRollup.objects.filter(span=span)) == 42
    assert now  # the query defaults (last 24 h) covered the events sent just now


@pytest.mark.django_db
def test_bad_events_are_422_naming_each_by_index_and_nothing_is_stored(api, make_tenant, make_meter):
    make_meter()
    tenant, inactive = make_tenant("ok"), make_tenant("gone", active=False)
    client = api()
    events = [
        event(tenant),  # 0: fine
        {"tenantId": str(tenant.pk), "meterValue": 1},  # 1: no meter
        event(tenant, meterValue="NaN"),  # 2
        event(tenant, meterValue="Infinity"),  # 3
        event(tenant, meterValue="ten"),  # 4
        event(tenant, meterApiName="nope"),  # 5
        event(tenant, tenantId="3f8a1b7e-0000-4000-8000-000000000000"),  # 6: unknown tenant
        event(inactive),  # 7: offboarded
        event(tenant, timestamp="yesterday"),  # 8
        event(tenant, timestamp=(timezone.now() + timedelta(days=2)).isoformat()),  # 9: future
        event(tenant, timestamp=(timezone.now() - timedelta(days=60)).isoformat()),  # 10: too old
        {"meterApiName": "api-calls", "tenantId": str(tenant.pk)},  # 11: no value
        event(tenant, meterValue=True),  # 12
        event(tenant, dimensions={"secret": "x"}),  # 13: dimension not allowed
        "not an object",  # 14
        event(tenant, tenantId="not-a-uuid"),  # 15
        event(tenant, meterApiName=["api-calls"], tenantId={"id": 1}, eventId=7, dimensions=[1]),  # 16
        event(tenant, eventId="nul\u0000byte"),  # 17: PostgreSQL text cannot hold NUL
    ]
    response = client.post("/api/v1/usage", {"events": events}, format="json")
    assert response.status_code == 422
    body = response.json()
    assert body["statusCode"] == 422
    bad = {tuple(item["loc"][:3]) for item in body["detail"]}
    assert bad == {("body", "events", index) for index in range(1, 18)}
    assert UsageEvent.objects.count() == 0
    huge = client.post("/api/v1/usage", {"events": [event(tenant)] * 1001}, format="json")
    assert huge.status_code == 422
    assert "at most 1000" in huge.json()["message"]
    raw = b'{"meterApiName": "api-calls", "tenantId": "%s", "meterValue": 1e400}' % str(tenant.pk).encode()
    overflow = client.post("/api/v1/usage", raw, content_type="application/json")
    assert overflow.status_code == 422
    assert overflow.json()["detail"][0]["loc"] == ["body", "events", 0, "meterValue"]
    # JSON may escape a lone surrogate, which no UTF-8 text column can hold
    raw = (
        b'{"meterApiName": "api-calls", "tenantId": "%s", "meterValue": 1, "eventId": "a\\ud800"}'
        % str(tenant.pk).encode()
    )
    surrogate = client.post("/api/v1/usage", raw, content_type="application/json")
    assert surrogate.status_code == 422
    assert surrogate.json()["detail"][0]["loc"] == ["body", "events", 0, "eventId"]
    assert UsageEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_tenant_bound_client_only_ingests_and_reads_its_tenant(api, make_tenant, make_meter):
    meter = make_meter()
    mine, other = make_tenant("mine"), make_tenant("other")
    bound = api(tenant=mine)
    foreign = bound.post("/api/v1/usage", event(other), format="json")
    assert foreign.status_code == 422
    assert foreign.json()["detail"][0]["msg"] == f"unknown tenant {other.pk}"
    assert bound.post("/api/v1/usage", {"meterApiName": "api-calls", "meterValue": 2}, format="json").status_code == 201
    api().post("/api/v1/usage", event(other, meterValue=5), format="json")
    results = bound.get(f"/api/v1/usage/{meter.pk}").json()["data"]["results"]
    assert [(r["tenantId"], r["value"]) for r in results] == [(str(mine.pk), 2)]
    assert bound.get(f"/api/v1/usage/{meter.pk}", {"tenantId": str(other.pk)}).status_code == 404
    everyone = api().get(f"/api/v1/usage/{meter.pk}").json()["data"]["results"]
    assert sorted(r["value"] for r in everyone) == [2, 5]


@pytest.mark.django_db
def test_usage_routes_need_their_scopes(api, make_meter):
    meter = make_meter()
    reader = api("usage/usage_read")
    assert reader.post("/api/v1/usage", {}, format="json").status_code == 403
    assert reader.delete("/api/v1/usage", {"eventIds": ["x"]}, format="json").status_code == 403
    assert api("usage/usage_write").get(f"/api/v1/usage/{meter.pk}").status_code == 403
    assert api(None).get(f"/api/v1/usage/{meter.pk}").status_code == 401
    assert api("meter/meter_read").post("/api/v1/meters", {}, format="json").status_code == 403


@pytest.mark.django_db
def test_bad_usage_queries_are_422_never_500(api, make_meter):
    meter = make_meter()
    client = api()
    for params in (
        {"timeZone": "Mars/Olympus"},
        {"timeGroupingInterval": "YEAR"},
        {"startTimeInSeconds": "soon"},
        {"startTimeInSeconds": SECONDS, "endTimeInSeconds": SECONDS - 10},
        {"groupBy": "region"},
        {"startTimeInSeconds": 0, "endTimeInSeconds": SECONDS, "timeGroupingInterval": "HOUR"},
        {"next_token": "forged"},
        {"limit": 0},
        {"tenantId": "x"},
    ):
        response = client.get(f"/api/v1/usage/{meter.pk}", params)
        assert response.status_code == 422, params
    assert client.get("/api/v1/usage/3f8a1b7e-0000-4000-8000-000000000000").status_code == 404
    for body in ({}, {"eventIds": []}, {"meterApiName": "api-calls"}, [1]):
        assert client.delete("/api/v1/usage", body, format="json").status_code == 422, body


@pytest.mark.django_db
def test_usage_results_are_paginated_without_skips_or_repeats(api, make_tenant, make_meter):
    meter = make_meter()
    tenants = [make_tenant(f"t{i}") for i in range(3)]
    client = api()
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=20)
    client.post(
        "/api/v1/usage",
        {"events": [event(t, timestamp=(start + timedelta(hours=h)).isoformat()) for t in tenants for h in range(20)]},
        format="json",
    )
    params = {"timeGroupingInterval": "HOUR", "limit": 7, "startTimeInSeconds": int(start.timestamp())}
    seen, token = [], None
    while True:
        page = client.get(f"/api/v1/usage/{meter.pk}", {**params, **({"next_token": token} if token else {})}).json()
        seen += [(r["tenantId"], r["windowStart"]) for r in page["data"]["results"]]
        token = page.get("next_token")
        if not token:
            break
    assert len(seen) == 60
    assert len(set(seen)) == 60
    assert datetime.fromisoformat(seen[0][1]).tzinfo is not None
    assert UTC
