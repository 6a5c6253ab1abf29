"""Writes of metering: meters, usage ingestion and cancellation, customers.

Every entry point (REST API, ingestUsage on the bus, usage_ingest, admin) calls these; they
validate, then call the configured MeteringProvider inside one transaction.
"""

import contextlib
import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.tokens import BearerCheck, bearer_checks, token_tenant_id
from metering.group_commit import GroupCommit
from metering.interface import CancelFilter, IngestResult, MeterInfo, MeterSpec, UsageEventIn
from metering.models import Meter, MeteringCustomer, UsageEvent
from sbt_site.conf import sbt_settings
from sbt_site.db import db_value, execute_prepared, in_list, model_columns, storable_text
from sbt_site.errors import Conflict, InvalidInput, NotFound
from sbt_site.providers import get_provider
from tenants.models import Tenant

VALUE_QUANTUM = Decimal("0.000000001")  # values are stored with 9 decimal places
VALUE_LIMIT = Decimal(10) ** 29
VALUELESS_AGGREGATIONS = ("COUNT", "UNIQUE_COUNT")


@lru_cache(maxsize=8192)
def _uuid(text: str) -> UUID:
    """Parsed once per distinct text: a batch names the same few tenants a thousand times."""
    return UUID(text)


def provider():
    return get_provider("metering")


# --- meters -------------------------------------------------------------------------------
def meter_create(*, spec: MeterSpec) -> MeterInfo:
    with transaction.atomic():
        if Meter.objects.filter(api_name=spec.api_name).exists():
            raise Conflict(f"A meter named {spec.api_name} already exists.", code="meter_exists")
        return provider().create_meter(spec)


def meter_update(*, meter_id: UUID, changes: dict) -> MeterInfo:
    """Apply ``changes`` (MeterSpec field names). How events are read (aggregation, value and
    unique properties) cannot change once the meter has events: their rollups depend on it."""
    with transaction.atomic():
        meter = Meter.objects.select_for_update().filter(pk=meter_id).first()
        if meter is None:
            raise NotFound(f"Meter not found for id {meter_id}", code="meter_not_found")
        current = provider().fetch_meter(meter_id)
        spec = MeterSpec(
            **{
                name: changes.get(name, getattr(current, name))
                for name in MeterSpec.__dataclass_fields__
                if name != "dimensions"
            },
            dimensions=tuple(changes.get("dimensions", current.dimensions)),
        )
        frozen = ("aggregation", "value_property", "unique_property")
        changed = [name for name in frozen if getattr(spec, name) != getattr(current, name)]
        if changed and UsageEvent.objects.filter(meter_id=meter_id).exists():
            raise Conflict(
                f"Cannot change {', '.join(changed)} of meter {meter.api_name}: it has usage events. "
                "Create a new meter instead.",
                code="meter_in_use",
            )
        if spec.api_name != current.api_name and Meter.objects.filter(api_name=spec.api_name).exists():
            raise Conflict(f"A meter named {spec.api_name} already exists.", code="meter_exists")
        return provider().update_meter(meter_id, spec)


def meter_delete(*, meter_id: UUID) -> None:
    with transaction.atomic():
        meter = Meter.objects.select_for_update().filter(pk=meter_id).first()
        if meter is None:
            raise NotFound(f"Meter not found for id {meter_id}", code="meter_not_found")
        if meter.active and UsageEvent.objects.filter(meter_id=meter_id).exists():
            raise Conflict(
                f"Meter {meter.api_name} has usage events: archive it first (PUT with active=false).",
                code="meter_in_use",
            )
        provider().delete_meter(meter_id)


# --- customers ----------------------------------------------------------------------------
def metering_customer_create(*, tenant_id: UUID) -> None:
    with transaction.atomic():
        provider().create_customer(tenant_id)


def metering_customer_delete(*, tenant_id: UUID) -> None:
    with transaction.atomic():
        provider().delete_customer(tenant_id)


# --- ingestion ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Context:
    meters: dict[str, Meter]
    tenants: dict[UUID, bool]  # existing tenants: whether active
    offboarded: set[UUID]
    client_tenant_id: UUID | None
    now: datetime
    oldest: datetime  # earliest timestamp accepted (USAGE_MAX_BACKDATE_DAYS)
    latest: datetime  # latest timestamp accepted (USAGE_MAX_FUTURE_SECONDS)


