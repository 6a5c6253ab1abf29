"""parse_uuid: every id a client or an operator types is a UUID or "no such id", never an exception."""

from uuid import UUID

import pytest

from sbt_site.ids import parse_uuid

ID = UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize(
    "value",
    [ID, str(ID), str(ID).upper(), ID.hex, f"{{{ID}}}", f"urn:uuid:{ID}"],
)
def test_a_uuid_in_any_spelling_is_that_uuid(value):
    assert parse_uuid(value) == ID


@pytest.mark.parametrize("value", [None, "", "acme", "1234", 42, b"\x00", object(), str(ID) + "0"])
def test_anything_else_is_none(value):
    assert parse_uuid(value) is None
