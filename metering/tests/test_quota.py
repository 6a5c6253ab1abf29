"""The ingestion quota per tenant (metering/services/quota.py): USAGE_EVENTS_PER_MINUTE_PER_TENANT
events per tenant per minute, on every face but the operator's file import; a tenant over it
gets 429 with Retry-After, and no other tenant is affected (#13)."""

import io
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.conf import settings
from django.test import override_settings

from metering.interface import IngestResult
from metering.models import UsageEvent
from metering.services import usage_events_ingest, usage_file_ingest
from metering.services.ingest import _ingest_group
from sbt_site.errors import TooManyRequests

URL = "/api/v1/usage"


def _quota(events_per_minute: int):
    return override_settings(SBT={**settings.SBT, "USAGE_EVENTS_PER_MINUTE_PER_TENANT": events_per_minute})


def _event(event_id: str, tenant, meter_api_name: str = "calls") -> dict:
    moment = datetime.now(UTC) - timedelta(minutes=1)
    return {
        "eventId": event_id,
        "meterApiName": meter_api_name,
        "tenantId": str(tenant.pk),
        "meterValue": 1,
        "timestamp": moment.isoformat(),
    }


def _stored() -> set[str]:
    return set(UsageEvent.objects.values_list("event_id", flat=True))


@pytest.fixture
def tenants(make_tenant, make_meter, minute_window):
    make_meter("calls", "SUM")
    return make_tenant("a"), make_tenant("b")


@pytest.mark.django_db
def test_a_tenant_over_its_quota_gets_429_with_retry_after_and_other_tenants_do_not(api, tenants):
    a, b = tenants
    client = api("usage/usage_write")
    with _quota(3):
        batch = {"events": [_event(f"a-{n}", a) for n in range(3)]}
        assert client.post(URL, batch, format="json").status_code == 201
        refused = client.post(URL, _event("a-over", a), format="json")
        accepted = client.post(URL, _event("b-1", b), format="json")
    assert refused.status_code == 429
    body = refused.json()
    assert body["statusCode"] == 429 and body["code"] == "usage_quota_exceeded"
    assert f"tenant {a.pk}" in body["message"] and "quota of 3 usage events a minute" in body["message"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert f"Retry after {refused['Retry-After']} seconds" in body["message"]
    assert accepted.status_code == 201
    assert _stored() == {"a-0", "a-1", "a-2", "b-1"}


@pytest.mark.django_db
def test_a_refused_batch_does_not_use_up_what_is_left(tenants):
    a, _ = tenants
    with _quota(5):
        usage_events_ingest(events=[_event(f"first-{n}", a) for n in range(3)])
        with pytest.raises(TooManyRequests):
            usage_events_ingest(events=[_event(f"too-many-{n}", a) for n in range(3)])
        usage_events_ingest(events=[_event(f"fits-{n}", a) for n in range(2)])
        with pytest.raises(TooManyRequests):
            usage_events_ingest(events=[_event("one-more", a)])
    assert len(_stored()) == 5


@pytest.mark.django_db
def test_a_batch_naming_a_tenant_over_its_quota_is_refused_whole(tenants):
    a, b = tenants
    with _quota(2):
        usage_events_ingest(events=[_event("a-1", a), _event("a-2", a)])
        with pytest.raises(TooManyRequests) as refused:
            usage_events_ingest(events=[_event("b-1", b), _event("a-3", a)])
        assert "one of the 2 tenants they name" in refused.value.message
        # b's events of the refused batch were not counted
        usage_events_ingest(events=[_event("b-2", b), _event("b-3", b)])
    assert _stored() == {"a-1", "a-2", "b-2", "b-3"}


@pytest.mark.django_db
def test_duplicates_count_and_no_quota_is_no_limit(tenants):
    a, _ = tenants
    with _quota(1):
        usage_events_ingest(events=[_event("once", a)])
        with pytest.raises(TooManyRequests):
            usage_events_ingest(events=[_event("once", a)])  # validated, so counted, though stored already
    with _quota(0):
        result = usage_events_ingest(events=[_event(f"free-{n}", a) for n in range(50)])
    assert result.accepted == 50


@pytest.mark.django_db
def test_inbound_ingest_usage_events_obey_the_quota(api, tenants):
    a, _ = tenants
    client = api("events/events_write usage/usage_write")
    entry = {"detail-type": "ingestUsage", "detail": {"events": [_event("bus-1", a), _event("bus-2", a)]}}
    with _quota(1):
        response = client.post("/api/v1/events", entry, format="json")
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "usage_quota_exceeded"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert _stored() == set()


@pytest.mark.django_db
def test_the_operators_file_import_is_exempt(tenants):
    a, _ = tenants
    lines = b"".join(json.dumps(_event(f"file-{n}", a)).encode() + b"\n" for n in range(5))
    with _quota(1):
        report = usage_file_ingest(handle=io.BytesIO(lines), file_format="jsonl", batch_size=2)
    assert (report.accepted, report.rejected_count) == (5, 0)


@pytest.mark.django_db(transaction=True)
def test_in_one_group_commit_only_the_tenant_over_its_quota_is_refused(tenants):
    a, b = tenants
    batches = [
        ([_event("a-1", a), _event("a-2", a)], None),
        ([_event("b-1", b)], None),
        ([_event("a-3", a)], None),  # a's third: over 2
        ([_event("b-2", b)], None),
    ]
    with _quota(2):
        outcomes = _ingest_group(batches)
    assert [type(outcome) for outcome in outcomes] == [IngestResult, IngestResult, TooManyRequests, IngestResult]
    assert _stored() == {"a-1", "a-2", "b-1", "b-2"}


@pytest.mark.django_db(transaction=True)
def test_concurrent_tenants_over_http_only_the_one_over_its_quota_gets_429(tenants, make_token, live_server):
    """Real threads through a real server and the fast path, so the two tenants' requests share
    group commits: a's past its quota are 429, b's all 201."""
    a, b = tenants
    tokens = {tenant.pk: make_token(scopes="usage/usage_write", tenant=tenant) for tenant in (a, b)}
    answers: dict = {a.pk: [], b.pk: []}
    failures: list[BaseException] = []
    plan = [(a, 30), (a, 30), (b, 10), (b, 10)]
    start = threading.Barrier(len(plan))

    def client(number: int, tenant, count: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {tokens[tenant.pk]}"
        try:
            start.wait(10)
            for sent in range(count):
                response = session.post(f"{live_server.url}{URL}", json=_event(f"{number}-{sent}", tenant), timeout=30)
                answers[tenant.pk].append(response.status_code)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    with _quota(20):
        threads = [threading.Thread(target=client, args=(n, *step)) for n, step in enumerate(plan)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert failures == []
    assert sorted(answers[a.pk]) == [201] * 20 + [429] * 40
    assert answers[b.pk] == [201] * 20
    assert UsageEvent.objects.filter(tenant_id=a.pk).count() == 20
