"""The examples of docs/provisioning.md, imported from the document itself and run: a schema and
role per tenant on the test PostgreSQL and its deprovisioning twin, and an HTTP call to a
loopback server standing in for the application plane's API."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from provisioning.models import ProvisioningJob, ProvisioningRun
from provisioning.services import provisioning_job_update, provisioning_jobs_import
from tenants.services import tenant_registration_delete

pytestmark = pytest.mark.django_db
DOC = Path(__file__).resolve().parents[2] / "docs" / "provisioning.md"


def example(name: str) -> dict:
    found = re.search(rf"<!-- example: {name} -->\n```json\n(.*?)\n```", DOC.read_text(), re.DOTALL)
    assert found, f"docs/provisioning.md has no example {name}"
    return json.loads(found.group(1))


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{quote(db['USER'] or '')}:{quote(db['PASSWORD'] or '')}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def schema_owner(schema: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s", [schema])
        row = cursor.fetchone()
    return row[0] if row else None


def test_the_postgresql_jobs_create_a_schema_and_role_per_tenant_and_drop_them(
    onboard_now, api, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setenv("PROVISIONING_DATABASE_URL", database_url())
    assert provisioning_jobs_import(document=example("postgres-onboard")) == (1, 0)
    assert provisioning_jobs_import(document=example("postgres-offboard")) == (1, 0)

    registration = onboard_now("acme")
    run = ProvisioningRun.objects.get(job__name="onboard-postgres-schema")
    assert registration.status == "created", run.log
    schema = "tenant_" + str(registration.tenant_id).replace("-", "_")
    assert schema_owner(schema) == schema
    config = api().get("/api/v1/tenant-config/acme").json()
    assert config == {
        "dbHost": connection.settings_dict["HOST"],
        "dbPort": int(connection.settings_dict["PORT"]),
        "dbName": connection.settings_dict["NAME"],
        "dbSchema": schema,
        "dbRole": schema,
    }
    assert registration.data == {"dbSchema": schema}
    assert f"created schema {schema}" in run.log

    with django_capture_on_commit_callbacks(execute=True):
        tenant_registration_delete(registration_id=registration.pk)
    registration.refresh_from_db()
    offboard = ProvisioningRun.objects.get(job__name="offboard-postgres-schema")
    assert registration.status == "deleted", offboard.log
    assert schema_owner(schema) is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [schema])
        assert cursor.fetchone() == (0,)


class AppPlaneApi(BaseHTTPRequestHandler):
    received: list[dict] = []
    status = 201

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append({"path": self.path, "body": body})
        answer = json.dumps({"apiUrl": f"https://{body['name']}.app.test", "internal": "x"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def app_plane_api():
    AppPlaneApi.received = []
    AppPlaneApi.status = 201
    server = ThreadingHTTPServer(("127.0.0.1", 0), AppPlaneApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_http_job_sends_the_tenants_data_and_exports_what_the_endpoint_answers(onboard_now, api, app_plane_api):
    provisioning_jobs_import(document=example("http-endpoint"))
    provisioning_job_update(
        job_id=ProvisioningJob.objects.get().pk,
        values={"environment": {"APP_PLANE_URL": app_plane_api}},
    )
    registration = onboard_now("acme", tier="premium")
    assert registration.status == "created", ProvisioningRun.objects.get().log
    assert AppPlaneApi.received == [
        {"path": "/tenants", "body": {"tenantId": str(registration.tenant_id), "name": "acme", "tier": "premium"}}
    ]
    assert api().get("/api/v1/tenant-config/acme").json() == {"apiUrl": "https://acme.app.test"}

    AppPlaneApi.status = 500
    failed = onboard_now("globex")
    assert failed.status == "failed"
    assert failed.status_reason.startswith("the script exited with status 22")
