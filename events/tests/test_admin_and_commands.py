"""The operator's tools: admin pages and actions, and the management commands."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from events.crypto import secret_decrypt
from events.models import Delivery, Event, Subscription
from events.services import event_publish, subscription_create
from events.tests.conftest import verify_signature

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead_delivery(receiver, fast_retries, django_capture_on_commit_callbacks):
    """A delivery that gave up: the receiver answered 500 to every attempt."""
    receiver.default = 500
    subscription_create(url=receiver.url, event_types=[])
    with django_capture_on_commit_callbacks(execute=True):
        event = event_publish(detail_type="deactivateRequest", detail={"tenantId": "t-9"})
    Delivery.objects.filter(event=event).update(status=Delivery.Status.DEAD, attempts=3, next_attempt_at=None)
    receiver.default = 200
    return Delivery.objects.get(event=event)


def test_event_admin_lists_filters_and_shows_deliveries_inline(admin_client, dead_delivery, receiver):
    changelist = "/admin/events/event/"
    assert admin_client.get(changelist).status_code == 200
    for query in ("?delivery_status=dead", "?direction__exact=outbound", "?dispatched=yes"):
        page = admin_client.get(changelist + query)
        assert page.status_code == 200
        assert str(dead_delivery.event_id) in page.content.decode()
    for query in ("?delivery_status=succeeded", "?direction__exact=inbound", "?dispatched=no"):
        assert str(dead_delivery.event_id) not in admin_client.get(changelist + query).content.decode()
    detail = admin_client.get(f"/admin/events/event/{dead_delivery.event_id}/change/")
    assert detail.status_code == 200
    assert "dead (gave up)" in detail.content.decode()
    assert dead_delivery.subscription.url in detail.content.decode()


def test_event_admin_links_the_tenant_and_finds_events_by_tenant_id(admin_client):
    tenant_id = "5b0e4a8e-3f0c-4f57-9a55-0d1c7e2d9f10"
    event = event_publish(detail_type="onboardingRequest", detail={"tenantId": tenant_id, "tenantName": "acme"})
    other = event_publish(detail_type="onboardingRequest", detail={"tenantName": "none"})
    changelist = admin_client.get("/admin/events/event/").content.decode()
    assert f'href="/admin/tenants/tenant/{tenant_id}/change/"' in changelist
    found = admin_client.get("/admin/events/event/", {"q": tenant_id}).content.decode()
    assert str(event.pk) in found and str(other.pk) not in found
    page = admin_client.get(f"/admin/events/event/{event.pk}/change/").content.decode()
    assert f'href="/admin/tenants/tenant/{tenant_id}/change/"' in page
    assert "&quot;tenantName&quot;: &quot;acme&quot;" in page, "the detail is shown as indented JSON"


def test_event_admin_shows_and_finds_the_sender(admin_client):
    inbound = event_publish(
        detail_type="activateSuccess", detail={}, direction=Event.Direction.INBOUND, sender="client-abc123"
    )
    own = event_publish(detail_type="onboardingRequest", detail={})
    changelist = admin_client.get("/admin/events/event/").content.decode()
    assert "client client-abc123" in changelist and "control plane" in changelist
    found = admin_client.get("/admin/events/event/", {"q": "client-abc123"}).content.decode()
    assert str(inbound.pk) in found and str(own.pk) not in found
    assert "client client-abc123" in admin_client.get(f"/admin/events/event/{inbound.pk}/change/").content.decode()


def test_admin_replay_delivery_action_delivers(
    admin_client, dead_delivery, receiver, django_capture_on_commit_callbacks
):
    sent_before = len(receiver.requests)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/events/delivery/", {"action": "replay_delivery", "_selected_action": [str(dead_delivery.pk)]}
        )
    assert response.status_code == 302
    dead_delivery.refresh_from_db()
    assert dead_delivery.status == Delivery.Status.SUCCEEDED
    assert len(receiver.requests) == sent_before + 1


def test_admin_replay_event_action_delivers(admin_client, dead_delivery, receiver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/events/event/", {"action": "replay_event", "_selected_action": [str(dead_delivery.event_id)]}
        )
    assert response.status_code == 302
    dead_delivery.refresh_from_db()
    assert dead_delivery.status == Delivery.Status.SUCCEEDED


def test_admin_creates_a_subscription_and_shows_its_secret_once(admin_client, receiver):
    response = admin_client.post(
        "/admin/events/subscription/add/",
        {
            "url": receiver.url,
            "description": "app plane",
            "enabled": "on",
            "event_types_text": "sbt_aws_onboardingRequest, x",
        },
        follow=True,
    )
    assert response.status_code == 200
    subscription = Subscription.objects.get()
    assert subscription.event_types == ["onboardingRequest", "x"]
    secret = secret_decrypt(subscription.secret_encrypted)
    assert secret in response.content.decode()
    assert secret not in admin_client.get(f"/admin/events/subscription/{subscription.pk}/change/").content.decode()


def test_admin_refuses_a_bad_event_type(admin_client, receiver):
    response = admin_client.post(
        "/admin/events/subscription/add/", {"url": receiver.url, "event_types_text": "has space", "enabled": "on"}
    )
    assert response.status_code == 200
    assert "is not an event type name" in response.content.decode()
    assert not Subscription.objects.exists()


def test_admin_send_test_event_action(admin_client, receiver, django_capture_on_commit_callbacks):
    subscription, secret = subscription_create(url=receiver.url, event_types=["onboardingRequest"])
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/events/subscription/", {"action": "send_test_event", "_selected_action": [str(subscription.pk)]}
        )
    assert len(receiver.requests) == 1
    assert receiver.requests[0].json["detail-type"] == "subscriptionTest"
    assert verify_signature(secret, receiver.requests[0].headers, receiver.requests[0].body)


def test_event_subscription_create_command_prints_the_secret_once(receiver, django_capture_on_commit_callbacks):
    out = StringIO()
    call_command(
        "event_subscription_create",
        "--url",
        receiver.url,
        "--events",
        "onboardingRequest,offboardingRequest",
        "--json",
        stdout=out,
    )
    printed = json.loads(out.getvalue())
    subscription = Subscription.objects.get(pk=printed["subscriptionId"])
    assert printed["eventTypes"] == ["onboardingRequest", "offboardingRequest"]
    assert secret_decrypt(subscription.secret_encrypted) == printed["secret"]
    with django_capture_on_commit_callbacks(execute=True):
        event_publish(detail_type="offboardingRequest", detail={})
    assert verify_signature(printed["secret"], receiver.requests[0].headers, receiver.requests[0].body)

    out = StringIO()
    call_command("event_subscription_create", "--url", receiver.url, "--secret", "a-chosen-secret-0123", stdout=out)
    assert "a-chosen-secret-0123" in out.getvalue() and "every control-plane event" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "ftp://example.com/x"], r"is not a valid http\(s\) URL"),
        (["--url", "http://127.0.0.1:9/x", "--secret", "short"], "at least 16 characters"),
        (["--url", "http://127.0.0.1:9/x", "--events", "a b"], "is not an event type name"),
    ],
)
def test_event_subscription_create_command_explains_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("event_subscription_create", *args, stdout=StringIO())
    assert not Subscription.objects.exists()


def test_events_replay_command_sends_dead_deliveries_since_a_time(dead_delivery, receiver):
    older = Event.objects.create(detail_type="activateRequest", source="sbt.control.plane", detail={})
    Event.objects.filter(pk=older.pk).update(created=timezone.now() - timedelta(days=2))
    old_delivery = Delivery.objects.create(event=older, subscription=dead_delivery.subscription, status="dead")
    sent_before = len(receiver.requests)

    out = StringIO()
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    call_command("events_replay", "--status", "dead", "--since", since, stdout=out, stderr=StringIO())

    assert "Replayed 1 deliveries and 0 subscriber runs: 1 succeeded, 0 failed." in out.getvalue()
    dead_delivery.refresh_from_db()
    old_delivery.refresh_from_db()
    assert dead_delivery.status == Delivery.Status.SUCCEEDED
    assert old_delivery.status == Delivery.Status.DEAD
    assert len(receiver.requests) == sent_before + 1
    out = StringIO()
    call_command("events_replay", "--status", "failed", stdout=out)
    assert "Nothing to replay." in out.getvalue()


def test_events_replay_command_reports_receivers_still_failing(dead_delivery, receiver):
    receiver.default = 502
    out, err = StringIO(), StringIO()
    call_command("events_replay", stdout=out, stderr=err)
    assert "1 succeeded" not in out.getvalue() and "0 succeeded, 1 failed" in out.getvalue()
    assert "HTTP 502" in err.getvalue()
    dead_delivery.refresh_from_db()
    assert dead_delivery.status == Delivery.Status.FAILED and dead_delivery.attempts == 1


def test_events_replay_command_refuses_a_bad_since():
    with pytest.raises(CommandError, match="is not an ISO-8601 date or time"):
        call_command("events_replay", "--since", "yesterday-ish")


def test_events_replay_command_runs_dead_subscribers_again(settings, django_capture_on_commit_callbacks):
    from events import registry
    from events.models import HandlerRun

    settings.SBT = {"EVENT_HANDLER_MAX_ATTEMPTS": 1}
    downstream = {"up": False}

    def needs_downstream(event):
        if not downstream["up"]:
            raise RuntimeError("billing provider unreachable")

    registry.subscriber("commandReplayProbe", name="tests.commands.needs_downstream")(needs_downstream)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            event = event_publish(detail_type="commandReplayProbe", detail={})
        assert HandlerRun.objects.get(event=event).status == HandlerRun.Status.DEAD

        out, err = StringIO(), StringIO()
        call_command("events_replay", "--status", "dead", stdout=out, stderr=err)
        assert "0 succeeded, 1 failed" in out.getvalue()
        assert "billing provider unreachable" in err.getvalue()

        downstream["up"] = True
        out = StringIO()
        call_command("events_replay", "--dry-run", stdout=out)
        assert "0 deliveries and 1 subscriber runs would be replayed." in out.getvalue()
        call_command("events_replay", stdout=out, stderr=StringIO())
        assert "Replayed 0 deliveries and 1 subscriber runs: 1 succeeded, 0 failed." in out.getvalue()
        assert HandlerRun.objects.get(event=event).status == HandlerRun.Status.SUCCEEDED
    finally:
        registry._subscribers.pop("commandReplayProbe", None)


def test_admin_edits_a_subscription_keeping_or_replacing_its_secret(admin_client, receiver):
    subscription, secret = subscription_create(url=receiver.url, event_types=["onboardingRequest"])
    change_url = f"/admin/events/subscription/{subscription.pk}/change/"
    page = admin_client.get(change_url).content.decode()
    assert "onboardingRequest" in page and secret not in page

    form = {"url": receiver.url + "/v2", "description": "v2", "event_types_text": "offboardingRequest", "enabled": ""}
    assert admin_client.post(change_url, form).status_code == 302
    subscription.refresh_from_db()
    assert (subscription.url, subscription.event_types, subscription.enabled) == (
        receiver.url + "/v2",
        ["offboardingRequest"],
        False,
    )
    assert secret_decrypt(subscription.secret_encrypted) == secret, "an empty secret field keeps the secret"

    admin_client.post(change_url, {**form, "new_secret": "a-brand-new-secret-42"})
    subscription.refresh_from_db()
    assert secret_decrypt(subscription.secret_encrypted) == "a-brand-new-secret-42"
    short = admin_client.post(change_url, {**form, "new_secret": "short"})
    assert short.status_code == 200 and "at least 16 characters" in short.content.decode()


def test_event_direction_is_a_short_label_explained_by_its_help_text(admin_client, dead_delivery):
    page = admin_client.get("/admin/events/event/").content.decode()
    assert "published by the control plane" not in page
    assert ">outbound<" in page
    detail = admin_client.get(f"/admin/events/event/{dead_delivery.event_id}/change/").content.decode()
    assert "outbound: published by the control plane; inbound: received from the application plane." in detail
