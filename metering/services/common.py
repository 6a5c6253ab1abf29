"""What every metering service shares: the configured provider, and the 422 a rule on wire
fields raises."""

from sbt_site.errors import InvalidInput
from sbt_site.providers import get_provider


def provider():
    return get_provider("metering")


def invalid_fields(errors: dict[str, str], *, location: str) -> InvalidInput:
    """InvalidInput naming request fields (``{"uniqueProperty": "message"}``), shaped as the API
    shapes a serializer's errors (CONTRACT.md), so a rule answers the same wherever it lives."""
    detail = [{"loc": [location, field], "msg": msg, "type": "invalid"} for field, msg in errors.items()]
    more = f" (and {len(detail) - 1} more)" if len(detail) > 1 else ""
    first_field, first_msg = next(iter(errors.items()))
    return InvalidInput(f"Request validation failed: {location}.{first_field}: {first_msg}{more}", detail=detail)
