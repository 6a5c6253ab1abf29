"""Group commit of small concurrent ingestions (metering/group_commit.py)."""

import random
import threading

import pytest
from django.db import connection, connections

from metering.group_commit import GroupCommit
from metering.models import UsageEvent, UsageEventKey
from metering.services import usage_events_ingest_shared
from metering.tests.reference import assert_rollups_hold, event_pool, run_threads
from sbt_site.errors import InvalidInput


def test_callers_arriving_during_a_write_share_the_next_one_and_each_gets_its_own_outcome():
    first_write_started, release_first_write = threading.Event(), threading.Event()
    groups = []

    def flush(items):
        groups.append(list(items))
        if len(groups) == 1:
            first_write_started.set()
            release_first_write.wait(10)
        return [ValueError(f"bad {item}") if item % 5 == 0 else item * 10 for item in items]

    group_commit = GroupCommit(flush, max_size=100)
    outcomes = {}

    def caller(number):
        if number:
            first_write_started.wait(10)  # everyone else arrives while the first write is running
        try:
            outcomes[number] = group_commit.submit(number)
        except ValueError as exc:
            outcomes[number] = str(exc)

    leader = threading.Thread(target=caller, args=(0,))
    leader.start()
    first_write_started.wait(10)
    others = [threading.Thread(target=caller, args=(number,)) for number in range(1, 12)]
    for thread in others:
        thread.start()
    # let the eleven queue up behind the running write, then finish it
    for _ in range(200):
        if len(group_commit._queue) == 11:
            break
        threading.Event().wait(0.01)
    release_first_write.set()
    for thread in [leader, *others]:
        thread.join(10)
        assert not thread.is_alive()
    assert groups[0] == [0]
    assert sorted(groups[1]) == list(range(1, 12)), "the eleven waiting callers were written together"
    assert outcomes == {n: (f"bad {n}" if n % 5 == 0 else n * 10) for n in range(12)}


def test_a_failed_write_is_raised_in_every_caller_of_its_group_and_the_next_group_still_runs():
    calls = []

    def flush(items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return list(items)

    group_commit = GroupCommit(flush, max_size=10)
    with pytest.raises(RuntimeError, match="database went away"):
        group_commit.submit("a")
    assert group_commit.submit("b") == "b"


def test_a_group_holds_at_most_max_size_events():
    sizes = []
    release = threading.Event()

    def flush(items):
        sizes.append(sum(size for _, size in items))
        release.wait(5)
        return items

    group_commit = GroupCommit(flush, max_size=100)

    def caller(number):
        group_commit.submit((number, 40), size=40)

    threads = [threading.Thread(target=caller, args=(number,)) for number in range(7)]
    for thread in threads:
        thread.start()
    threading.Event().wait(0.2)
    release.set()
    for thread in threads:
        thread.join(10)
    assert sum(sizes) == 280
    assert max(sizes) <= 80


@pytest.mark.django_db(transaction=True)
def test_concurrent_single_event_requests_are_stored_exactly_once_in_shared_transactions(make_tenant, make_meter):
    tenants = [make_tenant("a"), make_tenant("b"), make_tenant("c")]
    meter = make_meter("grouped", "SUM")
    pool = event_pool("g", meter, tenants, 150, newest_minutes=1, spread_minutes=90)
    accepted, duplicates, refused, failures = [], [], [], []

    def client(number: int) -> None:
        rng = random.Random(number)
        try:
            for request in range(40):
                if number == 0 and request % 10 == 0:
                    bad = {"eventId": f"bad-{request}", "meterApiName": meter.api_name, "meterValue": "NaN",
                           "tenantId": str(tenants[0].pk)}  # fmt: skip
                    with pytest.raises(InvalidInput):
                        usage_events_ingest_shared(events=[bad])
                    refused.append(request)
                    continue
                result = usage_events_ingest_shared(events=[rng.choice(pool)])
                accepted.append(result.accepted)
                duplicates.append(result.duplicates)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)
        finally:
            connections.close_all()

    run_threads(client, 12)
    assert failures == []
    stored = set(UsageEvent.objects.values_list("event_id", flat=True))
    assert not any(event_id.startswith("bad-") for event_id in stored), "a refused event was stored"
    assert len(refused) == 4
    assert sum(accepted) == len(stored), "each stored event was reported accepted exactly once"
    assert sum(accepted) + sum(duplicates) == 12 * 40 - 4
    expected_total = sum(int(event_id.split("-")[1]) for event_id in stored)
    assert_rollups_hold(meter, expected_total, len(stored))
    with connection.cursor() as cursor:
        # rows written by one transaction share its xmin: fewer transactions than events = grouped
        cursor.execute("SELECT count(DISTINCT xmin::text) FROM metering_usageeventkey")
        (transactions,) = cursor.fetchone()
    assert UsageEventKey.objects.count() == len(stored)
    assert transactions < len(stored), "concurrent requests shared no transaction"
