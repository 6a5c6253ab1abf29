"""Usage ingestion in the metrics (sbt_site/metrics.py): events by meter and outcome, refused
batches by reason, and the group commit's size."""

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from metering.services import usage_events_ingest
from sbt_site.errors import InvalidInput


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def counted(*series) -> list[float]:
    return [value(name, **labels) for name, labels in series]


def event(tenant, meter: str = "api-calls", **fields) -> dict:
    return {"meterApiName": meter, "tenantId": str(tenant.pk), "timestamp": timezone.now().isoformat(), **fields}


SERIES = (
    ("sbt_usage_events_total", {"meter": "api-calls", "outcome": "accepted"}),
    ("sbt_usage_events_total", {"meter": "api-calls", "outcome": "duplicate"}),
    ("sbt_usage_events_total", {"meter": "storage", "outcome": "accepted"}),
    ("sbt_usage_events_total", {"meter": "(several)", "outcome": "accepted"}),
    ("sbt_usage_events_total", {"meter": "(several)", "outcome": "duplicate"}),
    ("sbt_usage_events_refused_total", {"reason": "validation_error"}),
    ("sbt_usage_group_commit_batches_count", {}),
)


@pytest.mark.django_db(transaction=True)
def test_posted_events_are_counted_by_meter_and_outcome_through_the_group_commit(api, tenant, make_meter):
    make_meter("api-calls")
    make_meter("storage")
    client = api()
    before = counted(*SERIES)
    batch = {"events": [event(tenant, eventId=f"a{i}", meterValue=1) for i in range(5)]}
    assert client.post("/api/v1/usage", batch, format="json").json()["data"] == {"accepted": 5, "duplicates": 0}
    assert client.post("/api/v1/usage", batch, format="json").json()["data"] == {"accepted": 0, "duplicates": 5}
    both = {"events": [event(tenant, eventId="b1", meterValue=1), event(tenant, "storage", eventId="s1", meterValue=2)]}
    assert client.post("/api/v1/usage", both, format="json").status_code == 201
    # two meters, one event new and one a duplicate: the store does not say which meter's was new
    partly = {"events": [both["events"][0], event(tenant, "storage", eventId="s2", meterValue=2)]}
    assert client.post("/api/v1/usage", partly, format="json").json()["data"] == {"accepted": 1, "duplicates": 1}
    unknown = {"events": [event(tenant, "no-such-meter", meterValue=1), event(tenant, meterValue=1)]}
    assert client.post("/api/v1/usage", unknown, format="json").status_code == 422

    after = counted(*SERIES)
    assert [round(b - a) for a, b in zip(before, after, strict=True)] == [6, 5, 1, 1, 1, 2, 5]


def test_a_batch_ingested_in_a_transaction_is_counted_too(tenant, make_meter):
    make_meter("api-calls")
    before = counted(*SERIES)
    usage_events_ingest(events=[event(tenant, eventId="t1", meterValue=3)])
    with pytest.raises(InvalidInput):
        usage_events_ingest(events=[event(tenant, eventId="t2")])  # a SUM meter needs its value
    after = counted(*SERIES)
    assert [round(b - a) for a, b in zip(before, after, strict=True)] == [1, 0, 0, 0, 0, 1, 0]
