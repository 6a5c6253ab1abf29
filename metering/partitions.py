"""Monthly partitions of the raw usage event table (PostgreSQL only).

Partitions are created ahead by the periodic task ``metering.partitions_ensure`` and, for a
backdated or early event, on demand by the ingestion itself; both are idempotent.
"""

from datetime import UTC, datetime

from django.db import connection, transaction

_known_months: set[tuple[int, int]] = set()


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"metering_usageevent_{start:%Y%m}"


def partitions_ensure(months: set[datetime]) -> list[str]:
    """Create the partitions holding the given month starts; returns the names created."""
    if connection.vendor != "postgresql":
        return []
    created = []
    for start in sorted(months):
        if (start.year, start.month) in _known_months:
            continue
        name = partition_name(start)
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
            exists = cursor.fetchone()[0]
            if not exists:
                # Concurrent first writers of a month would race on the catalog: one creates,
                # the others wait for its commit and then find the table.
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext('metering_usageevent partitions'))")
                cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
                exists = cursor.fetchone()[0]
            if not exists:
                # DDL takes no bind parameters; both bounds are datetimes we built.
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF metering_usageevent "
                    f"FOR VALUES FROM ('{start.isoformat()}') TO ('{next_month(start).isoformat()}')"
                )
                created.append(name)
        # Remembered only once this transaction commits: a rollback may drop what it created.
        connection.on_commit(lambda key=(start.year, start.month): _known_months.add(key))
    return created


def partitions_ensure_ahead(*, now: datetime, months_ahead: int) -> list[str]:
    start = month_start(now)
    months = {start}
    for _ in range(months_ahead):
        start = next_month(start)
        months.add(start)
    with transaction.atomic():
        return partitions_ensure(months)
