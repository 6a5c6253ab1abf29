"""Usage ingestion: a validated batch stored exactly once by (tenant, eventId), durable on
return; and the group commit through which small batches sent concurrently to one process
share one transaction (metering/group_commit.py).

A batch of the group commit comes with its caller's client tenant id, or, for a caller not yet
authenticated, with ``Credentials``: how to authenticate it is supplied by the caller's layer
(the API's bearer tokens, metering/api/fast.py), and the group's leader authenticates every
caller of the group at once. Nothing here knows about HTTP or tokens.
"""

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from django.db import DatabaseError, DataError, connection, transaction

from metering.group_commit import GroupCommit
from metering.interface import IngestResult, UsageEventIn
from metering.models import Meter
from metering.services.common import provider
from metering.services.quota import usage_quota_charge
from metering.services.validation import _check_batch, _contexts, _parse_batch, usage_events_validate
from sbt_site.conf import sbt_settings
from sbt_site.errors import InvalidInput
from sbt_site.metrics import GROUP_COMMIT_BATCHES, USAGE_EVENTS, USAGE_EVENTS_REFUSED


def usage_events_ingest(
    *, events: list, client_tenant_id: UUID | None = None, enforce_quota: bool = True
) -> IngestResult:
    """Validate and store a batch exactly once by (tenant, eventId); durable on return.
    ``enforce_quota=False`` exempts it from the tenants' ingestion quota (metering/services/quota.py):
    for the operator's own imports, never for what a client sends."""
    try:
        parsed = usage_events_validate(events=events, client_tenant_id=client_tenant_id)
        if enforce_quota:
            (refused,) = usage_quota_charge([parsed])
            if refused is not None:
                raise refused
        result = _store([parsed])[0]
    except Exception as exc:
        _refused_count(events, exc)
        raise
    _stored_count(parsed, result)
    return result


# A batch naming several meters of which only some events were duplicates: the store says how
# many were new, not of which meter, so its events are counted under this label.
SEVERAL_METERS = "(several)"
_meter_names: dict[UUID, str] = {}


def _meter_label(meter_id: UUID) -> str:
    """The meter's API name, read once per process (its id if the read fails: counting must
    never fail an ingestion that was stored)."""
    name = _meter_names.get(meter_id)
    if name is None:
        try:
            name = Meter.objects.filter(pk=meter_id).values_list("api_name", flat=True).first() or str(meter_id)
        except DatabaseError:
            return str(meter_id)
        _meter_names[meter_id] = name
    return name


def _stored_count(parsed: list[UsageEventIn], result: IngestResult) -> None:
    """Count a stored batch's events in the metrics (sbt_site/metrics.py), by meter and outcome."""
    first = parsed[0].meter_id
    if all(event.meter_id == first for event in parsed):
        _outcomes_count(_meter_label(first), result)
    elif result.accepted and result.duplicates:
        _outcomes_count(SEVERAL_METERS, result)
    else:
        outcome = "accepted" if result.duplicates == 0 else "duplicate"
        for meter_id, count in Counter(event.meter_id for event in parsed).items():
            USAGE_EVENTS.labels(_meter_label(meter_id), outcome).inc(count)


def _outcomes_count(meter: str, result: IngestResult) -> None:
    if result.accepted:
        USAGE_EVENTS.labels(meter, "accepted").inc(result.accepted)
    if result.duplicates:
        USAGE_EVENTS.labels(meter, "duplicate").inc(result.duplicates)


def _refused_count(events, error: BaseException) -> None:
    """Count a refused batch's events in the metrics, by the error code its sender got (the
    exception's class for an error without one: bounded by the code, never by the input)."""
    reason = getattr(error, "code", None) or getattr(error, "default_code", None) or type(error).__name__
    USAGE_EVENTS_REFUSED.labels(str(reason)).inc(len(events) if isinstance(events, list) else 1)


# PostgreSQL's numeric_value_out_of_range: a rollup's total would pass what its column holds.
NUMERIC_OUT_OF_RANGE = "22003"


def _store(batches: list[list]) -> list[IngestResult]:
    """Store validated batches in one transaction. A total that would overflow the rollups'
    columns (values up to 10**29 each are valid, their sum may not be) is the sender's 422."""
    try:
        with transaction.atomic():
            return provider().ingest_many(batches)
    except DataError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != NUMERIC_OUT_OF_RANGE:
            raise
        raise InvalidInput(
            "These events would take a usage total past 10^29, the most the rollups hold; nothing was stored",
            code="usage_total_out_of_range",
        ) from None


@dataclass(frozen=True)
class Credentials:
    """A caller not yet authenticated, and how to authenticate it.

    ``authenticate`` takes the ``value`` of every Credentials of a group that share it, in one
    call, and returns per value the caller's client tenant id (None: a client bound to no
    tenant) or the exception its caller raises, nothing of its batch stored.
    """

    value: object
    authenticate: Callable[[list], list]


def _replace_broken_connection() -> None:
    """Close this thread's connection if the error broke it (PostgreSQL dropped it), so that
    the retries open a new one: a leader's dead connection is not its group's fault. Django
    would otherwise replace it only when the request ends, and every retry would fail on it."""
    if connection.connection is not None and connection.errors_occurred and not connection.is_usable():
        connection.close()


