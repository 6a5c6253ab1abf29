"""/healthz and /readyz answer a probe whose Host is not in ALLOWED_HOSTS (a kubelet or load
balancer names the pod's address); every other path still refuses such a Host with a 400."""

import json
import subprocess
import sys

import pytest
from django.db import connection
from prometheus_client import REGISTRY

from sbt_site.tests.test_platform import ROOT, _rsa_private_key_pem, clean_env

pytestmark = pytest.mark.django_db

PROBE_HOST = "10.1.2.3:8000"


@pytest.fixture
def listed_hosts(settings):
    settings.ALLOWED_HOSTS = ["control.example.com"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_a_probe_with_an_unlisted_host_is_answered(client, listed_hosts, path):
    response = client.get(path, HTTP_HOST=PROBE_HOST)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ok"
    assert len(response["X-Request-ID"]) == 32, "probes keep their request id (the observability middleware)"
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize("path", ["/api/v1/tenants", "/healthz/", "/HEALTHZ", "/metrics", "/admin/"])
def test_any_other_path_with_an_unlisted_host_is_still_400(client, listed_hosts, path):
    response = client.get(path, HTTP_HOST=PROBE_HOST)
    assert response.status_code == 400
    assert client.get("/api/v1/tenants", HTTP_HOST="control.example.com").status_code == 401, "the listed host passes"


def test_a_probe_with_an_unlisted_host_is_counted_under_its_route(client, listed_hosts):
    def probes() -> float:
        labels = {"route": "healthz", "method": "GET", "status": "200"}
        return REGISTRY.get_sample_value("sbt_http_request_duration_seconds_count", labels) or 0.0

    before = probes()
    client.get("/healthz", HTTP_HOST=PROBE_HOST)
    assert probes() == before + 1


def test_in_production_settings_probes_pass_and_the_api_refuses_the_host(tmp_path):
    """The production settings (SECURE_SSL_REDIRECT on, one listed host), in a fresh process
    against this test database (migrated, so /readyz is ready)."""
    database = connection.settings_dict
    database_url = (
        f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:{database['PORT']}"
        f"/{database['NAME']}"
    )
    env = clean_env(
        SBT_VAR_DIR=str(tmp_path),
        SBT_ENV="production",
        DJANGO_SECRET_KEY="k" * 20 + "Z9!x" * 10 + "qwertyuiop",
        DJANGO_ALLOWED_HOSTS="control.example.com",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL="memory://",
        OIDC_RSA_PRIVATE_KEY=_rsa_private_key_pem(),
        LOG_LEVEL="ERROR",
    )
    code = (
        "import django, json; django.setup(); from django.test import Client; client = Client();"
        f"print(json.dumps({{path: client.get(path, HTTP_HOST={PROBE_HOST!r}).status_code"
        " for path in ('/healthz', '/readyz', '/api/v1/tenants', '/healthz/')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    statuses = json.loads(result.stdout.strip().splitlines()[-1])
    assert statuses == {"/healthz": 200, "/readyz": 200, "/api/v1/tenants": 400, "/healthz/": 400}
