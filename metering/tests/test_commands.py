"""usage_ingest (JSON lines, CSV, resumable, bad lines), usage_rollup_rebuild, partitions."""

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from metering.models import UsageEvent, UsageRollup
from metering.partitions import partition_name, partitions_ensure_ahead
from metering.tasks import ensure_partitions


def run(*args) -> str:
    out = StringIO()
    call_command(*args, "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_a_jsonl_file_is_ingested_once_however_often_it_is_run(tmp_path, tenant, make_meter):
    make_meter()
    now = timezone.now()
    path = tmp_path / "usage.jsonl"
    with path.open("w") as handle:
        for index in range(2500):
            handle.write(
                json.dumps(
                    {
                        "meterApiName": "api-calls",
                        "tenantId": str(tenant.pk),
                        "meterValue": index % 7,
                        "timestamp": (now - timedelta(minutes=index)).isoformat(),
                    }
                )
                + "\n"
            )
        handle.write("\n")
    assert "2500 events stored" in run("usage_ingest", str(path))
    assert "0 events stored, 2500 already stored" in run("usage_ingest", str(path))
    assert UsageEvent.objects.count() == 2500
    assert sum(row.total for row in UsageRollup.objects.all()) == sum(index % 7 for index in range(2500))


@pytest.mark.django_db
def test_a_csv_file_with_dimensions_and_bad_lines(tmp_path, tenant, make_meter):
    make_meter(dimensions=("region",))
    stamp = int(timezone.now().timestamp() * 1000)
    path = tmp_path / "usage.csv"
    path.write_text(
        "eventId,meterApiName,tenantId,meterValue,timestamp,dimensions.region\n"
        f"a,api-calls,{tenant.pk},2,{stamp},eu\n"
        f"b,api-calls,{tenant.pk},NaN,{stamp},eu\n"
        f"c,api-calls,{tenant.pk},3,,us\n"
    )
    with pytest.raises(CommandError, match="1 lines were rejected"):
        run("usage_ingest", str(path))
    assert sorted(UsageEvent.objects.values_list("event_id", "dimensions")) == [
        ("a", {"region": "eu"}),
        ("c", {"region": "us"}),
    ]


@pytest.mark.django_db
def test_usage_ingest_explains_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run("usage_ingest", str(tmp_path / "missing.jsonl"))


@pytest.mark.django_db
def test_rollup_rebuild_repairs_rollups_from_raw_events(tenant, make_meter):
    make_meter()
    now = timezone.now()
    from metering.services import usage_events_ingest

    usage_events_ingest(
        events=[
            {"meterApiName": "api-calls", "tenantId": str(tenant.pk), "meterValue": 5, "timestamp": now.isoformat()}
        ]
    )
    UsageRollup.objects.update(total=Decimal(999), count=7)
    start, end = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
    assert "Rebuilt 1 rollup rows" in run("usage_rollup_rebuild", "--meter", "api-calls", "--from", start, "--to", end)
    row = UsageRollup.objects.get()
    assert (row.total, row.count) == (Decimal(5), 1)
    with pytest.raises(CommandError, match="Meter not found"):
        run("usage_rollup_rebuild", "--meter", "nope", "--from", start, "--to", end)


@pytest.mark.django_db
def test_partitions_are_created_ahead(settings):
    created = ensure_partitions()
    assert len(created) <= 3
    start = timezone.now()
    with connection.cursor() as cursor:
        for name in [partition_name(start.replace(day=1))]:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
            assert cursor.fetchone()[0]
    assert partitions_ensure_ahead(now=start, months_ahead=2) == []
