"""Reads of metering: meters, usage windows (API, admin chart) and the billing seam."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from django.db.models import QuerySet

from metering.interface import MeterInfo, UsageQuery, UsageWindow
from metering.models import Meter
from sbt_site.providers import get_provider


@dataclass(frozen=True)
class UsageWindowTotal:
    window_start: datetime  # aware UTC, aligned to the hour
    window_end: datetime
    value: Decimal  # the meter's aggregation over the window
    event_count: int


def meter_info(meter: Meter) -> MeterInfo:
    """The provider-neutral description of ``meter`` (what the API and the provider return)."""
    return MeterInfo(
        id=meter.id,
        api_name=meter.api_name,
        label=meter.label,
        aggregation=meter.aggregation,
        value_property=meter.value_property,
        unique_property=meter.unique_property,
        dimensions=tuple(meter.dimensions),
        unit=meter.unit,
        description=meter.description,
        active=meter.active,
        created=meter.created,
        modified=meter.modified,
    )


def meter_list() -> QuerySet[Meter]:
    return Meter.objects.all()


def meter_get(*, meter_id: UUID) -> Meter | None:
    return Meter.objects.filter(pk=meter_id).first()


def meter_get_by_api_name(*, api_name: str) -> Meter | None:
    return Meter.objects.filter(api_name=api_name).first()


def usage_windows(
    *,
    meter: Meter,
    tenant_id: UUID | None,
    start: datetime,
    end: datetime,
    interval: str = "DAY",
    time_zone: str = "UTC",
    group_by: str | None = None,
    after: tuple | None = None,
    limit: int | None = None,
) -> list[UsageWindow]:
    """Usage of ``meter`` per (tenant, group, window) for the windows covering [start, end).

    Windows are whole windows of ``time_zone`` (the first starts at or before ``start``);
    windows without usage are omitted. Every acknowledged, non-cancelled event is included.
    With ``after`` (a ``usage_window_order`` key) and/or ``limit``: only the next ``limit``
    results after that key (a page, computed in SQL on PostgreSQL).
    """
    return get_provider("metering").fetch_usage(
        UsageQuery(
            meter_id=meter.id,
            aggregation=meter.aggregation,
            tenant_id=tenant_id,
            start=start,
            end=end,
            interval=interval,
            time_zone=time_zone,
            group_by=group_by,
            after=after,
            limit=limit,
        )
    )


def usage_window_totals(
    *, meter_api_name: str, tenant_id: UUID, start: datetime, end: datetime
) -> list[UsageWindowTotal]:
    """Hourly UTC totals of one tenant's usage of one meter in [start, end); hours without usage
    omitted; every acknowledged, non-cancelled event included (the billing seam).

    Pass hour-aligned bounds: an hour only partly inside [start, end) is left out, so that
    consecutive calls over adjacent ranges never count an hour twice."""
    meter = meter_get_by_api_name(api_name=meter_api_name)
    if meter is None:
        return []
    windows = usage_windows(meter=meter, tenant_id=tenant_id, start=start, end=end, interval="HOUR", time_zone="UTC")
    return [
        UsageWindowTotal(
            window_start=window.window_start.astimezone(UTC),
            window_end=window.window_end.astimezone(UTC),
            value=window.value,
            event_count=window.event_count,
        )
        for window in windows
        if window.window_start >= start and window.window_end <= end
    ]
