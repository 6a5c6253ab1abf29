"""JSON as RFC 8259 defines it, nested at most MAX_DEPTH levels: how the control plane parses the
JSON that outsiders send (API request bodies, billing webhooks).

Python's ``json`` accepts NaN and Infinity, which PostgreSQL's json types refuse. It also
recurses once per nesting level, when parsing and again when a value is encoded to be stored: a
body nested 900 levels deep parses, then fails with RecursionError when its row is saved from a
deeper stack. No request shape nor provider event comes near MAX_DEPTH, so refusing what lies
deeper keeps both parsing and storing far from Python's recursion limit.
"""

import json

MAX_DEPTH = 64
_TOO_DEEP = "nested too deeply"


class InvalidJSON(ValueError):
    """Not JSON the control plane accepts; the message says why."""


def _refuse_constant(name: str):
    raise InvalidJSON(f"{name} is not valid JSON")


def loads(raw: bytes) -> object:
    """The value of the UTF-8 JSON document ``raw``; InvalidJSON when it is not one, uses NaN or
    Infinity, or nests arrays and objects deeper than MAX_DEPTH."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidJSON(_TOO_DEEP) from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InvalidJSON(str(exc)) from exc
    # Counting brackets is C-speed, so the common small body skips the walk entirely.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _nested_deeper_than(value, MAX_DEPTH):
        raise InvalidJSON(_TOO_DEEP)
    return value


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
