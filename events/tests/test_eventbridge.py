"""The EventBridge transport against moto's server mode: a real HTTP server speaking the
EventBridge and SQS APIs, driven by the real boto3 client. A bus, a rule matching the control
plane's source with an SQS queue as its target, tenants onboarded and offboarded through the API:
every event the control plane published is in the queue once, as SBT's control plane puts it.

The fault tests start with the bus unreachable (nothing listens on its port) or missing (moto
answers ResourceNotFoundException): nothing is lost, everything arrives after recovery; and a
local fake EventBridge answering FailedEntries for some entries shows only those are sent again.
"""

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import requests
from django.utils import timezone

from events.catalogue import control_plane_source, wire_name
from events.interface import BusEntry
from events.models import BusPublication, Event
from events.providers.eventbridge import EventBridgeTransport
from events.services import bus_batch, bus_publications_send, event_replay, events_sweep
from events.tests.subprocesses import free_port, port_open, wait_for

BUS = "sbt-test-bus"
SCOPES = "tenant/tenant_read tenant/tenant_write"
REGION = "us-east-1"


class MotoServer:
    """``moto_server`` in a subprocess on a loopback port; ``start`` and ``stop`` may be called
    again (a restarted server has lost its buses and queues, as a new account would)."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        moto_server = Path(sys.executable).parent / "moto_server"
        self.process = subprocess.Popen(
            [str(moto_server), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port), timeout=60, what="moto_server to listen")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def aws_env(monkeypatch, settings):
    """Fake credentials, boto3's endpoint variables pointing at a loopback port, and the
    EventBridge transport configured as settings.py configures it from EVENTBRIDGE_BUS_NAME."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTS", url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", url)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    settings.SBT_PROVIDERS = {
        "events": {
            "BACKEND": "events.providers.eventbridge.EventBridgeTransport",
            "OPTIONS": {"bus_name": BUS, "region_name": REGION, "connect_timeout": 1.0, "read_timeout": 5.0},
        }
    }
    # Retries due again within 10 ms whatever the attempt, so a sweep finds every failed
    # publication due in real time (the task that sends them reads the clock, not the sweep's now).
    settings.SBT = {
        **getattr(settings, "SBT", {}),
        "EVENT_BUS_BACKOFF_SECONDS": 0.01,
        "EVENT_BUS_BACKOFF_MAX_SECONDS": 0.01,
    }
    server = MotoServer(port)
    yield server
    server.stop()


class Bus:
    """The AWS side an SBT application plane has: the bus, a rule matching the control plane's
    events, and an SQS queue the rule delivers to."""

    def __init__(self):
        self.events = boto3.client("events", region_name=REGION, endpoint_url=os.environ["AWS_ENDPOINT_URL_EVENTS"])
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.events.create_event_bus(Name=BUS)
        self.queue_url = self.sqs.create_queue(QueueName="application-plane")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.events.put_rule(
            Name="control-plane-events",
            EventBusName=BUS,
            EventPattern=json.dumps({"source": [control_plane_source()]}),
        )
        self.events.put_targets(
            Rule="control-plane-events", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}]
        )

    def drain(self, *, expect: int, timeout: float = 30.0) -> list[dict]:
        """Every message in the queue, waiting until at least ``expect`` arrived, then reading on
        until the queue stays empty (a duplicate would show)."""
        messages: list[dict] = []

        def receive():
            answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for message in answer.get("Messages", []):
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            return len(messages) >= expect

        wait_for(receive, timeout=timeout, what=f"{expect} messages in the queue")
        leftover = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        assert not leftover.get("Messages"), "more messages than events published"
        return messages


def as_sbt_puts_them(events) -> list[tuple[str, str, str]]:
    """(source, detail-type, detail) of outbox events, as SBT's control plane puts them on its
    bus (sbt-aws resources/functions/tenant-registrations/index.py: Source, DetailType, Detail)."""
    return sorted(
        (event.source, wire_name(event.detail_type), json.dumps(event.detail, sort_keys=True)) for event in events
    )


def as_received(messages: list[dict]) -> list[tuple[str, str, str]]:
    return sorted(
        (message["source"], message["detail-type"], json.dumps(message["detail"], sort_keys=True))
        for message in messages
    )


def onboard_and_offboard(base_url: str, token: str, names: list[str]) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    for name in names:
        created = requests.post(
            f"{base_url}/api/v1/tenant-registrations",
            json={"tenantData": {"tenantName": name, "email": f"ops@{name}.test", "tier": "basic"}},
            headers=auth,
            timeout=30,
        )
        assert created.status_code == 201, created.text
        registration_id = created.json()["data"]["tenantRegistrationId"]
        deleted = requests.delete(f"{base_url}/api/v1/tenant-registrations/{registration_id}", headers=auth, timeout=30)
        assert deleted.status_code == 200, deleted.text


