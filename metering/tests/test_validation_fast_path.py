"""The fast path of batch validation (``_PlainEvents``) parses exactly as the rules do
(``_parse_event``): the same event, or it declines and the rules name the errors."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metering.services import metering_customer_delete
from metering.services.validation import _contexts, _parse_batch, _parse_event, _PlainEvents
from sbt_site.errors import InvalidInput


@pytest.fixture
def world(make_tenant, make_meter):
    active, inactive, offboarded = make_tenant("active"), make_tenant("inactive", active=False), make_tenant("gone")
    metering_customer_delete(tenant_id=offboarded.pk)
    make_meter("sum", dimensions=["region", "tier"])
    make_meter("count", aggregation="COUNT", dimensions=["region"])
    make_meter("unique", aggregation="UNIQUE_COUNT", unique_property="user", dimensions=["region"])
    make_meter("archived", active=False)
    return [str(active.pk), str(inactive.pk), str(offboarded.pk)]


def strict(event) -> str:
    """An event compared field by field in its exact form (Decimal("1") == Decimal("1.0"))."""
    return repr(event)


NOW = datetime.now(UTC)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.sampled_from([0, 1, -0.0, 0.0, 1.0, 1.5, 1e300]),
    st.sampled_from(["1", " 2.5 ", "x", "", "NaN", "\x00", "eu", "EU", "1e3"]),
)  # fmt: skip


timestamps = st.sampled_from(
    [(NOW - timedelta(minutes=5)).isoformat(), (NOW - timedelta(days=400)).isoformat(),
     (NOW + timedelta(days=1)).isoformat(), "2026-13-01T00:00:00Z", int(NOW.timestamp() * 1000),
     NOW.strftime("%Y-%m-%d %H:%M:%S")]
)  # fmt: skip


def event_strategy(tenants: list[str]):
    return st.fixed_dictionaries(
        {},
        optional={
            "meterApiName": st.sampled_from(["sum", "count", "unique", "archived", "nope"]) | scalars,
            "tenantId": st.sampled_from([*tenants, "not-a-uuid", "00000000-0000-0000-0000-000000000000"]) | scalars,
            "meterValue": scalars,
            "timestamp": timestamps | scalars,
            "dimensions": st.dictionaries(st.sampled_from(["region", "tier", "user", "other"]), scalars, max_size=3)
            | scalars
            | st.just([]),
            "eventId": st.text(max_size=3) | st.just("x" * 256) | scalars,
            "user": scalars,
        },
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_fast_path_parses_every_event_as_the_rules_do(world, data):
    events = data.draw(st.lists(event_strategy(world) | scalars, min_size=1, max_size=8))
    client_tenant_id = data.draw(st.sampled_from([None, world[0]]))
    (context,) = _contexts([(events, None if client_tenant_id is None else UUID(client_tenant_id))])
    plain = _PlainEvents(context)
    for raw in events:  # in turn, so the later events meet what the earlier ones left remembered
        fast = plain.parse(raw)
        errors: list = []
        ruled = _parse_event(raw, 0, context, errors)
        if fast is not None:
            assert not errors
            assert strict(fast) == strict(ruled)


def test_values_and_dimensions_equal_as_keys_are_parsed_apart(world):
    """1, 1.0 and True are one dict key, as are 0 and -0.0: each is still parsed on its own."""
    tenant = world[0]
    base = {"meterApiName": "sum", "tenantId": tenant, "timestamp": NOW.isoformat()}
    events = [
        {**base, "meterValue": value, "dimensions": {"region": region}}
        for value, region in [(1, "1"), (1.0, 1), (0, 1.0), (-0.0, True), (1, "1"), (0, 0.0), (-0.0, -0.0)]
    ]
    (context,) = _contexts([(events, None)])
    parsed = _parse_batch(events, context)
    expected = [_parse_event(raw, index, context, []) for index, raw in enumerate(events)]
    assert [strict(event) for event in parsed] == [strict(event) for event in expected]
    values = ["1.000000000", "1.000000000", "0E-9", "-0E-9", "1.000000000", "0E-9", "-0E-9"]
    assert [str(event.value) for event in parsed] == values
    assert [event.dimensions["region"] for event in parsed] == ["1", "1", "1.0", "true", "1", "0.0", "-0.0"]


def test_a_batch_names_every_bad_event_as_before(world):
    tenant = world[0]
    good = {"meterApiName": "sum", "tenantId": tenant, "meterValue": 1}
    events = [good, {**good, "meterValue": "x"}, good | {"eventId": "a"}, {**good, "tenantId": world[2]}]
    (context,) = _contexts([(events, None)])
    with pytest.raises(InvalidInput) as refused:
        _parse_batch(events, context)
    assert refused.value.message == "2 of 4 events are invalid; nothing was stored"
    assert refused.value.detail == [
        {"loc": ["body", "events", 1, "meterValue"], "msg": "meterValue must be a number", "type": "value_error"},
        {
            "loc": ["body", "events", 3, "tenantId"],
            "msg": f"tenant {world[2]} is offboarded: its usage is refused",
            "type": "tenant_inactive",
        },
    ]
