"""Writes of metering, one module per sub-domain:

- ``meters``: create, update, delete meters, and the rules a meter obeys;
- ``customers``: tenants as metering customers (onboarding, offboarding);
- ``validation``: usage events checked against the meters and tenants they name;
- ``ingest``: usage stored exactly once, alone or in a group commit shared by concurrent
  callers (authenticated by the caller's layer through ``Credentials``);
- ``quota``: the ingestion quota per tenant, charged by ``ingest``;
- ``cancel``: corrections, cancelling events and rebuilding rollups;
- ``rollup_zones``: the time zones whose local days are rolled up ahead;
- ``files``: usage from JSON-lines or CSV files;
- ``firehose``: usage from SBT's billing-ingestor records delivered by Amazon Data Firehose.

Every entry point (REST API, ingestUsage on the bus, the commands, the admin) calls these; they
validate, then call the configured MeteringProvider inside one transaction. Nothing here knows
about HTTP: the API's fast path (metering/api/fast.py) brings its own token check. The names
are re-exported here, so callers import ``metering.services``.
"""

from metering.services.cancel import usage_events_cancel, usage_rollups_rebuild
from metering.services.common import invalid_fields, provider
from metering.services.customers import metering_customer_create, metering_customer_delete
from metering.services.files import FileIngestReport, usage_file_ingest
from metering.services.firehose import firehose_event_id, usage_firehose_records_ingest
from metering.services.ingest import (
    Credentials,
    _ingest_group,
    usage_events_groupable,
    usage_events_ingest,
    usage_events_ingest_authenticating,
    usage_events_ingest_shared,
)
from metering.services.meters import meter_archive, meter_check, meter_create, meter_delete, meter_update
from metering.services.quota import usage_quota_charge
from metering.services.rollup_zones import rollup_zone_add, rollup_zone_remove, rollup_zones_list
from metering.services.validation import (
    UNSTORABLE,
    VALUE_LIMIT,
    VALUE_QUANTUM,
    VALUELESS_AGGREGATIONS,
    derived_event_id,
    parse_timestamp,
    parse_value,
    usage_events_validate,
)

__all__ = [
    "UNSTORABLE",
    "VALUELESS_AGGREGATIONS",
    "VALUE_LIMIT",
    "VALUE_QUANTUM",
    "Credentials",
    "FileIngestReport",
    "_ingest_group",
    "derived_event_id",
    "firehose_event_id",
    "invalid_fields",
    "meter_archive",
    "meter_check",
    "meter_create",
    "meter_delete",
    "meter_update",
    "metering_customer_create",
    "metering_customer_delete",
    "parse_timestamp",
    "parse_value",
    "provider",
    "rollup_zone_add",
    "rollup_zone_remove",
    "rollup_zones_list",
    "usage_events_cancel",
    "usage_events_groupable",
    "usage_events_ingest",
    "usage_events_ingest_authenticating",
    "usage_events_ingest_shared",
    "usage_events_validate",
    "usage_file_ingest",
    "usage_firehose_records_ingest",
    "usage_quota_charge",
    "usage_rollups_rebuild",
]
