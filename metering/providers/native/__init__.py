"""The native metering provider: everything in our own database (docs/metering.md).

- ``provider``: ``NativeMeteringProvider``, the ``MeteringProvider`` that settings name by the
  path ``metering.providers.native.NativeMeteringProvider``;
- ``ingest``: the PostgreSQL ingestion statement (staging table, COPY, one prepared upsert);
- ``rollups``: partial aggregates, the (meter, tenant) advisory locks, the rollup rebuild;
- ``query_postgresql``: usage queries aggregated in SQL over rollup pieces;
- ``query_portable``: usage queries computed in Python (SQLite, and the raw-event fallback).

The time arithmetic they share (buckets, spans, pieces) is in ``metering.windows``.
"""

from metering.providers.native.ingest import SMALL_BATCH
from metering.providers.native.provider import NativeMeteringProvider
from metering.providers.native.query_portable import usage_windows_portable
from metering.providers.native.query_postgresql import MAX_PIECES
from metering.providers.native.rollups import rollups_rebuild

# Re-exported from where they moved, for the callers that import them from here.
from metering.selectors import meter_info
from metering.windows import rollup_pieces, rollup_span

__all__ = [
    "MAX_PIECES",
    "SMALL_BATCH",
    "NativeMeteringProvider",
    "meter_info",
    "rollup_pieces",
    "rollup_span",
    "rollups_rebuild",
    "usage_windows_portable",
]