def _one_by_one(compute: Callable[[list], list], items: list) -> list:
    """``compute(items)``, one outcome per item; if it raises, ``compute`` on each item alone (on
    a new connection if the error broke this one), so that an item whose content makes it fail
    (an error nobody foresaw) fails alone and never the other callers of its group. The
    exception is the failing item's outcome."""
    try:
        return compute(items)
    except Exception:
        _replace_broken_connection()
        if len(items) == 1:
            raise
    outcomes = []
    for item in items:
        try:
            outcomes.extend(compute([item]))
        except Exception as exc:  # noqa: BLE001 (that caller's own error, raised in its thread)
            outcomes.append(exc)
    return outcomes


def _authenticate(batches: list[tuple[list, object]]) -> list:
    """Each batch's client tenant id, or the exception its caller raises: the Credentials of
    the group are checked with one call of each ``authenticate`` among them."""
    outcomes = [access for _, access in batches]
    waiting = defaultdict(list)
    for number, access in enumerate(outcomes):
        if isinstance(access, Credentials):
            waiting[access.authenticate].append(number)
    for authenticate, numbers in waiting.items():
        checked = _one_by_one(authenticate, [outcomes[number].value for number in numbers])
        for number, outcome in zip(numbers, checked, strict=True):
            outcomes[number] = outcome
    return outcomes


def _validate(batch: tuple[list, UUID | None], context) -> list | InvalidInput:
    try:
        return _parse_batch(batch[0], context)
    except InvalidInput as exc:
        return exc


def _ingest_group(batches: list[tuple[list, object]]) -> list:
    """GroupCommit's flush. ``batches`` are (events, client tenant id or Credentials):
    authenticate the callers, validate each batch on its own (a bad one fails alone), charge
    the tenants' quotas (a batch over one fails alone), store the valid ones in one
    transaction; per batch an IngestResult or the exception to raise (InvalidInput,
    TooManyRequests, or what its Credentials' authentication returned).

    One caller's request must never fail another's: every step that works on the whole group
    (authentication, the meter and tenant reads, the shared transaction) is retried batch by
    batch when it raises, so only the batch that caused the error gets it.
    """
    outcomes: list = _authenticate(batches)
    authorized = [number for number, outcome in enumerate(outcomes) if not isinstance(outcome, BaseException)]

    def validated(numbers: list[int]) -> list:
        contexts = _contexts([(batches[number][0], outcomes[number]) for number in numbers])
        return [_validate(batches[number], context) for number, context in zip(numbers, contexts, strict=True)]

    for number, outcome in zip(authorized, _one_by_one(validated, authorized), strict=True):
        outcomes[number] = outcome
    valid = [number for number, outcome in enumerate(outcomes) if isinstance(outcome, list)]
    for number, refused in zip(valid, usage_quota_charge([outcomes[number] for number in valid]), strict=True):
        if refused is not None:
            outcomes[number] = refused
    valid = [number for number, outcome in enumerate(outcomes) if isinstance(outcome, list)]
    parsed = {number: outcomes[number] for number in valid}
    if valid:
        stored = _one_by_one(_store, [outcomes[number] for number in valid])
        for number, result in zip(valid, stored, strict=True):
            outcomes[number] = result
    GROUP_COMMIT_BATCHES.observe(len(batches))
    for number, outcome in enumerate(outcomes):
        if isinstance(outcome, BaseException):
            _refused_count(batches[number][0], outcome)
        else:
            _stored_count(parsed[number], outcome)
    return outcomes


def _batch_check(events) -> None:
    try:
        _check_batch(events)
    except InvalidInput as exc:
        _refused_count(events, exc)
        raise


# Read when a group is taken, so that the setting can change (and tests can override it).
_group_commit = GroupCommit(_ingest_group, max_size=lambda: sbt_settings.USAGE_GROUP_COMMIT_MAX_GROUP_EVENTS)


def usage_events_groupable(events: list) -> bool:
    """Whether a (checked) batch may share a group commit: small enough, and not sent from
    inside a transaction."""
    return len(events) <= sbt_settings.USAGE_GROUP_COMMIT_MAX_EVENTS and not connection.in_atomic_block


def usage_events_ingest_shared(*, events: list, client_tenant_id: UUID | None = None) -> IngestResult:
    """``usage_events_ingest`` for request handlers: small batches sent concurrently to one
    process are stored in one shared transaction (metering/group_commit.py), each still
    validated on its own and durable on return. Larger batches, and callers already inside a
    transaction (whose uncommitted rows another thread could not see), ingest on their own."""
    _batch_check(events)
    if not usage_events_groupable(events):
        return usage_events_ingest(events=events, client_tenant_id=client_tenant_id)
    return _group_commit.submit((events, client_tenant_id), size=len(events))


def usage_events_ingest_authenticating(*, events: list, credentials: Credentials) -> IngestResult:
    """``usage_events_ingest_shared`` for a caller not yet authenticated: the group commit's
    leader authenticates it together with the other callers of its group, in one call of
    ``credentials.authenticate`` (for the API, one token query instead of one per request).
    Raises what that returned for a caller that does not pass, InvalidInput for a batch that
    does not; the batch must be groupable (``usage_events_groupable``)."""
    _batch_check(events)
    if not usage_events_groupable(events):
        raise ValueError("usage_events_ingest_authenticating takes groupable batches only")
    return _group_commit.submit((events, credentials), size=len(events))
