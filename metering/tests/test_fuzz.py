"""Whatever JSON a client sends to the usage routes, the answer is a 2xx or a 4xx, never a 500."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    scalars, lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=12
)
event_fields = {
    "eventId": json_values,
    "meterApiName": st.sampled_from(["api-calls", "nope"]) | json_values,
    "tenantId": json_values,
    "meterValue": st.sampled_from(["1.5", "NaN", "-Infinity", "1e400", 10**40]) | json_values,
    "timestamp": st.sampled_from(["2026-02-30T00:00:00Z", "now", -1, 10**20, 1.5e12]) | json_values,
    "dimensions": st.dictionaries(st.sampled_from(["region", "x"]), json_values) | json_values,
}
events = st.fixed_dictionaries({}, optional=event_fields)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.django_db
@FUZZ
@given(body=st.one_of(events, st.fixed_dictionaries({"events": st.lists(events, max_size=5)}), json_values))
def test_ingesting_anything_never_fails_with_a_500(api, make_meter, tenant, body):
    if not _meter_exists():
        make_meter("api-calls", dimensions=("region",))
    response = api().post("/api/v1/usage", body, format="json")
    assert response.status_code in (201, 400, 413, 415, 422), response.content


@pytest.mark.django_db
@FUZZ
@given(params=st.dictionaries(st.sampled_from(["tenantId", "startTimeInSeconds", "endTimeInSeconds",
                                                "timeGroupingInterval", "timeZone", "groupBy", "limit", "next_token"]),
                              st.text(max_size=30) | st.integers().map(str)))  # fmt: skip
def test_querying_with_anything_never_fails_with_a_500(api, make_meter, params):
    meter = _meter_exists() or make_meter("api-calls", dimensions=("region",))
    response = api().get(f"/api/v1/usage/{meter.pk}", params)
    assert response.status_code in (200, 404, 422), response.content


@pytest.mark.django_db
@FUZZ
@given(body=json_values | st.fixed_dictionaries({}, optional={"eventIds": json_values, "meterApiName": json_values,
                                                               "tenantId": json_values,
                                                               "ingestionTimeRange": json_values}))  # fmt: skip
def test_cancelling_with_anything_never_fails_with_a_500(api, make_meter, body):
    if not _meter_exists():
        make_meter("api-calls")
    response = api().delete("/api/v1/usage", body, format="json")
    assert response.status_code in (200, 400, 404, 422), response.content


def _meter_exists():
    from metering.models import Meter

    return Meter.objects.filter(api_name="api-calls").first()
