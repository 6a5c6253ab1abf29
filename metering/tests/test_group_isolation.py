"""One caller's events never fail another caller's request in the same group commit (#13 hole 1).

Requests of several tenants share a transaction (metering/services/ingest.py); a request whose
content makes that transaction fail must get its own error, and every other request of the
group its own success.
"""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests

from metering.interface import IngestResult
from metering.models import UsageEvent
from metering.services import usage_events_ingest
from metering.services.ingest import _ingest_group
from sbt_site.errors import InvalidInput

pytestmark = pytest.mark.django_db(transaction=True)

HUGE = "90000000000000000000000000000"  # 9e28: a valid value, but two of them overflow a rollup total


def _event(event_id: str, meter, tenant, value="1", **fields) -> dict:
    moment = datetime.now(UTC) - timedelta(minutes=2)
    return {
        "eventId": event_id,
        "meterApiName": meter.api_name,
        "tenantId": str(tenant.pk),
        "meterValue": value,
        "timestamp": moment.isoformat(),
        **fields,
    }


def test_a_batch_that_fails_the_shared_transaction_fails_alone(make_tenant, make_meter):
    meter = make_meter("calls", "SUM")
    victim_a, victim_b, attacker = make_tenant("a"), make_tenant("b"), make_tenant("evil")
    batches = [
        ([_event("a-1", meter, victim_a)], None),
        ([_event("x-1", meter, attacker, HUGE), _event("x-2", meter, attacker, HUGE)], None),  # sum overflows
        ([_event("x-3", meter, attacker, meterApiName="calls\x00")], None),
        ([_event("b-1", meter, victim_b)], None),
    ]
    outcomes = _ingest_group(batches)
    assert isinstance(outcomes[0], IngestResult) and outcomes[0].accepted == 1
    assert isinstance(outcomes[1], InvalidInput) and outcomes[1].code == "usage_total_out_of_range"
    assert isinstance(outcomes[2], InvalidInput)  # an unknown meter, not a database error for the group
    assert isinstance(outcomes[3], IngestResult) and outcomes[3].accepted == 1
    assert set(UsageEvent.objects.values_list("event_id", flat=True)) == {"a-1", "b-1"}


def test_a_usage_total_past_the_rollups_limit_is_the_senders_422_not_a_500(make_tenant, make_meter, api):
    meter = make_meter("calls", "SUM")
    tenant = make_tenant("acme")
    usage_events_ingest(events=[_event("first", meter, tenant, HUGE)])
    response = api().post("/api/v1/usage", _event("second", meter, tenant, HUGE), format="json")
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "usage_total_out_of_range"
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["first"]


def test_victims_never_fail_while_an_attacker_poisons_their_groups(make_tenant, make_meter, make_token, live_server):
    """Real threads through a real server and the fast path: victims of three tenants send valid
    single events while an attacker sends events that fail validation or overflow the rollups.
    Every victim request is a 201 and every victim event is stored once."""
    meter = make_meter("calls", "SUM")
    victims = [make_tenant(f"victim-{number}") for number in range(3)]
    attacker = make_tenant("attacker")
    tokens = {tenant.pk: make_token(scopes="usage/usage_write", tenant=tenant) for tenant in [*victims, attacker]}
    poisons = [
        _event("p-huge", meter, attacker, HUGE),
        _event("p-1e20", meter, attacker, "1e20"),  # once a decimal.InvalidOperation for the whole group
        _event("p-nul", meter, attacker, meterApiName="calls\x00"),
        _event("p-nan", meter, attacker, "NaN"),
    ]
    victim_answers: list[tuple[str, int]] = []
    attacker_answers: list[int] = []
    failures: list[BaseException] = []
    start = threading.Barrier(len(victims) * 2 + 2)

    def victim(tenant, number: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {tokens[tenant.pk]}"
        try:
            start.wait(10)
            for sent in range(25):
                event_id = f"{tenant.name}-{number}-{sent}"
                body = _event(event_id, meter, tenant)
                response = session.post(f"{live_server.url}/api/v1/usage", json=body, timeout=30)
                victim_answers.append((event_id, response.status_code))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    def poisoner(number: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {tokens[attacker.pk]}"
        try:
            start.wait(10)
            for sent in range(40):
                poison = {**poisons[sent % len(poisons)], "eventId": f"p-{number}-{sent}"}
                response = session.post(f"{live_server.url}/api/v1/usage", json=poison, timeout=30)
                attacker_answers.append(response.status_code)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=victim, args=(tenant, n)) for tenant in victims for n in range(2)]
    threads += [threading.Thread(target=poisoner, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), "a client was left waiting"
    assert failures == []
    assert len(victim_answers) == len(victims) * 2 * 25
    assert {status for _, status in victim_answers} == {201}
    stored = list(UsageEvent.objects.filter(tenant_id__in=[tenant.pk for tenant in victims]).values_list("event_id"))
    assert sorted(event_id for (event_id,) in stored) == sorted(event_id for event_id, _ in victim_answers)
    assert attacker_answers and all(400 <= status < 500 or status == 201 for status in attacker_answers)
    assert 500 not in attacker_answers
