"""Validation of usage events: one batch (or the batches of a group commit) checked against
the meters and tenants it names, read once, every bad event named by index and field.

Nothing here writes; ``usage_events_validate`` is the entry point, the ingest services
(metering/services/ingest.py) store what it returns.

Over 400 lines because the rules and their fast path belong together: ``_PlainEvents`` parses
the common event of a batch and hands anything else to ``_parse_event``, the one statement of
the rules, and a reader changing a rule must see both.
"""

import contextlib
import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from functools import lru_cache
from uuid import UUID

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.boundary import tenant_in_reach
from metering.interface import UsageEventIn
from metering.models import Meter, MeteringCustomer
from sbt_site.conf import sbt_settings
from sbt_site.db import db_value, execute_prepared, in_list, model_columns, storable_text
from sbt_site.errors import InvalidInput, NotFound
from tenants.models import Tenant

VALUE_QUANTUM = Decimal("0.000000001")  # values are stored with 9 decimal places
VALUE_LIMIT = Decimal(10) ** 29
# room for 29 digits before the point (and one more when rounding reaches the limit) and 9 after:
# the default context's 28 digits would refuse any value of 10**19 or more
VALUE_CONTEXT = Context(prec=40)
VALUELESS_AGGREGATIONS = (Meter.Aggregation.COUNT, Meter.Aggregation.UNIQUE_COUNT)


@lru_cache(maxsize=8192)
def _uuid(text: str) -> UUID:
    """Parsed once per distinct text: a batch names the same few tenants a thousand times."""
    return UUID(text)


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
    # checked before rounding (a huge value does not fit the context) and after (it may round up)
    rounded = (
        value.quantize(VALUE_QUANTUM, rounding=ROUND_HALF_EVEN, context=VALUE_CONTEXT)
        if abs(value) < VALUE_LIMIT
        else value
    )
    if abs(rounded) >= VALUE_LIMIT:
        raise ValueError("is too large (at most 29 digits before the decimal point)")
    return rounded


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
    """The event's tenant: the one it names, or a tenant-bound client's own when it names none;
    it must exist and be active either way."""
    raw_tenant = raw.get("tenantId")
    if raw_tenant is None and context.client_tenant_id is None:
        _error(errors, index, "tenantId", "tenantId is required", "missing")
        return None
    try:
        requested = None if raw_tenant is None else _uuid(str(raw_tenant))
    except ValueError:
        _error(errors, index, "tenantId", "tenantId must be a UUID", "value_error")
        return None
    try:
        tenant_id = tenant_in_reach(bound=context.client_tenant_id, requested=requested, not_found="")
    except NotFound:
        tenant_id = None  # a tenant-bound client learns nothing about other tenants: as unknown
    if tenant_id is None or context.tenants.get(tenant_id) is None:
        _error(errors, index, "tenantId", f"unknown tenant {requested or context.client_tenant_id}", "unknown_tenant")
        return None
    if not context.tenants[tenant_id] or tenant_id in context.offboarded:
        _error(errors, index, "tenantId", f"tenant {tenant_id} is offboarded: its usage is refused", "tenant_inactive")
        return None
    return tenant_id


def _parse_dimensions(raw: dict, dimensions: dict, meter: Meter, index: int, errors: list) -> tuple[dict, str]:
    unique_value = ""
    dimensions = dict(dimensions)
    if meter.aggregation == Meter.Aggregation.UNIQUE_COUNT:
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
                # not storable: unknown, not a SQL error (checked once per name)
                if isinstance(meter_name, str) and meter_name not in meter_names and storable_text(meter_name):
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


