"""How the console shows values an operator reads at a glance."""

from decimal import Decimal


def plain_number(value: Decimal | None) -> str:
    """A stored decimal as people write it: ``31``, ``0.5`` (not ``31.000000000``)."""
    if value is None:
        return "-"
    return f"{value.normalize():f}"
