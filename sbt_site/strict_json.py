"""JSON as RFC 8259 defines it, nested at most MAX_DEPTH levels: how the control plane parses the
JSON that outsiders send (API request bodies, billing webhooks).

Python's ``json`` accepts NaN and Infinity, which PostgreSQL's json types refuse. It also
recurses once per nesting level, when parsing and again when a value is encoded to be stored: a
body nested 900 levels deep parses, then fails with RecursionError when its row is saved from a
deeper stack. No request shape nor provider event comes near MAX_DEPTH, so refusing what lies
deeper keeps both parsing and storing far from Python's recursion limit.

A document is parsed by orjson (in C, several times faster than ``json`` on a batch of usage
events) and, when orjson refuses it or might read it differently, again by ``json``, whose
answer and error message are the ones given: orjson refuses what ``json`` reads as infinity
(``1e400``) and lone surrogate escapes, and reads an integer beyond 64 bits as a float, so any
error and any run of 19 digits (an integer that may not fit) fall back. Everything orjson does
accept it reads as ``json`` does (sbt_site/tests/test_strict_json.py compares the two).
"""

import json

import orjson

MAX_DEPTH = 64
_TOO_DEEP = "nested too deeply"


class InvalidJSON(ValueError):
    """Not JSON the control plane accepts; the message says why."""


def _refuse_constant(name: str):
    raise InvalidJSON(f"{name} is not valid JSON")


# 19 digits in a row: maybe an integer orjson would turn into a float (it keeps 64 bits). Found
# by mapping every digit to "0" and anything else to " ", then one substring search: a third of
# a millisecond for a 1,000-event body, where the regular expression [0-9]{19} took 2 ms.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGITS = b"0" * 19


def loads(raw: bytes) -> object:
    """The value of the UTF-8 JSON document ``raw``; InvalidJSON when it is not one, uses NaN or
    Infinity, or nests arrays and objects deeper than MAX_DEPTH."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = _loads_stdlib(raw)
    else:
        if _LONG_DIGITS in raw.translate(_DIGITS_AS_ZEROS):
            value = _loads_stdlib(raw)
    # Counting brackets is C-speed, so the common small body skips the walk entirely.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _nested_deeper_than(value, MAX_DEPTH):
        raise InvalidJSON(_TOO_DEEP)
    return value


def _loads_stdlib(raw: bytes) -> object:
    """``loads`` by the standard library alone, without the depth check: the reference for
    what orjson reads, and the reader of what orjson refuses."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidJSON(_TOO_DEEP) from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InvalidJSON(str(exc)) from exc


def _nested_deeper_than(value: object, limit: int) -> bool:
    # Level by level, a loop rather than recursion (this is the check that must not overflow
    # the stack); a level is a plain list, which costs less per container than a stack of pairs.
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):
        if not level:
            return False
        level = [
            child
            for node in level
            for child in (node.values() if type(node) is dict else node)
            if type(child) is dict or type(child) is list
        ]
    return bool(level)
