"""The API's rate limit per client (sbt_site/api/throttling.py), the counters it and the
ingestion quota share (sbt_site/ratelimits.py), and the cache they count in (CACHE_URL; #13).
POST /usage's fast path is compared with DRF's answer in metering/tests/test_fast_ingest.py."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.tokens import access_token_issue
from sbt_site.checks import shared_cache_check
from sbt_site.ratelimits import windows_charge
from sbt_site.settings import env_rate

ROOT = Path(__file__).resolve().parents[2]
METERS = "/api/v1/meters"
LOCAL_MEMORY = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def _rate(rate: str):
    return override_settings(SBT={**settings.SBT, "API_RATE_LIMIT": rate})


def _redis(url: str):
    return override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    )


def _throttled_message(wait: int) -> str:
    return f"Request was throttled. Expected available in {wait} second{'' if wait == 1 else 's'}."


@pytest.mark.django_db
def test_a_client_over_its_rate_gets_the_429_envelope_with_retry_after(api, minute_window):
    client, other = api("meter/meter_read"), api("meter/meter_read")
    with _rate("3/min"):
        answers = [client.get(METERS) for _ in range(4)]
        others = other.get(METERS)
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    wait = int(refused["Retry-After"])
    assert 1 <= wait <= 60
    assert refused.json() == {"statusCode": 429, "message": _throttled_message(wait), "code": "throttled"}
    assert others.status_code == 200


@pytest.mark.django_db
def test_the_client_passes_again_when_its_window_ends(api):
    client = api("meter/meter_read")
    with _rate("1/s"):
        time.sleep(1 - time.time() % 1)  # the start of a window
        assert client.get(METERS).status_code == 200
        refused = client.get(METERS)
        time.sleep(1 - time.time() % 1)
        again = client.get(METERS)
    assert (refused.status_code, refused["Retry-After"]) == (429, "1")
    assert again.status_code == 200


@pytest.mark.django_db
def test_the_tokens_of_a_client_share_its_rate_and_each_user_of_a_client_has_its_own(make_oauth_client, minute_window):
    application, _ = make_oauth_client(scopes="meter/meter_read")
    users = [get_user_model().objects.create_user(f"user-{n}", password="x" * 16, role="SystemAdmin") for n in (1, 2)]

    def client(user=None) -> APIClient:
        _, raw = access_token_issue(application=application, scope="meter/meter_read", user=user, lifetime=3600)
        api_client = APIClient()
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return api_client

    machine = [client(), client()]
    people = [client(users[0]), client(users[0]), client(users[1])]
    with _rate("2/min"):
        machine_answers = [machine[n % 2].get(METERS).status_code for n in range(3)]
        first_user = [people[n % 2].get(METERS).status_code for n in range(3)]
        second_user = people[2].get(METERS).status_code
    assert machine_answers == [200, 200, 429]
    assert first_user == [200, 200, 429]
    assert second_user == 200


@pytest.mark.django_db
def test_requests_without_a_token_or_its_scope_and_public_routes_are_not_throttled(api):
    with _rate("0/min"):
        assert api(None).get(METERS).status_code == 401
        assert api("usage/usage_read").get(METERS).status_code == 403
        assert api(None).get("/api/v1/auth-info").status_code == 200
        assert api(None).get("/api/v1/tenant-config/nobody").status_code == 404
        assert api("meter/meter_read").get(METERS).status_code == 429


@pytest.mark.django_db
def test_no_rate_is_no_limit(api):
    client = api("meter/meter_read")
    with _rate(""):
        assert {client.get(METERS).status_code for _ in range(5)} == {200}


def test_a_refused_request_is_not_counted_and_one_naming_no_counter_passes():
    counter = f"test_{uuid.uuid4().hex}"
    outcomes = windows_charge([{counter: 3}, {counter: 2}, {counter: 1}, {}], limit=4, seconds=3600)
    assert [outcomes[0], outcomes[2], outcomes[3]] == [None, None, None]
    assert 1 <= outcomes[1] <= 3600  # 3 + 2 is over 4; the 1 after it still fits
    assert windows_charge([{counter: 1}], limit=4, seconds=3600)[0] is not None


def test_the_rate_setting_is_checked_when_the_server_starts(monkeypatch):
    monkeypatch.setenv("SBT_TEST_RATE", "600/min")
    assert env_rate("SBT_TEST_RATE", "1/s") == "600/min"
    monkeypatch.setenv("SBT_TEST_RATE", "")
    assert env_rate("SBT_TEST_RATE", "1/s") == ""
    monkeypatch.delenv("SBT_TEST_RATE")
    assert env_rate("SBT_TEST_RATE", "1/s") == "1/s"
    monkeypatch.setenv("SBT_TEST_RATE", "600 per minute")
    with pytest.raises(ImproperlyConfigured, match="SBT_TEST_RATE"):
        env_rate("SBT_TEST_RATE", "1/s")


def test_production_without_a_shared_cache_is_warned(settings):
    settings.PRODUCTION = True
    settings.CACHES = LOCAL_MEMORY
    assert [message.id for message in shared_cache_check()] == ["sbt_site.W001"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://x"}}
    assert shared_cache_check() == []
    settings.CACHES = LOCAL_MEMORY
    settings.SBT = {**settings.SBT, "API_RATE_LIMIT": "", "USAGE_EVENTS_PER_MINUTE_PER_TENANT": 0}
    assert shared_cache_check() == []  # nothing counts
    settings.PRODUCTION = False
    settings.SBT = {**settings.SBT, "API_RATE_LIMIT": "10/s"}
    assert shared_cache_check() == []  # the embedded default's one process


def test_the_limits_let_requests_through_when_the_cache_cannot_be_reached(caplog):
    with _redis("redis://127.0.0.1:1/0"):
        assert windows_charge([{"test_unreachable": 5}], limit=1, seconds=60) == [None]
    assert "Rate limits not applied" in caplog.text


@pytest.mark.broker
def test_processes_share_the_counters_through_redis(tmp_path):
    """Another process (as another gunicorn worker would) uses up most of a limit in Redis
    (CACHE_URL); this process then gets only what is left."""
    redis_url = os.environ.get("SBT_TEST_REDIS_URL")
    if not redis_url:
        pytest.fail("SBT_TEST_REDIS_URL is not set: run the suite with ./sbt test, which starts Redis")
    counter = f"test_{uuid.uuid4().hex}"
    code = (
        "import django, json; django.setup(); from sbt_site.ratelimits import windows_charge;"
        f"print(json.dumps(windows_charge([{{{counter!r}: 1}}] * 3, limit=4, seconds=3600)))"
    )
    keep = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env = {**keep, "DJANGO_SETTINGS_MODULE": "sbt_site.settings", "SBT_VAR_DIR": str(tmp_path), "CACHE_URL": redis_url}
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout) == [None, None, None]
    with _redis(redis_url):
        mine = windows_charge([{counter: 1}] * 2, limit=4, seconds=3600)
    assert mine[0] is None
    assert 1 <= mine[1] <= 3600


@pytest.mark.broker
@pytest.mark.django_db
def test_the_api_throttle_counts_in_redis(api, minute_window):
    redis_url = os.environ.get("SBT_TEST_REDIS_URL")
    if not redis_url:
        pytest.fail("SBT_TEST_REDIS_URL is not set: run the suite with ./sbt test, which starts Redis")
    client = api("meter/meter_read")
    with _redis(redis_url), _rate("2/min"):
        answers = [client.get(METERS) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[-1].json()["code"] == "throttled"
