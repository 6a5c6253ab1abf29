"""Settings modes, /healthz and the OpenAPI document."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def clean_env(**extra) -> dict:
    keep = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return {**keep, "DJANGO_SETTINGS_MODULE": "sbt_site.settings", **extra}


def test_embedded_default_with_no_environment(tmp_path):
    tmp_path = tmp_path / "var"  # made by the settings, as ./sbt run's var/ is
    code = (
        "import django, json; django.setup(); from django.conf import settings as s;"
        "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], 'name': str(s.DATABASES['default']['NAME']),"
        " 'broker': s.CELERY_BROKER_URL, 'debug': s.DEBUG, 'key': s.SECRET_KEY}))"
    )
    first = run_python(code, clean_env(SBT_VAR_DIR=str(tmp_path)))
    assert first.returncode == 0, first.stderr
    settings = json.loads(first.stdout)
    assert settings["engine"] == "django.db.backends.sqlite3"
    assert settings["name"] == str(tmp_path / "db.sqlite3")
    assert settings["broker"] == "filesystem://localhost/"
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    # the database and the directory holding it and the keys are the owner's alone
    assert (tmp_path / "db.sqlite3").stat().st_mode & 0o777 == 0o600
    assert tmp_path.stat().st_mode & 0o777 == 0o700
    second = json.loads(run_python(code, clean_env(SBT_VAR_DIR=str(tmp_path))).stdout)
    assert second["key"] == settings["key"], "the development secret key must persist"


def test_embedded_broker_is_quiet_and_stays_under_var_dir(tmp_path):
    """Connecting to the embedded broker logs no kombu warning and writes nothing outside var/."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    code = (
        "import logging, django; logging.basicConfig(level=logging.WARNING); django.setup();"
        "from sbt_site.celery import app;"
        "conn = app.connection_for_write(); conn.info();"
        "from kombu import Exchange, Queue; Queue('q', Exchange('x'), 'k', channel=conn.default_channel).declare();"
        "conn.release(); print('ok')"
    )
    env = clean_env(SBT_VAR_DIR=str(tmp_path / "var"), PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert "No hostname was supplied" not in result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    assert list(workdir.iterdir()) == [], "the broker must keep its files under SBT_VAR_DIR"
    assert (tmp_path / "var" / "celery" / "control" / "x.exchange").exists()


def test_environment_switches_database_and_broker(tmp_path):
    code = (
        "import django, json; django.setup(); from django.conf import settings as s;"
        "print(json.dumps([s.DATABASES['default']['ENGINE'], s.DATABASES['default']['HOST'], s.CELERY_BROKER_URL]))"
    )
    env = clean_env(
        SBT_VAR_DIR=str(tmp_path),
        DATABASE_URL="postgres://u:p@db.internal:5432/sbt",
        CELERY_BROKER_URL="redis://cache.internal:6379/0",
    )
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        "django.db.backends.postgresql",
        "db.internal",
        "redis://cache.internal:6379/0",
    ]


def _rsa_private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_production_check_deploy_is_clean(tmp_path):
    env = clean_env(
        SBT_VAR_DIR=str(tmp_path),
        SBT_ENV="production",
        DJANGO_SECRET_KEY="k" * 20 + "Z9!x" * 10 + "qwertyuiop",
        DJANGO_ALLOWED_HOSTS="control.example.com",
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://u:p@localhost:5432/sbt"),
        CELERY_BROKER_URL="redis://localhost:6379/0",
        CACHE_URL="redis://localhost:6379/1",  # the rate limits' counters, shared (sbt_site.W001)
        OIDC_RSA_PRIVATE_KEY=_rsa_private_key_pem(),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY must be set"),
        ("DJANGO_ALLOWED_HOSTS", "DJANGO_ALLOWED_HOSTS must be set"),
        ("DATABASE_URL", "DATABASE_URL must be set"),
        ("OIDC_RSA_PRIVATE_KEY", "OIDC_RSA_PRIVATE_KEY must be set"),
    ],
)
def test_production_refuses_to_start_without_required_variables(tmp_path, missing, message):
    env = clean_env(
        SBT_VAR_DIR=str(tmp_path),
        SBT_ENV="production",
        DJANGO_SECRET_KEY="s" * 60,
        DJANGO_ALLOWED_HOSTS="control.example.com",
        DATABASE_URL="postgres://u:p@localhost:5432/sbt",
        OIDC_RSA_PRIVATE_KEY=_rsa_private_key_pem(),
    )
    del env[missing]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"status": "ok", "vendor": "postgresql"} or body["database"]["status"] == "ok"
    assert body["broker"]["status"] == "ok"


@pytest.mark.django_db
def test_healthz_reports_an_unreachable_broker_as_503(client, settings):
    from sbt_site.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = previous
    assert response.status_code == 503
    assert response.json()["broker"]["status"] == "error"


@pytest.mark.django_db
@pytest.mark.urls("sbt_site.tests.probe_urls")
def test_openapi_document_is_valid_and_lists_scopes(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    flows = document["components"]["securitySchemes"]["oauth2"]["flows"]
    assert "tenant/tenant_read" in flows["clientCredentials"]["scopes"]
    probe_list = document["paths"]["/api/v1/probe"]
    assert probe_list["get"]["security"] == [{"oauth2": ["tenant/tenant_read"]}]
    assert probe_list["post"]["security"] == [{"oauth2": ["tenant/tenant_write"]}]


@pytest.mark.django_db
def test_openapi_ui_is_served_from_local_static_files(client):
    page = client.get("/api/schema/swagger-ui/")
    assert page.status_code == 200
    html = page.content.decode()
    # no asset from another host (a bare "cdn" also matched inside random CSRF tokens)
    assert not re.search(r"(?:src|href)\s*=\s*[\"'](?:https?:)?//", html)
    assert "cdn." not in html.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html


@pytest.mark.django_db
def test_committed_openapi_document_is_up_to_date():
    """API changes must be visible in review: docs/openapi.yaml is the generated document."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiYamlRenderer

    generated = OpenApiYamlRenderer().render(SchemaGenerator().get_schema(request=None, public=True)).decode()
    committed = (ROOT / "docs" / "openapi.yaml").read_text()
    assert generated == committed, "the API changed: run ./sbt schema and commit docs/openapi.yaml"