@pytest.mark.django_db(transaction=True)
def test_onboarded_and_offboarded_tenants_reach_the_queue_once_as_sbt_sends_them(live_server, aws_env, make_token):
    aws_env.start()
    bus = Bus()

    onboard_and_offboard(live_server.url, make_token(scopes=SCOPES), ["acme", "globex", "initech"])

    published = Event.objects.filter(direction=Event.Direction.OUTBOUND)
    detail_types = sorted(event.detail_type for event in published)
    assert detail_types == ["offboardingRequest"] * 3 + ["onboardingRequest"] * 3
    messages = bus.drain(expect=len(published))
    assert as_received(messages) == as_sbt_puts_them(published)
    for message in messages:
        assert message["source"] == control_plane_source()
        assert message["detail-type"] in (wire_name("onboardingRequest"), wire_name("offboardingRequest"))
    onboarding = [m for m in messages if m["detail-type"] == wire_name("onboardingRequest")]
    assert sorted(m["detail"]["tenantName"] for m in onboarding) == ["acme", "globex", "initech"]
    assert all({"tenantId", "tenantRegistrationId"} <= set(m["detail"]) for m in onboarding)
    publications = BusPublication.objects.all()
    assert {p.status for p in publications} == {BusPublication.Status.SUCCEEDED}
    assert {str(p.bus_event_id) for p in publications} == {m["id"] for m in messages}

    # Dispatching or sweeping again sends nothing twice.
    for event in published:
        event_replay(event=event)
    events_sweep(now=timezone.now() + timedelta(minutes=5))
    bus.drain(expect=0)


@pytest.mark.django_db(transaction=True)
def test_nothing_is_lost_while_the_bus_is_unreachable(live_server, aws_env, make_token):
    # Nothing listens on the bus's port: every PutEvents fails to connect.
    onboard_and_offboard(live_server.url, make_token(scopes=SCOPES), ["acme", "globex"])
    publications = BusPublication.objects.all()
    assert publications.count() == 4
    assert {p.status for p in publications} == {BusPublication.Status.FAILED}
    assert all("PutEvents failed" in p.last_error for p in publications)

    # Another failed round, then the bus comes up: the sweep sends everything, once.
    attempts = dict(publications.values_list("pk", "attempts"))
    events_sweep(now=timezone.now() + timedelta(minutes=5))
    assert all(p.attempts == attempts[p.pk] + 1 for p in BusPublication.objects.all())
    aws_env.start()
    bus = Bus()
    result = events_sweep(now=timezone.now() + timedelta(minutes=5))
    assert result["bus"] is True
    published = Event.objects.filter(direction=Event.Direction.OUTBOUND)
    assert as_received(bus.drain(expect=4)) == as_sbt_puts_them(published)
    assert {p.status for p in BusPublication.objects.all()} == {BusPublication.Status.SUCCEEDED}


@pytest.mark.django_db(transaction=True)
def test_nothing_is_lost_while_moto_refuses_the_calls(live_server, aws_env, make_token):
    # The server answers, but with errors: the bus does not exist yet (ResourceNotFoundException).
    aws_env.start()
    onboard_and_offboard(live_server.url, make_token(scopes=SCOPES), ["acme"])
    assert all("ResourceNotFoundException" in p.last_error for p in BusPublication.objects.all())

    bus = Bus()
    events_sweep(now=timezone.now() + timedelta(minutes=5))
    published = Event.objects.filter(direction=Event.Direction.OUTBOUND)
    assert as_received(bus.drain(expect=2)) == as_sbt_puts_them(published)


def backlog(count: int, settings) -> list[Event]:
    """Events a crash left with their publications written and never sent."""
    from events.services import event_publish

    settings.SBT = {**settings.SBT, "EVENT_DISPATCH_ON_COMMIT": False}
    events = [event_publish(detail_type="onboardingRequest", detail={"tenantId": f"t-{n}"}) for n in range(count)]
    Event.objects.update(dispatched_at=timezone.now())
    BusPublication.objects.bulk_create([BusPublication(event=event) for event in events])
    return events


@pytest.mark.django_db(transaction=True)
def test_events_a_crash_left_unsent_are_sent_by_the_sweep(aws_env, settings):
    """A process that died between commit and dispatch (EVENT_DISPATCH_ON_COMMIT off), and one
    that died after writing the publication, before sending it."""
    from events.services import event_publish

    aws_env.start()
    bus = Bus()
    dispatched_not_sent = backlog(1, settings)
    never_dispatched = event_publish(detail_type="offboardingRequest", detail={"tenantId": "t-2"})

    assert events_sweep()["bus"] is False, "within the grace period the normal send may still come"
    events_sweep(now=timezone.now() + timedelta(minutes=1))
    assert as_received(bus.drain(expect=2)) == as_sbt_puts_them([*dispatched_not_sent, never_dispatched])


@pytest.mark.django_db(transaction=True)
def test_a_backlog_arrives_whole(aws_env, settings):
    aws_env.start()
    bus = Bus()
    events = backlog(23, settings)
    assert bus_publications_send() == {"attempted": 23, "more": False}
    assert as_received(bus.drain(expect=23)) == as_sbt_puts_them(events)


