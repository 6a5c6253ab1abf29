"""Rollup time zones: the IANA zones whose local days the metering store aggregates ahead, so
whole answers in those zones' days, weeks and months read one row per tenant and day
(docs/metering.md "Rollups in your customers' time zones")."""

from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from metering.interface import RollupZoneInfo
from metering.services.common import provider
from sbt_site.errors import Conflict, InvalidInput, NotFound


def _supporting_provider():
    store = provider()
    if not store.supports_rollup_zones:
        raise Conflict(
            "Rollup time zones need the native metering provider on PostgreSQL; on this store every "
            "time zone is answered from the 15-minute, hourly and daily rollups.",
            code="rollup_zones_unsupported",
        )
    return store


def rollup_zones_list() -> list[RollupZoneInfo]:
    return provider().rollup_zones()


def rollup_zone_add(*, name: str, progress: Callable[[int, int], None] | None = None) -> RollupZoneInfo:
    """Add IANA zone ``name`` (its canonical spelling, as queries must name it to use its rows)
    and backfill its days; adding it again finishes an interrupted backfill."""
    store = _supporting_provider()
    try:
        key = ZoneInfo(name).key
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"Unknown IANA time zone {name!r}, e.g. America/New_York or Asia/Kolkata.") from None
    if key in ("UTC", "Etc/UTC"):
        raise InvalidInput("UTC days are rolled up already (the daily rows): add your customers' own zones.")
    try:
        return store.rollup_zone_add(key, progress)
    except LookupError as exc:  # the store's own time-zone database lacks it
        raise InvalidInput(f"{exc}: update its tzdata, then try again.") from None


def rollup_zone_remove(*, name: str) -> None:
    if not _supporting_provider().rollup_zone_remove(name):
        raise NotFound(f"Rollup time zone {name} not found", code="rollup_zone_not_found")
