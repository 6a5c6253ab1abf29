"""Reads every app shares."""

from django.db.models import Count, QuerySet


def status_counts(rows: QuerySet, statuses: list[str], *, field: str = "status") -> dict[str, int]:
    """How many of ``rows`` have each of ``statuses`` in ``field``: every status present, in
    the given order, zero when none (one GROUP BY query)."""
    counts = dict.fromkeys(statuses, 0)
    for row in rows.values(field).annotate(count=Count("pk")).order_by():
        counts[row[field]] = row["count"]
    return counts
