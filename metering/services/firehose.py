"""Usage from SBT's billing ingestor records, delivered by Amazon Data Firehose to our HTTP
endpoint (metering/api/firehose.py; docs/metering.md "From Amazon Data Firehose").

A record is what SBT's ``scripts/send-kinesis-data.sh`` puts on its delivery stream:
``{"tenantId", "metric": {"name", "value", "unit"?}, "type"?, "timestamp"?}``. It becomes the
usage event ``{"meterApiName": metric.name, "tenantId", <the meter's valueProperty>: metric.value}``
at the delivery's time; its eventId is derived from Firehose's request id (the same on every
retry of a delivery) and the record's index, so a retried delivery is stored once.
"""

from datetime import UTC, datetime

from django.db import transaction

from metering.interface import IngestResult
from metering.models import Meter
from metering.services.ingest import usage_events_ingest
from metering.services.validation import usage_events_validate
from sbt_site.conf import sbt_settings
from sbt_site.errors import InvalidInput

EVENT_ID_PREFIX = "firehose:"
# eventIds are at most 255 characters: the prefix, the request id, ":" and the index fit.
REQUEST_ID_MAX_LENGTH = 200
DEFAULT_VALUE_PROPERTY = "meterValue"


def firehose_event_id(*, request_id: str, index: int) -> str:
    """The eventId of record ``index`` of Firehose delivery ``request_id``."""
    return f"{EVENT_ID_PREFIX}{request_id}:{index}"


def _record_error(errors: list, index: int, field: str | None, msg: str) -> None:
    loc = ["body", "records", index] + ([field] if field else [])
    errors.append({"loc": loc, "msg": msg, "type": "value_error"})


def _value_properties(records: list) -> dict[str, str]:
    names = {
        record["metric"]["name"]
        for record in records
        if isinstance(record, dict)
        and isinstance(record.get("metric"), dict)
        and isinstance(record["metric"].get("name"), str)
    }
    return dict(Meter.objects.filter(api_name__in=names).values_list("api_name", "value_property"))


def usage_firehose_records_ingest(*, request_id: str, delivered_at: datetime, records: list) -> IngestResult:
    """Store the decoded records of one Firehose delivery as usage events, all or none.

    ``records`` are the JSON values of the delivery's records, in order. Every record is
    checked first and, as for POST /usage, one bad record stores nothing (InvalidInput naming
    each by index): Firehose retries the delivery, then backs it up to S3. A record's own
    ``timestamp`` is not used: SBT's aggregator ignores it (its sample script sends random
    numbers there); the usage counts at ``delivered_at``, Firehose's time of the delivery.
    """
    if not isinstance(request_id, str) or not 1 <= len(request_id) <= REQUEST_ID_MAX_LENGTH:
        raise InvalidInput(f"requestId must be a string of 1 to {REQUEST_ID_MAX_LENGTH} characters")
    value_properties = _value_properties(records)
    timestamp = delivered_at.astimezone(UTC).isoformat()
    events, positions, errors = [], [], []
    for index, record in enumerate(records):
        metric = record.get("metric") if isinstance(record, dict) else None
        if not isinstance(metric, dict):
            _record_error(
                errors, index, "metric", 'a record is {"tenantId": ..., "metric": {"name": ..., "value": ...}}'
            )
            continue
        name = metric.get("name")
        if not isinstance(name, str):
            _record_error(errors, index, "metric", "metric.name must be a meter's meterApiName")
            continue
        events.append(
            {
                "eventId": firehose_event_id(request_id=request_id, index=index),
                "meterApiName": name,
                "tenantId": record.get("tenantId"),
                value_properties.get(name, DEFAULT_VALUE_PROPERTY): metric.get("value"),
                "timestamp": timestamp,
            }
        )
        positions.append(index)
    chunk = sbt_settings.USAGE_MAX_BATCH
    if errors:
        # Every bad record is named, not only the malformed ones: the others are checked too.
        for start in range(0, len(events), chunk):
            try:
                usage_events_validate(events=events[start : start + chunk], client_tenant_id=None)
            except InvalidInput as exc:
                errors.extend(_in_record_terms(exc, positions=positions[start:], value_properties=value_properties))
        errors.sort(key=lambda error: error["loc"][2])
        bad = len({error["loc"][2] for error in errors})
        raise InvalidInput(f"{bad} of {len(records)} records are invalid; nothing was stored", detail=errors)
    accepted = duplicates = 0
    with transaction.atomic():
        for start in range(0, len(events), chunk):
            try:
                result = usage_events_ingest(events=events[start : start + chunk])
            except InvalidInput as exc:
                detail = _in_record_terms(exc, positions=positions[start:], value_properties=value_properties)
                message = exc.message.replace(" events are invalid", " records are invalid")
                raise InvalidInput(message, code=exc.code, detail=detail or None) from None
            accepted += result.accepted
            duplicates += result.duplicates
    return IngestResult(accepted=accepted, duplicates=duplicates)


def _in_record_terms(exc: InvalidInput, *, positions: list[int], value_properties: dict[str, str]) -> list[dict]:
    """The ingestion's refusal, naming records (``positions``: the record index of each event)
    and their fields instead of usage events."""
    fields = {"meterApiName": "metric.name", **dict.fromkeys(value_properties.values(), "metric.value")}
    fields[DEFAULT_VALUE_PROPERTY] = "metric.value"
    detail = []
    for error in exc.detail or []:
        loc = list(error["loc"])
        if loc[:2] == ["body", "events"] and len(loc) >= 3 and isinstance(loc[2], int):
            loc = ["body", "records", positions[loc[2]], *(fields.get(part, part) for part in loc[3:])]
        detail.append({**error, "loc": loc})
    return detail