class FakeEventBridge:
    """A local EventBridge that answers PutEvents (awsJson1_1, as boto3 sends it) and refuses the
    entries whose detail carries ``"refuse": true`` the first ``refusals`` times it sees them."""

    def __init__(self, refusals: int = 1):
        self.calls: list[list[dict]] = []
        self.refused: dict[str, int] = {}
        self.refusals = refusals
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.headers["X-Amz-Target"] == "AWSEvents.PutEvents"
                fake.calls.append(body["Entries"])
                results = []
                for number, entry in enumerate(body["Entries"]):
                    detail = json.loads(entry["Detail"])
                    key = detail.get("tenantId")
                    if detail.get("refuse") and fake.refused.get(key, 0) < fake.refusals:
                        fake.refused[key] = fake.refused.get(key, 0) + 1
                        results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
                    else:
                        results.append({"EventId": f"{len(fake.calls)}-{number}"})
                failed = sum("ErrorCode" in result for result in results)
                answer = json.dumps({"FailedEntryCount": failed, "Entries": results}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.django_db(transaction=True)
def test_failed_entries_alone_are_sent_again_with_backoff(aws_env, monkeypatch, settings):
    from events.services import event_publish

    fake = FakeEventBridge(refusals=2)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTS", fake.url)
    settings.SBT = {**settings.SBT, "EVENT_BUS_BACKOFF_SECONDS": 60.0, "EVENT_BUS_BACKOFF_MAX_SECONDS": 900.0}
    try:
        event_publish(detail_type="onboardingRequest", detail={"tenantId": "ok-1"})
        refused = event_publish(detail_type="onboardingRequest", detail={"tenantId": "no-1", "refuse": True})
        row = BusPublication.objects.get(event=refused)
        assert row.status == BusPublication.Status.FAILED and row.attempts == 1
        assert row.last_error == "InternalFailure: try again"
        assert timedelta(seconds=30) <= row.next_attempt_at - timezone.now() <= timedelta(seconds=60), "backoff"
        assert bus_publications_send()["attempted"] == 0, "not due before its backoff"

        BusPublication.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
        assert bus_publications_send()["attempted"] == 1
        row.refresh_from_db()
        assert row.attempts == 2 and row.next_attempt_at - timezone.now() > timedelta(seconds=55), "backoff doubles"

        BusPublication.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
        bus_publications_send()
        row.refresh_from_db()
        assert row.status == BusPublication.Status.SUCCEEDED and row.attempts == 3
        sent = [json.loads(entry["Detail"])["tenantId"] for call in fake.calls for entry in call]
        assert sorted(sent) == ["no-1", "no-1", "no-1", "ok-1"], "the accepted entry was never sent again"
    finally:
        fake.close()


@pytest.mark.django_db(transaction=True)
def test_a_backlog_goes_in_calls_of_at_most_ten_entries(aws_env, monkeypatch, settings):
    fake = FakeEventBridge()
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTS", fake.url)
    try:
        backlog(23, settings)
        bus_publications_send()
        assert [len(call) for call in fake.calls] == [10, 10, 3]
        assert all(entry["EventBusName"] == BUS for call in fake.calls for entry in call)
    finally:
        fake.close()


def test_batches_hold_at_most_ten_entries_and_256_kib():
    transport = EventBridgeTransport(bus_name=BUS, region_name=REGION)

    def entry(number: int, detail_bytes: int) -> BusEntry:
        detail = json.dumps({"pad": "x" * (detail_bytes - 11)})
        return BusEntry(
            key=str(number), source="sbt.control.plane", detail_type="sbt_aws_onboardingRequest", detail=detail
        )

    small = [entry(n, 100) for n in range(25)]
    batch, too_large = bus_batch(small, transport)
    assert [e.key for e in batch] == [str(n) for n in range(10)] and too_large == []

    large = [entry(n, 100_000) for n in range(5)]
    batch, _ = bus_batch(large, transport)
    assert len(batch) == 2 and sum(transport.entry_size(e) for e in batch) <= 256 * 1024

    oversize = [entry(0, 300_000), entry(1, 100)]
    batch, too_large = bus_batch(oversize, transport)
    assert [e.key for e in batch] == ["1"] and [e.key for e in too_large] == ["0"]

    # EventBridge counts UTF-8 bytes, not characters.
    assert transport.entry_size(BusEntry(key="k", source="s", detail_type="t", detail='{"a":"é"}')) == 1 + 1 + 10


@pytest.mark.django_db
def test_the_admin_lists_publications_and_replays_a_dead_one(admin_client, django_capture_on_commit_callbacks):
    from events.services import event_publish

    with django_capture_on_commit_callbacks(execute=True):
        event = event_publish(detail_type="onboardingRequest", detail={"tenantId": "t-1"})
    dead = BusPublication.objects.create(
        event=event, status=BusPublication.Status.DEAD, attempts=30, last_error="InternalFailure: try again"
    )
    page = admin_client.get("/admin/events/buspublication/")
    assert page.status_code == 200 and str(event.pk) in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        answer = admin_client.post(
            "/admin/events/buspublication/", {"action": "replay_publication", "_selected_action": [dead.pk]}
        )
    assert answer.status_code == 302
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == (BusPublication.Status.PENDING, 0), "no bus configured: it waits"
    assert admin_client.post(f"/admin/events/buspublication/{dead.pk}/delete/").status_code == 403
