"""The log context (sbt_site/logcontext.py): one JSON line per request and per task with the
request id, tenant and client; the request id carried into tasks and webhooks; no credential in
any line."""

import base64
import io
import json
import logging

import pytest
from django.db import transaction

from events.models import Delivery
from events.services import delivery_attempt, event_dispatch, event_publish, subscription_create
from events.tasks import sweep_events
from events.tests.conftest import receiver  # noqa: F401 (the fixture)
from sbt_site import logcontext
from sbt_site.tasklog import HEADER, _context_attach
from tenants.tests.factories import TenantFactory


@pytest.fixture
def json_lines():
    """Every line logged (INFO and up) while the test runs, as the JSON formatter writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logcontext.JsonFormatter())
    handler.addFilter(logcontext.ContextFilter())
    root = logging.getLogger()
    quiet = {name: logging.getLogger(name).level for name in ("sbt.requests", "sbt.tasks")}
    root.addHandler(handler)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    lines.text = stream.getvalue
    yield lines
    root.removeHandler(handler)
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(level)


def request_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "sbt.requests"]


@pytest.mark.django_db
def test_a_request_is_one_json_line_with_its_request_id_tenant_and_client(api, make_oauth_client, json_lines):
    tenant = TenantFactory(name="initech")
    client = api("tenant/tenant_read", tenant=tenant)
    response = client.get("/api/v1/tenants", {"limit": 5}, HTTP_X_REQUEST_ID="edge-7f3a9c21")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "edge-7f3a9c21"

    (line,) = request_lines(json_lines())
    client_id = line.pop("client_id")
    assert client_id.isalnum() and len(client_id) >= 20  # the OAuth client id, nothing else
    assert {key: line[key] for key in ("request_id", "tenant_id", "method", "path", "route", "status")} == {
        "request_id": "edge-7f3a9c21",
        "tenant_id": str(tenant.pk),
        "method": "GET",
        "path": "/api/v1/tenants",
        "route": "api/v1/tenants",
        "status": 200,
    }
    assert line["level"] == "INFO" and line["duration_ms"] > 0 and line["time"].endswith("+00:00")


@pytest.mark.django_db
def test_a_malformed_request_id_is_replaced_and_every_request_gets_one(client, json_lines):
    sent = client.get("/healthz", HTTP_X_REQUEST_ID='a b"c\\d')
    made = client.get("/no/such/page")
    ids = [sent["X-Request-ID"], made["X-Request-ID"]]
    assert all(len(request_id) == 32 and int(request_id, 16) >= 0 for request_id in ids)
    assert ids[0] != ids[1]
    lines = request_lines(json_lines())
    assert [(line["request_id"], line["route"], line["status"]) for line in lines] == [
        (ids[0], "healthz", sent.status_code),
        (ids[1], "unmatched", 404),
    ]
    assert all("tenant_id" not in line and "client_id" not in line for line in lines)


def test_a_task_carries_the_context_of_who_enqueued_it():
    headers = {}
    with logcontext.bound(request_id="req-0123456789", tenant_id="t-1", client_id="c-1"):
        _context_attach(headers=headers)
    assert headers[HEADER] == {"request_id": "req-0123456789", "tenant_id": "t-1", "client_id": "c-1"}
    _context_attach(headers=(outside := {}))
    assert outside == {}  # no work in progress: nothing to carry


def test_outside_any_work_setting_a_field_leaves_nothing_behind():
    logcontext.set(client_id="set-by-code-outside-a-request")
    assert logcontext.get() == {}
    with logcontext.bound(request_id="req-0123456789") as started:
        logcontext.set(client_id="c-1")
        assert logcontext.get() == started | {"client_id": "c-1"}
    assert logcontext.get() == {}


@pytest.mark.django_db
def test_a_task_logs_one_json_line_with_the_request_id_it_ran_for(json_lines):
    with logcontext.bound(request_id="req-task-000001"):
        sweep_events.delay()
    (line,) = [line for line in json_lines() if line["logger"] == "sbt.tasks"]
    assert (line["request_id"], line["task"], line["state"]) == ("req-task-000001", "events.sweep", "SUCCESS")
    assert line["duration_ms"] >= 0


@pytest.mark.django_db
def test_a_webhook_delivery_carries_the_request_id(receiver, settings):  # noqa: F811
    settings.SBT = {"EVENT_DISPATCH_ON_COMMIT": False}
    subscription_create(url=receiver.url, event_types=["tenantCreated"])
    with logcontext.bound(request_id="req-webhook-0001"):
        with transaction.atomic():
            event = event_publish(detail_type="tenantCreated", detail={"tenantId": "t"})
        event_dispatch(event_id=event.pk)
        delivery_attempt(delivery_id=Delivery.objects.get(event=event).pk)
    (received,) = receiver.requests
    assert received.headers["X-Request-ID"] == "req-webhook-0001"


@pytest.mark.django_db
def test_no_token_or_secret_appears_in_the_logs(client, make_oauth_client, json_lines, settings):
    settings.SBT = {"METRICS_TOKEN": "scrape-token-abcdef0123456789", "METRICS_ALLOWED_NETWORKS": []}
    application, secret = make_oauth_client(scopes="tenant/tenant_read")
    basic = base64.b64encode(f"{application.client_id}:{secret}".encode()).decode()
    issued = client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}")
    token = issued.json()["access_token"]
    wrong = base64.b64encode(f"{application.client_id}:{secret}x".encode()).decode()
    assert (
        client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {wrong}").status_code
        == 401
    )
    assert client.get("/api/v1/tenants", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert client.get("/api/v1/tenants", HTTP_AUTHORIZATION=f"Bearer {token}x").status_code == 401
    assert client.get("/api/v1/tenants", {"access_token": token}).status_code == 401
    metrics_token = "scrape-token-abcdef0123456789"
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}").status_code == 200

    text = json_lines.text()
    assert len(request_lines(json_lines())) == 6
    for credential in (secret, token, token.split(".")[2], basic, wrong, metrics_token):
        assert credential not in text
    assert "Authorization" not in text and "access_token" not in text
