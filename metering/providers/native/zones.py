"""Rollup time zones of the native provider (PostgreSQL): adding one, backfilling its local days
from the 15-minute rows, and removing it. What the rows are: ``metering.models.RollupZone`` and
``rollups.py``; why: docs/metering.md "Rollups in your customers' time zones".
"""

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from django.db import connection, transaction

from metering.interface import RollupZoneInfo
from metering.models import BUCKET_SECONDS, RollupZone, UsageRollup
from metering.providers.native.rollups import rollup_locks_take, rollup_zones_lock, rollup_zones_refresh

# (meter, tenant) pairs backfilled per transaction: each holds an advisory lock until its end
# (PostgreSQL's lock table has room for max_locks_per_transaction x max_connections)
BACKFILL_TENANTS = 200
# the widest range PostgreSQL and Python both represent: "every day"
EVER = (datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC))


def _info(zone: RollupZone) -> RollupZoneInfo:
    return RollupZoneInfo(name=zone.name, ready=zone.ready, created=zone.created)


def rollup_zones_list() -> list[RollupZoneInfo]:
    return [_info(zone) for zone in RollupZone.objects.all()]


def rollup_zone_add(name: str, progress: Callable[[int, int], None] | None = None) -> RollupZoneInfo:
    """Register ``name`` (waiting for the ingestions under way, so every later one writes its
    rows), then backfill every (meter, tenant) pair with usage, a chunk of pairs per transaction
    under their exclusive locks, and mark it ready. LookupError: PostgreSQL does not know it."""
    if not _postgresql_knows(name):
        raise LookupError(f"PostgreSQL's time-zone database has no {name!r}")
    with transaction.atomic():
        rollup_zones_lock()
        zone, _ = RollupZone.objects.get_or_create(name=name)
    if zone.ready:
        return _info(zone)
    pairs = list(
        UsageRollup.objects.filter(span=BUCKET_SECONDS)
        .values_list("meter_id", "tenant_id")
        .distinct()
        .order_by("meter_id", "tenant_id")
    )
    done = 0
    if progress:
        progress(done, len(pairs))
    for first in range(0, len(pairs), BACKFILL_TENANTS):
        chunk = pairs[first : first + BACKFILL_TENANTS]
        by_meter: dict[UUID, list[UUID]] = {}
        for meter_id, tenant_id in chunk:
            by_meter.setdefault(meter_id, []).append(tenant_id)
        with transaction.atomic():
            rollup_locks_take(chunk, mode="exclusive")
            for meter_id, tenant_ids in by_meter.items():
                rollup_zones_refresh(
                    meter_id=meter_id, start=EVER[0], end=EVER[1], tenant_ids=tenant_ids, zone_ids=[zone.id]
                )
        done += len(chunk)
        if progress:
            progress(done, len(pairs))
    RollupZone.objects.filter(pk=zone.pk).update(ready=True)
    zone.ready = True
    return _info(zone)


def rollup_zone_remove(name: str) -> bool:
    """Unregister ``name`` (no ingestion writes its rows afterwards, no query reads them), then
    delete its rows a meter at a time: zone ids are never reused, so nothing else is touched."""
    with transaction.atomic():
        rollup_zones_lock()
        zone = RollupZone.objects.filter(name=name).first()
        if zone is None:
            return False
        span = zone.span
        zone.delete()
    for meter_id in UsageRollup.objects.filter(span=span).values_list("meter_id", flat=True).distinct():
        UsageRollup.objects.filter(meter_id=meter_id, span=span).delete()
    return True


def _postgresql_knows(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT FROM pg_timezone_names WHERE name = %s)", [name])
        return cursor.fetchone()[0]
