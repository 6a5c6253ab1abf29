"""Ingestion and rollup recomputation (rebuild, cancellation) exclude each other per (meter,
tenant) only if they lock the same advisory key: read the keys each one holds from pg_locks."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from metering.interface import CancelFilter, UsageEventIn
from metering.providers.native import NativeMeteringProvider
from metering.providers.native.rollups import ZONES_LOCK_KEY

pytestmark = pytest.mark.django_db

MOMENT = datetime(2026, 3, 4, 10, 20, tzinfo=UTC)


def advisory_locks(mode: str) -> set[tuple[int, int]]:
    """The advisory lock keys this session holds in ``mode`` (ShareLock or ExclusiveLock)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT classid::bigint, objid::bigint FROM pg_locks"
            " WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND mode = %s AND granted",
            [mode],
        )
        return set(cursor.fetchall())


@pytest.mark.parametrize("recompute", ["rebuild", "cancel"])
def test_ingestion_and_recomputation_lock_the_same_key_of_each_meter_and_tenant(make_meter, make_tenant, recompute):
    provider = NativeMeteringProvider()
    meter = make_meter()
    tenants = [make_tenant("acme"), make_tenant("globex")]
    # partitions first: creating one takes an advisory lock of its own
    provider.ingest(
        [UsageEventIn(tenant_id=tenants[0].id, meter_id=meter.id, event_id="warm", timestamp=MOMENT, value=Decimal(1))]
    )
    before_shared, before_exclusive = advisory_locks("ShareLock"), advisory_locks("ExclusiveLock")

    provider.ingest(
        [
            UsageEventIn(
                tenant_id=tenant.id, meter_id=meter.id, event_id=f"e-{tenant.name}", timestamp=MOMENT, value=Decimal(2)
            )
            for tenant in tenants
        ]
    )
    shared = advisory_locks("ShareLock")
    if recompute == "rebuild":
        provider.rebuild_rollups(meter_id=meter.id, start=MOMENT, end=MOMENT)
    else:
        assert provider.cancel(CancelFilter(meter_id=meter.id)) == 3
    exclusive = advisory_locks("ExclusiveLock") - before_exclusive

    # one key per (meter, tenant), the warm-up's among them, and the rollup time zones' key
    assert len(shared) == 3
    assert before_shared <= shared
    assert zones_key() in shared
    assert exclusive == shared - {zones_key()}


def zones_key() -> tuple[int, int]:
    """ZONES_LOCK_KEY as pg_locks shows a bigint advisory key: its high and low 32 bits."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT hashtextextended(%s, 0)", [ZONES_LOCK_KEY])
        key = cursor.fetchone()[0] & 0xFFFFFFFFFFFFFFFF
    return key >> 32, key & 0xFFFFFFFF
