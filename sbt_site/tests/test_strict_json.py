"""sbt_site.strict_json: RFC 8259 JSON, nested at most MAX_DEPTH levels."""

import pytest

from sbt_site.strict_json import MAX_DEPTH, InvalidJSON, loads


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
