"""The external event bus the outbox publishes to beside the webhooks (docs/events.md
"EventBridge"), as a provider: ``SBT_PROVIDERS["events"]`` names it, and with none configured
the control plane publishes to webhook subscriptions only.

A transport sends entries shaped as SBT puts them on its bus (source, detail-type, detail) and
reports, entry by entry, which ones the bus accepted; it never raises for a failure of the bus,
so the outbox records every outcome and retries what failed (events/services/bus.py).
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

from django.conf import settings

from sbt_site.providers import get_provider


@dataclass(frozen=True)
class BusEntry:
    """One event as it goes on the bus. ``key`` is ours (the outbox event's id), to match the
    outcomes to the entries; ``detail`` is the JSON text of the event's detail."""

    key: str
    source: str
    detail_type: str
    detail: str


@dataclass(frozen=True)
class BusOutcome:
    """What the bus said about one entry: accepted (``error`` empty, ``bus_event_id`` the id it
    gave the event) or not, and whether sending it again can help."""

    key: str
    error: str = ""
    bus_event_id: str = ""
    retriable: bool = True

    @property
    def accepted(self) -> bool:
        return not self.error


class EventBusTransport(ABC):
    """An event bus: how many entries, and how many bytes of them, one call may carry, and the
    call itself."""

    max_batch_entries: int = 10
    max_batch_bytes: int = 256 * 1024

    @abstractmethod
    def entry_size(self, entry: BusEntry) -> int:
        """The size the bus counts for ``entry`` against ``max_batch_bytes``."""

    @abstractmethod
    def publish(self, entries: list[BusEntry]) -> list[BusOutcome]:
        """Put ``entries`` (at most ``max_batch_entries``, ``max_batch_bytes`` in all) on the bus
        in one call; one outcome per entry, in any order. A bus that cannot be reached, or that
        refuses the whole call, is an outcome with an error for every entry, not an exception."""


def bus_transport() -> EventBusTransport | None:
    """The configured external bus, or None when events go to webhook subscriptions only."""
    if not getattr(settings, "SBT_PROVIDERS", {}).get("events"):
        return None
    return get_provider("events")
