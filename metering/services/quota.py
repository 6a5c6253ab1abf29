"""The ingestion quota per tenant: at most ``SBT["USAGE_EVENTS_PER_MINUTE_PER_TENANT"]`` usage
events per tenant in each minute (0: no quota), counted on the shared cache once a batch has
passed validation, so that one tenant, or one stolen key, cannot take the ingestion capacity of
every other (docs/metering.md "Quota").

The ingest services charge it for every face (POST /usage by either path, inbound ingestUsage
events); the operator's file import is exempt (``usage_events_ingest(enforce_quota=False)``).
"""

from collections import Counter

from metering.interface import UsageEventIn
from sbt_site.conf import sbt_settings
from sbt_site.errors import TooManyRequests
from sbt_site.ratelimits import windows_charge

QUOTA_WINDOW_SECONDS = 60


def usage_quota_charge(batches: list[list[UsageEventIn]]) -> list[TooManyRequests | None]:
    """Count validated batches against their tenants' quotas, in order: per batch None (counted,
    to be stored) or the error its caller raises (nothing of it counted). A batch that names
    several tenants is refused when any of them is over."""
    limit = sbt_settings.USAGE_EVENTS_PER_MINUTE_PER_TENANT
    if not limit:
        return [None] * len(batches)
    counts = [Counter(f"usage_quota_{event.tenant_id}" for event in batch) for batch in batches]
    waits = windows_charge(counts, limit=limit, seconds=QUOTA_WINDOW_SECONDS)
    return [
        None if wait is None else _quota_exceeded(batch, limit, wait)
        for batch, wait in zip(batches, waits, strict=True)
    ]


def _quota_exceeded(batch: list[UsageEventIn], limit: int, wait: int) -> TooManyRequests:
    tenants = sorted({str(event.tenant_id) for event in batch})
    whose = f"tenant {tenants[0]}" if len(tenants) == 1 else f"one of the {len(tenants)} tenants they name"
    return TooManyRequests(
        f"These events would take {whose} past its quota of {limit} usage events a minute; nothing was "
        f"stored. Retry after {wait} seconds.",
        code="usage_quota_exceeded",
        retry_after=wait,
    )
