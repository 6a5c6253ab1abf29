"""groupBy on a dimension whatever its name: quotes, spaces, SQL and Django's lookup separator
are only text, on the SQL path over the rollups and on the path that computes in Python (the
raw-events fallback on PostgreSQL, every query on SQLite)."""

from datetime import UTC, datetime

import pytest

from metering.interface import UsageQuery
from metering.providers.native import usage_windows_portable
from metering.selectors import usage_windows

pytestmark = pytest.mark.django_db

NAMES = ["it's", 'say "hi"', "plan tier", "x'); DROP TABLE metering_meter; --", "a__b", "0", "#"]


def _events(tenant, moment: datetime) -> list[dict]:
    milliseconds = int(moment.timestamp()) * 1000
    return [
        {
            "eventId": f"{tenant.name}-{milliseconds}-{number}",
            "meterApiName": "odd-names",
            "tenantId": str(tenant.pk),
            "meterValue": number + 1,
            "timestamp": milliseconds + number,
            "dimensions": {name: f"{name}={number % 2}" for name in NAMES},
        }
        for number in range(4)
    ]


@pytest.fixture(autouse=True)
def long_backdating(settings):
    settings.SBT = {"USAGE_MAX_BACKDATE_DAYS": 36500}


@pytest.fixture
def meter(make_meter):
    return make_meter("odd-names", "SUM", dimensions=tuple(NAMES))


def _ingest(api, events: list[dict]) -> None:
    response = api().post("/api/v1/usage", {"events": events}, format="json")
    assert response.status_code == 201, response.content


def _groups(response, name: str) -> dict:
    assert response.status_code == 200, response.content
    return {item["group"][name]: item["value"] for item in response.json()["data"]["results"]}


@pytest.mark.parametrize("name", NAMES)
def test_a_dimension_of_any_name_groups_on_both_paths(api, tenant, meter, name):
    _ingest(api, _events(tenant, datetime(2026, 1, 5, 10, tzinfo=UTC)))
    day = {"startTimeInSeconds": 1767571200, "endTimeInSeconds": 1767657600, "timeGroupingInterval": "DAY"}
    response = api().get(f"/api/v1/usage/{meter.pk}", {**day, "groupBy": name})
    assert _groups(response, name) == {f"{name}=0": 1 + 3, f"{name}=1": 2 + 4}

    query = {"meter": meter, "tenant_id": None, "interval": "DAY", "time_zone": "UTC", "group_by": name}
    start, end = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC)
    portable = usage_windows_portable(
        UsageQuery(meter_id=meter.pk, aggregation="SUM", tenant_id=None, start=start, end=end,
                   interval="DAY", time_zone="UTC", group_by=name)
    )  # fmt: skip
    assert portable == usage_windows(start=start, end=end, **query)


def test_group_by_a_quoted_name_in_a_zone_read_from_raw_events(api, tenant, meter):
    # Liberia's days started at 00:44:30 UTC until 1972: not whole rollup buckets, so the
    # query reads the raw events in Python.
    _ingest(api, _events(tenant, datetime(1971, 3, 2, 12, tzinfo=UTC)))
    response = api().get(
        f"/api/v1/usage/{meter.pk}",
        {"startTimeInSeconds": 36633600, "endTimeInSeconds": 36892800, "timeZone": "Africa/Monrovia",
         "groupBy": 'say "hi"'},
    )  # fmt: skip
    assert _groups(response, 'say "hi"') == {'say "hi"=0': 4, 'say "hi"=1': 6}