UNSTORABLE = "may not contain NUL (\\u0000) or unpaired surrogate characters"


def _error(errors: list, index: int, field: str | None, msg: str, kind: str) -> None:
    loc = ["body", "events", index] + ([field] if field else [])
    errors.append({"loc": loc, "msg": msg, "type": kind})


def parse_value(raw) -> Decimal:
    """A finite number (JSON number or numeric string), rounded to 9 decimal places."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str, Decimal)):
        raise ValueError("must be a number")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ValueError("must be a finite number")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not value.is_finite():
        raise ValueError("must be a finite number (not NaN or Infinity)")
    if abs(value) >= VALUE_LIMIT:
        raise ValueError("is too large (at most 29 digits before the decimal point)")
    return value.quantize(VALUE_QUANTUM, rounding=ROUND_HALF_EVEN)


def parse_timestamp(raw) -> datetime:
    """ISO-8601 (an offset-less time is UTC) or epoch milliseconds."""
    if isinstance(raw, bool):
        raise ValueError("must be ISO-8601 or epoch milliseconds")
    if isinstance(raw, (int, float)):
        if not math.isfinite(raw):
            raise ValueError("must be ISO-8601 or epoch milliseconds")
        try:
            return datetime.fromtimestamp(raw / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("is out of range") from None
    if isinstance(raw, str):
        raw = raw.strip()
        try:
            # the C parser first (most timestamps are plain ISO-8601 date-times), Django's
            # regex parser for the rest
            moment = datetime.fromisoformat(raw) if len(raw) > 10 and raw[10] == "T" else parse_datetime(raw)
        except ValueError:
            try:
                moment = parse_datetime(raw)
            except ValueError:
                moment = None
        if moment is None:
            raise ValueError("must be ISO-8601 (e.g. 2026-01-31T12:00:00Z) or epoch milliseconds")
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise ValueError("must be ISO-8601 or epoch milliseconds")


def derived_event_id(
    *, meter_api_name: str, tenant_id: UUID, value: Decimal, timestamp: datetime, dimensions: dict, unique_value: str
) -> str:
    """The eventId of an event sent without one: a hash of its content, so that resending the
    same event (same timestamp!) is a duplicate. Documented in docs/metering.md."""
    content = json.dumps(
        [meter_api_name, str(tenant_id), str(value), timestamp.astimezone(UTC).isoformat(), dimensions, unique_value],
        sort_keys=True,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(content.encode()).hexdigest()


def _parse_event(raw, index: int, context: _Context, errors: list) -> UsageEventIn | None:
    before = len(errors)
    if not isinstance(raw, dict):
        _error(errors, index, None, "an event must be a JSON object", "type_error")
        return None
    meter_name = raw.get("meterApiName")
    meter = context.meters.get(meter_name) if isinstance(meter_name, str) else None
    if meter_name is None:
        _error(errors, index, "meterApiName", "meterApiName is required", "missing")
    elif meter is None:
        _error(errors, index, "meterApiName", f"unknown meter {meter_name!r}", "unknown_meter")
    elif not meter.active:
        _error(errors, index, "meterApiName", f"meter {meter_name!r} is archived", "archived_meter")

    tenant_id = _parse_tenant(raw, index, context, errors)

    value = Decimal(1)
    if meter is not None:
        raw_value = raw.get(meter.value_property)
        if raw_value is None and meter.aggregation not in VALUELESS_AGGREGATIONS:
            _error(errors, index, meter.value_property, f"{meter.value_property} is required", "missing")
        elif raw_value is not None:
            try:
                value = parse_value(raw_value)
            except ValueError as exc:
                _error(errors, index, meter.value_property, f"{meter.value_property} {exc}", "value_error")

    timestamp = context.now
    if raw.get("timestamp") is not None:
        try:
            timestamp = parse_timestamp(raw["timestamp"])
        except ValueError as exc:
            _error(errors, index, "timestamp", f"timestamp {exc}", "value_error")
        else:
            if timestamp < context.oldest:
                _error(
                    errors,
                    index,
                    "timestamp",
                    f"timestamp is more than {sbt_settings.USAGE_MAX_BACKDATE_DAYS} days in the past",
                    "too_old",
                )
            elif timestamp > context.latest:
                _error(errors, index, "timestamp", "timestamp is too far in the future", "in_future")

    dimensions = raw.get("dimensions") or {}
    unique_value = ""
    if not isinstance(dimensions, dict):
        _error(errors, index, "dimensions", "dimensions must be an object", "type_error")
        dimensions = {}
    if meter is not None:
        dimensions, unique_value = _parse_dimensions(raw, dimensions, meter, index, errors)

    event_id = raw.get("eventId")
    if event_id is not None and (not isinstance(event_id, str) or not 1 <= len(event_id) <= 255):
        _error(errors, index, "eventId", "eventId must be a string of 1 to 255 characters", "value_error")
    elif event_id is not None and not storable_text(event_id):
        _error(errors, index, "eventId", f"eventId {UNSTORABLE}", "value_error")

    if len(errors) > before:
        return None
    if event_id is None:
        event_id = derived_event_id(
            meter_api_name=meter.api_name,
            tenant_id=tenant_id,
            value=value,
            timestamp=timestamp,
            dimensions=dimensions,
            unique_value=unique_value,
        )
    return UsageEventIn(
        tenant_id=tenant_id,
        meter_id=meter.id,
        event_id=event_id,
        timestamp=timestamp,
        value=value,
        unique_value=unique_value,
        dimensions=dimensions,
    )


def _parse_tenant(raw: dict, index: int, context: _Context, errors: list) -> UUID | None:
    raw_tenant = raw.get("tenantId")
    if raw_tenant is None:
        if context.client_tenant_id is not None:
            return context.client_tenant_id
        _error(errors, index, "tenantId", "tenantId is required", "missing")
        return None
    try:
        tenant_id = _uuid(str(raw_tenant))
    except ValueError:
        _error(errors, index, "tenantId", "tenantId must be a UUID", "value_error")
        return None
    active = context.tenants.get(tenant_id)
    # a tenant-bound client learns nothing about other tenants: same message as unknown
    if active is None or (context.client_tenant_id is not None and tenant_id != context.client_tenant_id):
        _error(errors, index, "tenantId", f"unknown tenant {tenant_id}", "unknown_tenant")
        return None
    if not active or tenant_id in context.offboarded:
        _error(errors, index, "tenantId", f"tenant {tenant_id} is offboarded: its usage is refused", "tenant_inactive")
        return None
    return tenant_id


def _parse_dimensions(raw: dict, dimensions: dict, meter: Meter, index: int, errors: list) -> tuple[dict, str]:
    unique_value = ""
    dimensions = dict(dimensions)
    if meter.aggregation == "UNIQUE_COUNT":
        prop = meter.unique_property
        candidate = raw.get(prop, dimensions.pop(prop, None)) if prop else None
        if prop in dimensions:
            dimensions.pop(prop)
        if candidate is None or isinstance(candidate, (dict, list)) or candidate == "":
            _error(errors, index, prop or "uniqueProperty", f"{prop} is required for a UNIQUE_COUNT meter", "missing")
        else:
            unique_value = str(candidate)
            if not storable_text(unique_value):
                _error(errors, index, prop, f"{prop} {UNSTORABLE}", "value_error")
    clean = {}
    for key in sorted(dimensions):
        value = dimensions[key]
        if key not in meter.dimensions:
            allowed = ", ".join(meter.dimensions) or "none"
            _error(errors, index, "dimensions", f"dimension {key!r} is not allowed (allowed: {allowed})", "value_error")
        elif value is None or isinstance(value, (dict, list)):
            _error(errors, index, "dimensions", f"dimension {key!r} must be a string or a number", "value_error")
        else:
            clean[key] = str(value).lower() if isinstance(value, bool) else str(value)
            if not storable_text(clean[key]):
                _error(errors, index, "dimensions", f"dimension {key!r} {UNSTORABLE}", "value_error")
    return clean, unique_value


@lru_cache(maxsize=1)
def _lookup_sql() -> tuple:
    """The two reads of every ingestion, written once (see sbt_site/db.py): the named meters,
    and the named tenants with whether metering offboarded them."""
    quote = connection.ops.quote_name
    meters = model_columns(Meter, "m")
    meter_sql = f"SELECT {meters.sql} FROM {quote(Meter._meta.db_table)} m WHERE {{}}"  # noqa: S608 (model names)
    tenant_sql = (
        f"SELECT t.id, t.active, EXISTS (SELECT 1 FROM {quote(MeteringCustomer._meta.db_table)} c"  # noqa: S608
        f" WHERE c.tenant_id = t.id AND c.offboarded IS NOT NULL) FROM {quote(Tenant._meta.db_table)} t WHERE {{}}"
    )
    return meters, meter_sql, tenant_sql


def _meters_lookup(names: set[str]) -> dict[str, Meter]:
    if not names:
        return {}
    meters, meter_sql, _ = _lookup_sql()
    condition, params = in_list("m.api_name", sorted(names))
    loaded = [meters.load(row) for row in execute_prepared(meter_sql.format(condition), params)]
    return {meter.api_name: meter for meter in loaded}


def _tenants_lookup(tenant_ids: set[UUID]) -> tuple[dict[UUID, bool], set[UUID]]:
    """({tenant id: active}, {ids of tenants metering offboarded}) for the tenants that exist."""
    if not tenant_ids:
        return {}, set()
    _, _, tenant_sql = _lookup_sql()
    condition, params = in_list("t.id", [db_value(Tenant._meta.pk, pk) for pk in tenant_ids])
    rows = execute_prepared(tenant_sql.format(condition), params)
    active = {_uuid(str(pk)): bool(is_active) for pk, is_active, _ in rows}
    return active, {_uuid(str(pk)) for pk, _, is_offboarded in rows if is_offboarded}


def _check_batch(events) -> None:
    limit = sbt_settings.USAGE_MAX_BATCH
    if not isinstance(events, list) or not events:
        raise InvalidInput(
            "events must be a non-empty list",
            detail=[{"loc": ["body", "events"], "msg": "events must be a non-empty list", "type": "value_error"}],
        )
    if len(events) > limit:
        msg = f"at most {limit} events per request ({len(events)} sent)"
        raise InvalidInput(msg, detail=[{"loc": ["body", "events"], "msg": msg, "type": "too_many_events"}])


def _contexts(batches: list[tuple[list, UUID | None]]) -> list[_Context]:
    """One validation context per (events, client tenant id), with one read of the meters and
    one of the tenants that all of them name."""
    meter_names, tenant_texts, tenant_ids = set(), set(), set()
    for events, client_tenant_id in batches:
        if client_tenant_id is not None:
            tenant_ids.add(client_tenant_id)
        for event in events:
            if isinstance(event, dict):
                meter_name, tenant = event.get("meterApiName"), event.get("tenantId")
                if isinstance(meter_name, str):
                    meter_names.add(meter_name)
                if tenant is not None:
                    tenant_texts.add(str(tenant))  # a batch names a few tenants many times
    for text in tenant_texts:
        with contextlib.suppress(ValueError):
            tenant_ids.add(_uuid(text))
    meters = _meters_lookup(meter_names)
    tenants, offboarded = _tenants_lookup(tenant_ids)
    now = timezone.now()
    limits = {
        "now": now,
        "oldest": now - timedelta(days=sbt_settings.USAGE_MAX_BACKDATE_DAYS),
        "latest": now + timedelta(seconds=sbt_settings.USAGE_MAX_FUTURE_SECONDS),
    }
    return [
        _Context(meters=meters, tenants=tenants, offboarded=offboarded, client_tenant_id=client_tenant_id, **limits)
        for _, client_tenant_id in batches
    ]


def _parse_batch(events: list, context: _Context) -> list[UsageEventIn]:
    errors: list[dict] = []
    parsed = [_parse_event(raw, index, context, errors) for index, raw in enumerate(events)]
    if errors:
        bad = len({error["loc"][2] for error in errors})
        raise InvalidInput(f"{bad} of {len(events)} events are invalid; nothing was stored", detail=errors)
    return parsed


def usage_events_validate(*, events: list, client_tenant_id: UUID | None) -> list[UsageEventIn]:
    """Validate a batch; raise InvalidInput naming every bad event by index (nothing stored)."""
    _check_batch(events)
    (context,) = _contexts([(events, client_tenant_id)])
    return _parse_batch(events, context)


def usage_events_ingest(*, events: list, client_tenant_id: UUID | None = None) -> IngestResult:
    """Validate and store a batch exactly once by (tenant, eventId); durable on return."""
    parsed = usage_events_validate(events=events, client_tenant_id=client_tenant_id)
    with transaction.atomic():
        return provider().ingest(parsed)


class NotAuthorized(Exception):
    """The bearer token of a ``usage_events_ingest_bearer`` call did not pass; nothing of its
    batch was stored. The API then answers as its authentication would (401 or 403)."""


def _authorize(batches: list[tuple[list, object]]) -> list:
    """Each batch's client tenant id, with every BearerCheck among them checked in one query;
    NotAuthorized() for a check that failed."""
    checks = [number for number, (_, access) in enumerate(batches) if isinstance(access, BearerCheck)]
    tenants = [access for _, access in batches]
    for number, token in zip(checks, bearer_checks([batches[number][1] for number in checks]), strict=True):
        tenants[number] = NotAuthorized() if token is None else token_tenant_id(token)
    return tenants


def _ingest_group(batches: list[tuple[list, object]]) -> list:
    """GroupCommit's flush: check the bearer tokens, validate each batch on its own (a bad one
    fails alone), store the valid ones in one transaction; per batch an IngestResult or the
    exception to raise (NotAuthorized, InvalidInput)."""
    outcomes: list = _authorize(batches)
    authorized = [number for number, outcome in enumerate(outcomes) if not isinstance(outcome, NotAuthorized)]
    contexts = _contexts([(batches[number][0], outcomes[number]) for number in authorized])
    for number, context in zip(authorized, contexts, strict=True):
        try:
            outcomes[number] = _parse_batch(batches[number][0], context)
        except InvalidInput as exc:
            outcomes[number] = exc
    valid = [number for number, outcome in enumerate(outcomes) if isinstance(outcome, list)]
    if valid:
        with transaction.atomic():
            results = provider().ingest_many([outcomes[number] for number in valid])
        for number, result in zip(valid, results, strict=True):
            outcomes[number] = result
    return outcomes


_group_commit = GroupCommit(_ingest_group, max_size=1000)


def usage_events_ingest_shared(*, events: list, client_tenant_id: UUID | None = None) -> IngestResult:
    """``usage_events_ingest`` for request handlers: small batches sent concurrently to one
    process are stored in one shared transaction (metering/group_commit.py), each still
    validated on its own and durable on return. Larger batches, and callers already inside a
    transaction (whose uncommitted rows another thread could not see), ingest on their own."""
    _check_batch(events)
    if not usage_events_groupable(events):
        return usage_events_ingest(events=events, client_tenant_id=client_tenant_id)
    return _group_commit.submit((events, client_tenant_id), size=len(events))


def usage_events_groupable(events: list) -> bool:
    """Whether a (checked) batch may share a group commit: small enough, and not sent from
    inside a transaction."""
    return len(events) <= sbt_settings.USAGE_GROUP_COMMIT_MAX_EVENTS and not connection.in_atomic_block


def usage_events_ingest_bearer(*, events: list, bearer: BearerCheck) -> IngestResult:
    """``usage_events_ingest_shared`` for a request not yet authenticated: its bearer token is
    checked by the group commit's leader, together with those of the other requests of the
    group, in one query (the token lookup was the largest cost of a one-event request that is
    not shared otherwise). Raises NotAuthorized when the token does not pass, InvalidInput
    when the batch does not; the batch must be groupable (``usage_events_groupable``)."""
    _check_batch(events)
    if not usage_events_groupable(events):
        raise ValueError("usage_events_ingest_bearer takes groupable batches only")
    return _group_commit.submit((events, bearer), size=len(events))


# --- cancellation -------------------------------------------------------------------------
def usage_events_cancel(
    *,
    client_tenant_id: UUID | None,
    event_ids: list[str] | None = None,
    meter_api_name: str | None = None,
    tenant_id: UUID | None = None,
    ingested_from: datetime | None = None,
    ingested_to: datetime | None = None,
) -> int:
    """Cancel live events by ids, or by meter (+ tenant) and ingestion time range.

    Cancelled events stay stored and stop counting; cancelling again changes nothing.
    """
    if client_tenant_id is not None:
        if tenant_id is not None and tenant_id != client_tenant_id:
            return 0
        tenant_id = client_tenant_id
    meter_id = None
    if meter_api_name is not None:
        meter = Meter.objects.filter(api_name=meter_api_name).first()
        if meter is None:
            raise NotFound(f"Meter not found for name {meter_api_name}", code="meter_not_found")
        meter_id = meter.id
    cancel_filter = CancelFilter(
        tenant_id=tenant_id,
        event_ids=tuple(event_ids or ()),
        meter_id=meter_id,
        ingested_from=ingested_from,
        ingested_to=ingested_to,
    )
    with transaction.atomic():
        return provider().cancel(cancel_filter)


def usage_rollups_rebuild(*, meter_api_name: str, start: datetime, end: datetime) -> int:
    """Repair the rollups of one meter over [start, end) from its raw events (bucket-aligned)."""
    from metering.providers.native import rollups_rebuild
    from metering.windows import bucket_of

    meter = Meter.objects.filter(api_name=meter_api_name).first()
    if meter is None:
        raise NotFound(f"Meter not found for name {meter_api_name}", code="meter_not_found")
    start = bucket_of(start)
    end_bucket = bucket_of(end)
    end = end_bucket if end_bucket == end else end_bucket + timedelta(minutes=15)
    with transaction.atomic():
        return rollups_rebuild(meter_id=meter.id, start=start, end=end)


# --- files --------------------------------------------------------------------------------
@dataclass
class FileIngestReport:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list = None  # [(line number, message)], the first 100

    def __post_init__(self):
        self.rejected = self.rejected or []
        self.rejected_count = 0


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _file_events(handle, file_format: str):
    """Yield (line number, raw line bytes, event dict or error text), streaming."""
    if file_format == "csv":
        import csv
        import io

        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        reader = csv.DictReader(text)
        try:
            for row in reader:
                event, dimensions = {}, {}
                for column, cell in row.items():
                    if column is None or cell in (None, ""):
                        continue
                    if column.startswith("dimensions."):
                        dimensions[column.removeprefix("dimensions.")] = cell
                    elif column == "timestamp" and cell.isdigit():
                        event[column] = int(cell)
                    else:
                        event[column] = cell
                if dimensions:
                    event["dimensions"] = dimensions
                yield reader.line_num, json.dumps(row, sort_keys=True).encode(), event
        finally:
            text.detach()  # the caller owns (and closes) the binary handle
        return
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            yield number, line, f"not a JSON object: {exc}"
            continue
        yield number, line, event


def usage_file_ingest(*, handle, file_format: str, batch_size: int = 1000, progress=None) -> FileIngestReport:
    """Ingest a JSON-lines or CSV file (binary ``handle``) in constant memory.

    An event without ``eventId`` gets one from the exact bytes of its line, so running the
    same file again adds nothing (resumable). A bad line is reported and skipped; the rest of
    its batch is still stored. ``progress(bytes_read)`` is called after each batch.
    """
    from django.db import reset_queries

    report = FileIngestReport()
    batch: list[tuple[int, dict]] = []

    def flush():
        pending = batch[:]
        batch.clear()
        while pending:
            try:
                result = usage_events_ingest(events=[event for _, event in pending])
            except InvalidInput as exc:
                bad = {}
                for error in exc.detail or []:
                    if len(error["loc"]) > 2:
                        bad.setdefault(error["loc"][2], f"{'.'.join(map(str, error['loc'][3:]))}: {error['msg']}")
                if not bad:
                    raise
                for index, message in sorted(bad.items()):
                    _reject(report, pending[index][0], message)
                pending = [item for index, item in enumerate(pending) if index not in bad]
                continue
            report.accepted += result.accepted
            report.duplicates += result.duplicates
            pending = []
        reset_queries()  # DEBUG keeps every query otherwise: memory would grow with the file
        if progress is not None:
            progress(handle.tell())

    for number, line, event in _file_events(handle, file_format):
        report.lines += 1
        if not isinstance(event, dict):
            _reject(report, number, event if isinstance(event, str) else "not a JSON object")
            continue
        if "eventId" not in event:
            event["eventId"] = "line:" + hashlib.sha256(line.rstrip(b"\r\n")).hexdigest()
        batch.append((number, event))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return report


def _reject(report: FileIngestReport, line: int, message: str) -> None:
    report.rejected_count += 1
    if len(report.rejected) < 100:
        report.rejected.append((line, message))
