"""sbt_site.strict_json: RFC 8259 JSON, nested at most MAX_DEPTH levels."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbt_site.strict_json import MAX_DEPTH, InvalidJSON, _loads_stdlib, loads


def nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def test_nesting_up_to_the_limit_is_parsed():
    value = loads(nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH - 1):
        (value,) = value
    assert value == []


@pytest.mark.parametrize("raw", [nested(MAX_DEPTH + 1), b'{"a": ' + nested(MAX_DEPTH) + b"}", nested(200_000)])
def test_deeper_nesting_is_refused(raw):
    with pytest.raises(InvalidJSON, match="nested too deeply"):
        loads(raw)


def test_brackets_inside_strings_are_not_nesting():
    text = "[" * (MAX_DEPTH * 2)
    assert loads(f'{{"a": "{text}", "b": [["{text}"]]}}'.encode()) == {"a": text, "b": [[text]]}
    assert loads(f'"{text}"'.encode()) == text


@pytest.mark.parametrize("raw", [b"NaN", b"[Infinity]", b'{"a": -Infinity}', b"\xff", b"{", b""])
def test_what_is_not_rfc_8259_json_is_refused(raw):
    with pytest.raises(InvalidJSON):
        loads(raw)


def stdlib_outcome(raw: bytes):
    """What the standard library alone makes of ``raw``: the reference orjson must not change."""
    try:
        value = _loads_stdlib(raw)
    except InvalidJSON as exc:
        return ("refused", str(exc))
    return ("value", repr(value))


def outcome(raw: bytes):
    try:
        return ("value", repr(loads(raw)))
    except InvalidJSON as exc:
        return ("refused", str(exc))


@pytest.mark.parametrize(
    "raw",
    [
        b"123456789012345678901234567890",  # past 64 bits: orjson would read a float
        b"-9223372036854775809",
        b'{"meterValue": 18446744073709551616}',
        b"1e400",  # the standard library reads infinity, orjson refuses
        b'"\\ud800"',  # a lone surrogate escape: read by the standard library, refused by orjson
        b'{"a": 1, "b": 2, "a": 3}',  # the last duplicate wins, in the first one's place
        b"\xef\xbb\xbf{}",
        b"[1, 2,]",
        b"",
        b'{"a": NaN}',
        b"-0",
        b"-0.0",
        b"0.1",
        b"4.9e-324",
    ],
)
def test_orjson_reads_what_the_standard_library_reads_and_refuses_with_its_message(raw):
    assert outcome(raw) == stdlib_outcome(raw)


json_texts = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20,
).map(lambda value: json.dumps(value).encode())


@settings(max_examples=500, deadline=None)
@given(raw=json_texts | st.binary(max_size=20) | json_texts.map(lambda raw: raw[: len(raw) // 2]))
def test_any_document_reads_as_the_standard_library_reads_it(raw):
    assert outcome(raw) == stdlib_outcome(raw)
