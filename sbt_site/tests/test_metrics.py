"""GET /metrics: who may scrape it, the gauges read from the database and the broker at scrape
time, the authentication counters, and the alert rules (promtool)."""

import base64
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.db import transaction
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from events.models import Delivery, Event, HandlerRun
from events.services import event_publish, subscription_create
from sbt_site import conf
from sbt_site.celery import app as celery_app
from sbt_site.metrics import exposition
from sbt_site.metrics_state import REDIS_PRIORITY_SEPARATOR, StateCollector

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus"


def samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} of an exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def key(name: str, **labels) -> tuple:
    return name, frozenset(labels.items())


def test_the_alert_rules_are_valid_and_fire_on_their_series():
    checked = subprocess.run(["promtool", "check", "rules", str(RULES / "alerts.yml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout
    tested = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=RULES, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.django_db
def test_metrics_are_served_to_loopback_in_development(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert key("sbt_outbox_undispatched_events") in samples(response.content.decode())


@pytest.mark.django_db
def test_metrics_are_off_without_a_token_or_networks_and_need_one_of_them_when_on(client, settings):
    settings.SBT = {"METRICS_ALLOWED_NETWORKS": [], "METRICS_TOKEN": ""}
    assert client.get("/metrics").status_code == 404

    settings.SBT = {"METRICS_ALLOWED_NETWORKS": [], "METRICS_TOKEN": "scrape-token-0123456789"}
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic c2NyYXBlLXRva2VuLTAxMjM0NTY3ODk=").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789").status_code == 200

    settings.SBT = {"METRICS_ALLOWED_NETWORKS": ["10.0.0.0/8"], "METRICS_TOKEN": ""}
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.1").status_code == 403
    assert client.get("/metrics").status_code == 403  # loopback is no longer listed


def test_production_leaves_metrics_off_by_default(monkeypatch):
    monkeypatch.setenv("SBT_ENV", "production")
    monkeypatch.delenv("SBT_METRICS_ALLOWED_NETWORKS", raising=False)
    assert conf._metrics_allowed_networks() == []
    monkeypatch.setenv("SBT_METRICS_ALLOWED_NETWORKS", "10.0.0.0/8, 192.168.0.0/16")
    assert conf._metrics_allowed_networks() == ["10.0.0.0/8", "192.168.0.0/16"]


@pytest.mark.django_db
def test_the_state_gauges_are_read_from_the_database_at_scrape_time(settings):
    settings.SBT = {"EVENT_DISPATCH_ON_COMMIT": False}
    with transaction.atomic():
        waiting = event_publish(detail_type="tenantCreated", detail={"tenantId": "t"})
    Event.objects.filter(pk=waiting.pk).update(created=waiting.created - timedelta(minutes=5))
    subscription, _ = subscription_create(url="http://127.0.0.1:9/hook", event_types=["tenantCreated"])
    Delivery.objects.create(event=waiting, subscription=subscription, status=Delivery.Status.DEAD, attempts=8)
    HandlerRun.objects.create(event=waiting, handler="metering.customer_create", status=HandlerRun.Status.DEAD)

    found = samples(exposition(StateCollector()).decode())
    assert found[("sbt_outbox_undispatched_events", frozenset())] == 1
    assert 299 < found[("sbt_outbox_oldest_undispatched_age_seconds", frozenset())] < 400
    dead = frozenset({"subscription": str(subscription.pk), "status": "dead"}.items())
    assert found[("sbt_webhook_deliveries", dead)] == 1
    assert (
        found[("sbt_event_handler_runs_dead_current", frozenset({"handler": "metering.customer_create"}.items()))] == 1
    )
    assert found[("sbt_metrics_scrape_errors", frozenset({"part": "outbox"}.items()))] == 0


@pytest.mark.django_db
@pytest.mark.broker
def test_the_celery_queue_length_is_read_from_redis():
    url = os.environ.get("SBT_TEST_REDIS_URL")
    if not url:
        pytest.fail("SBT_TEST_REDIS_URL is not set: run the suite with ./sbt test, which starts Redis")
    broker = redis.Redis.from_url(url)
    lists = ("metrics-test", f"metrics-test{REDIS_PRIORITY_SEPARATOR}3")
    broker.rpush(lists[0], "a", "b", "c")
    broker.rpush(lists[1], "d", "e")
    saved = celery_app.conf.broker_url, celery_app.conf.task_default_queue
    celery_app.conf.broker_url, celery_app.conf.task_default_queue = url, "metrics-test"
    try:
        found = samples(exposition(StateCollector()).decode())
    finally:
        celery_app.conf.broker_url, celery_app.conf.task_default_queue = saved
        broker.delete(*lists)
    assert found[key("sbt_celery_queue_length", queue="metrics-test")] == 5
    assert found[key("sbt_metrics_scrape_errors", part="celery")] == 0


def failures(endpoint: str, client_id: str) -> float:
    return REGISTRY.get_sample_value("sbt_auth_failures_total", {"endpoint": endpoint, "client_id": client_id}) or 0.0


@pytest.mark.django_db
def test_token_issuances_and_failed_authentications_are_counted_by_client(client, make_oauth_client):
    application, secret = make_oauth_client(scopes="tenant/tenant_read")
    issued = {"client_id": application.client_id}
    before = (REGISTRY.get_sample_value("sbt_auth_tokens_issued_total", issued) or 0.0, failures("token", "unknown"))
    before_client, before_api = failures("token", application.client_id), failures("api", "unknown")

    def token(client_id: str, client_secret: str):
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        return client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}")

    assert token(application.client_id, secret).status_code == 200
    assert token(application.client_id, "not-the-secret").status_code == 401
    assert token("no-such-client", "whatever").status_code == 401
    assert client.get("/api/v1/tenants", HTTP_AUTHORIZATION="Bearer not-a-token").status_code == 401

    assert REGISTRY.get_sample_value("sbt_auth_tokens_issued_total", issued) == before[0] + 1
    assert failures("token", application.client_id) == before_client + 1
    assert failures("token", "unknown") == before[1] + 1  # a made-up client id is never a label
    assert failures("api", "unknown") == before_api + 1