class _PlainEvents:
    """The common event of a batch parsed quickly, with what ``_parse_event`` computes for one
    event remembered for the next: a batch names a few tenants, meters, values and dimension
    sets a thousand times. ``parse`` returns exactly what ``_parse_event`` would, or None
    whenever the event is not plain (anything to refuse, a UNIQUE_COUNT meter, a value or
    dimension of an unusual type): ``_parse_event`` then parses it and names its errors, so
    every rule and message stays in one place."""

    __slots__ = ("context", "dimensions", "meters", "tenants", "values")

    def __init__(self, context: _Context):
        self.context = context
        self.meters = {
            name: meter
            for name, meter in context.meters.items()
            if meter.active and meter.aggregation != Meter.Aggregation.UNIQUE_COUNT
        }
        self.tenants: dict[str | None, UUID] = {}  # tenantId as sent: the tenant it passed as
        self.values: dict[int, Decimal] = {}  # integers only: 1 == 1.0 == True as keys
        self.dimensions: dict[tuple, dict] = {}  # (meter, string-valued items): clean dimensions

    def parse(self, raw) -> UsageEventIn | None:
        if type(raw) is not dict:
            return None
        meter_name = raw.get("meterApiName")
        meter = self.meters.get(meter_name) if type(meter_name) is str else None
        if meter is None:
            return None
        tenant_id = self._tenant(raw)
        if tenant_id is None:
            return None
        value = self._value(raw.get(meter.value_property), meter)
        if value is None:
            return None
        timestamp = self.context.now
        if raw.get("timestamp") is not None:
            try:
                timestamp = parse_timestamp(raw["timestamp"])
            except ValueError:
                return None
            if not self.context.oldest <= timestamp <= self.context.latest:
                return None
        dimensions = self._dimensions(raw, meter)
        if dimensions is None:
            return None
        event_id = raw.get("eventId")
        if event_id is None:
            event_id = derived_event_id(
                meter_api_name=meter.api_name,
                tenant_id=tenant_id,
                value=value,
                timestamp=timestamp,
                dimensions=dimensions,
                unique_value="",
            )
        elif type(event_id) is not str or not 1 <= len(event_id) <= 255 or not storable_text(event_id):
            return None
        # filled through __dict__: a frozen dataclass's __init__ costs an object.__setattr__ per field
        event = object.__new__(UsageEventIn)
        event.__dict__.update(
            tenant_id=tenant_id,
            meter_id=meter.id,
            event_id=event_id,
            timestamp=timestamp,
            value=value,
            unique_value="",
            dimensions=dimensions,
        )
        return event

    def _tenant(self, raw: dict) -> UUID | None:
        raw_tenant = raw.get("tenantId")
        tenant_id = self.tenants.get(raw_tenant) if raw_tenant is None or type(raw_tenant) is str else False
        if tenant_id is None:
            errors: list[dict] = []
            tenant_id = _parse_tenant(raw, 0, self.context, errors)
            if errors:
                return None
            self.tenants[raw_tenant] = tenant_id
        return tenant_id or None

    def _value(self, raw_value, meter: Meter) -> Decimal | None:
        if raw_value is None:
            return Decimal(1) if meter.aggregation in VALUELESS_AGGREGATIONS else None
        value = self.values.get(raw_value) if type(raw_value) is int else None
        if value is None:
            try:
                value = parse_value(raw_value)
            except ValueError:
                return None
            if type(raw_value) is int:
                self.values[raw_value] = value
        return value

    def _dimensions(self, raw: dict, meter: Meter) -> dict | None:
        dimensions = raw.get("dimensions") or {}
        if type(dimensions) is not dict:
            return None
        # only string values make a key that means one result ("1" and 1, 0.0 and -0.0 do not)
        for value in dimensions.values():
            if type(value) is not str:
                key = None
                break
        else:
            key = (meter.api_name, tuple(dimensions.items()))
        clean = self.dimensions.get(key)
        if clean is None:
            errors: list[dict] = []
            clean, _ = _parse_dimensions(raw, dimensions, meter, 0, errors)
            if errors:
                return None
            if key is not None:
                self.dimensions[key] = clean
        return dict(clean)


def _parse_batch(events: list, context: _Context) -> list[UsageEventIn]:
    errors: list[dict] = []
    plain = _PlainEvents(context)
    parsed = [plain.parse(raw) or _parse_event(raw, index, context, errors) for index, raw in enumerate(events)]
    if errors:
        bad = len({error["loc"][2] for error in errors})
        raise InvalidInput(f"{bad} of {len(events)} events are invalid; nothing was stored", detail=errors)
    return parsed


def usage_events_validate(*, events: list, client_tenant_id: UUID | None) -> list[UsageEventIn]:
    """Validate a batch; raise InvalidInput naming every bad event by index (nothing stored)."""
    _check_batch(events)
    (context,) = _contexts([(events, client_tenant_id)])
    return _parse_batch(events, context)
