"""Ids as clients and operators type them."""

from uuid import UUID


def parse_uuid(value) -> UUID | None:
    """``value`` as a UUID: a UUID as it is, else its text in any spelling ``uuid.UUID`` reads;
    None when there is none or it is not one, so a malformed id is "not found", never a 500."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None
