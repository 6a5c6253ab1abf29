"""The embedded default (SQLite, no partitions, the portable ingestion path) really works:
migrate, ingest with duplicates, query in a half-hour zone, cancel, migrate back to zero."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json
from datetime import timedelta
from django.utils import timezone
from tenants.models import Tenant
from metering.interface import MeterSpec
from metering.models import Meter
from metering.selectors import usage_windows
from metering.services import meter_create, usage_events_cancel, usage_events_ingest

tenant = Tenant.objects.create(name="embedded")
spec = MeterSpec(api_name="users", label="users", aggregation="UNIQUE_COUNT", unique_property="user")
meter = Meter.objects.get(pk=meter_create(spec=spec).id)
now = timezone.now()
events = [
    {"eventId": f"e{i}", "meterApiName": "users", "tenantId": str(tenant.pk), "user": f"u{i % 3}",
     "timestamp": (now - timedelta(minutes=10 * i)).isoformat()}
    for i in range(10)
]
first, second = usage_events_ingest(events=events), usage_events_ingest(events=events)
cancelled = usage_events_cancel(client_tenant_id=None, event_ids=["e0", "e3", "e6", "e9"])
windows = usage_windows(meter=meter, tenant_id=None, start=now - timedelta(days=2), end=now, time_zone="Asia/Kolkata")
print(json.dumps({"accepted": [first.accepted, second.accepted], "cancelled": cancelled,
                  "unique": sorted({int(w.value) for w in windows}), "events": sum(w.event_count for w in windows)}))
"""


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def test_metering_works_on_the_embedded_sqlite_default(tmp_path):
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env |= {"DJANGO_SETTINGS_MODULE": "sbt_site.settings", "SBT_VAR_DIR": str(tmp_path)}
    migrated = run(["migrate", "-v", "0"], env)
    assert migrated.returncode == 0, migrated.stderr
    result = run(["shell", "-v", "0", "-c", SCRIPT], env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["accepted"] == [10, 0]
    assert report["cancelled"] == 4
    assert report["events"] == 6
    assert set(report["unique"]) <= {1, 2}  # u0 was only on cancelled events; u1, u2 remain
    zones = run(["metering_rollup_zones", "add", "Asia/Kolkata"], env)
    assert zones.returncode == 1
    assert "Rollup time zones need the native metering provider on PostgreSQL" in zones.stderr
    assert "backfill" not in zones.stderr, "no progress bar for a zone that is refused"
    reverted = run(["migrate", "metering", "zero", "-v", "0"], env)
    assert reverted.returncode == 0, reverted.stderr
