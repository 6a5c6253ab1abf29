"""IMetering: the provider interface (SBT's MeteringProvider operations) and its dataclasses.

Services validate input and call the configured provider (``get_provider("metering")``); the
native provider (metering.providers.native) stores everything in our own database.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import UUID


@dataclass(frozen=True)
class MeterSpec:
    api_name: str
    label: str
    aggregation: str
    value_property: str = "meterValue"
    unique_property: str = ""
    dimensions: tuple[str, ...] = ()
    unit: str = ""
    description: str = ""
    active: bool = True


@dataclass(frozen=True)
class MeterInfo:
    id: UUID
    api_name: str
    label: str
    aggregation: str
    value_property: str
    unique_property: str
    dimensions: tuple[str, ...]
    unit: str
    description: str
    active: bool
    created: datetime
    modified: datetime


@dataclass(frozen=True)
class UsageEventIn:
    """One validated event: ``unique_value`` is "" unless the meter counts unique values."""

    tenant_id: UUID
    meter_id: UUID
    event_id: str
    timestamp: datetime
    value: Decimal
    unique_value: str = ""
    dimensions: dict = field(default_factory=dict)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


@dataclass(frozen=True)
class UsageQuery:
    meter_id: UUID
    aggregation: str
    tenant_id: UUID | None
    start: datetime
    end: datetime
    interval: str  # HOUR | DAY | WEEK | MONTH
    time_zone: str
    group_by: str | None = None
    # keyset pagination: only results after ``after`` (a ``usage_window_order`` key), at most
    # ``limit`` of them; None/None is the whole answer
    after: tuple | None = None
    limit: int | None = None


@dataclass(frozen=True)
class UsageWindow:
    tenant_id: UUID
    window_start: datetime
    window_end: datetime
    value: Decimal
    event_count: int
    group: dict = field(default_factory=dict)


def usage_window_order(window: UsageWindow) -> tuple[str, bool, str, float]:
    """The order of usage results: tenant, group (windows without the dimension first), time."""
    value = next(iter(window.group.values())) if window.group else None
    return (str(window.tenant_id), value is not None, value or "", window.window_start.timestamp())


@dataclass(frozen=True)
class CancelFilter:
    """Cancel by ``event_ids``, or by meter (+ tenant) and ingestion time range."""

    tenant_id: UUID | None = None
    event_ids: tuple[str, ...] = ()
    meter_id: UUID | None = None
    ingested_from: datetime | None = None
    ingested_to: datetime | None = None


@dataclass(frozen=True)
class RollupZoneInfo:
    """A time zone whose local days the store aggregates ahead (docs/metering.md)."""

    name: str
    ready: bool
    created: datetime


class MeteringProvider(ABC):
    """SBT's IMetering operations. Implementations are idempotent where SBT's are retried."""

    # whether rollup_zone_add/remove do anything (stores that aggregate ahead by day)
    supports_rollup_zones: bool = False

    @abstractmethod
    def create_meter(self, spec: MeterSpec) -> MeterInfo:
        """Create a meter; its api name is unique."""

    @abstractmethod
    def fetch_meter(self, meter_id: UUID) -> MeterInfo | None:
        """The meter, or None."""

    @abstractmethod
    def fetch_all_meters(self) -> list[MeterInfo]:
        """Every meter."""

    @abstractmethod
    def update_meter(self, meter_id: UUID, spec: MeterSpec) -> MeterInfo:
        """Replace the meter's definition."""

    @abstractmethod
    def delete_meter(self, meter_id: UUID) -> None:
        """Delete the meter and its usage."""

    @abstractmethod
    def ingest(self, events: list[UsageEventIn]) -> IngestResult:
        """Store events exactly once by (tenant, eventId); durable when the caller's transaction commits."""

    def ingest_many(self, batches: list[list[UsageEventIn]]) -> list[IngestResult]:
        """Store several independent batches in the caller's transaction (group commit), one
        result per batch, as if ingested one after the other in this order: an eventId sent in
        two batches is accepted in the first and a duplicate in the second. Override when the
        store can do it in one step."""
        return [self.ingest(batch) for batch in batches]

    @abstractmethod
    def fetch_usage(self, query: UsageQuery) -> list[UsageWindow]:
        """Aggregated usage per (tenant, group, window), every acknowledged live event included."""

    @abstractmethod
    def cancel(self, cancel_filter: CancelFilter) -> int:
        """Cancel matching live events (kept for audit); returns how many were cancelled."""

    @abstractmethod
    def rebuild_rollups(self, *, meter_id: UUID, start: datetime, end: datetime, tenant_id: UUID | None = None) -> int:
        """Recompute the stored aggregates of the meter's usage over [start, end) (widened to
        whatever the store aggregates by) from the live events, for one tenant or (None) all of
        them, in the caller's transaction; returns how many aggregate rows were written. It
        repairs aggregates, never changes an answer that was right: a store without separate
        aggregates returns 0."""

    def rollup_zones(self) -> list[RollupZoneInfo]:
        """The time zones whose local days are aggregated ahead, by name."""
        return []

    def rollup_zone_add(self, name: str, progress: Callable[[int, int], None] | None = None) -> RollupZoneInfo:
        """Aggregate the local days of IANA zone ``name`` ahead from now on, and backfill the
        days before (``progress(done, total)`` in (meter, tenant) pairs as it goes); adding a
        zone again resumes an unfinished backfill. Only where ``supports_rollup_zones``;
        LookupError when the store's own time-zone database lacks it."""
        raise NotImplementedError

    def rollup_zone_remove(self, name: str) -> bool:
        """Stop aggregating ``name``'s days and delete them; False if it was not added."""
        raise NotImplementedError

    @abstractmethod
    def create_customer(self, tenant_id: UUID) -> None:
        """Make the tenant a metering customer (idempotent)."""

    @abstractmethod
    def delete_customer(self, tenant_id: UUID) -> None:
        """Offboard the tenant's customer: later usage is refused (idempotent)."""
