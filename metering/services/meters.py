"""Meters: create, update, delete. The rules a meter obeys live here, so the API, the admin and
the commands refuse the same meters with the same error."""

import dataclasses
import re
from uuid import UUID

from django.db import transaction

from metering.interface import MeterInfo, MeterSpec
from metering.models import Meter, UsageEvent
from metering.services.common import invalid_fields, provider
from sbt_site.errors import Conflict, NotFound

FROZEN_WHEN_IN_USE = ("aggregation", "value_property", "unique_property")
# A meter's API name travels in usage events, URLs and billing prices (metricName): no spaces.
API_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
API_NAME_MESSAGE = (
    "meterApiName must start with a letter or digit and hold only letters, digits and _ . : - "
    "(at most 128 characters), e.g. seats_used"
)


def meter_check(*, spec: MeterSpec, meter_id: UUID | None = None) -> None:
    """Raise what ``meter_create`` (no ``meter_id``) or ``meter_update`` of that meter would
    raise for ``spec``, storing nothing: for a form that shows the error next to the fields
    (the admin's). The services check again, under the meter's lock."""
    _spec_check(spec)
    if meter_id is None:
        _name_check(spec, current_name=None)
        return
    current = provider().fetch_meter(meter_id)
    _in_use_check(spec, current)
    _name_check(spec, current_name=current.api_name)


def _spec_check(spec: MeterSpec) -> None:
    if not re.fullmatch(API_NAME_PATTERN, spec.api_name or ""):
        raise invalid_fields({"meterApiName": API_NAME_MESSAGE}, location="body")
    if spec.aggregation == Meter.Aggregation.UNIQUE_COUNT and not spec.unique_property:
        raise invalid_fields({"uniqueProperty": "uniqueProperty is required for UNIQUE_COUNT"}, location="body")


def _name_check(spec: MeterSpec, *, current_name: str | None) -> None:
    if spec.api_name != current_name and Meter.objects.filter(api_name=spec.api_name).exists():
        raise Conflict(f"A meter named {spec.api_name} already exists.", code="meter_exists")


def _in_use_check(spec: MeterSpec, current: MeterInfo) -> None:
    changed = [name for name in FROZEN_WHEN_IN_USE if getattr(spec, name) != getattr(current, name)]
    if changed and UsageEvent.objects.filter(meter_id=current.id).exists():
        raise Conflict(
            f"Cannot change {', '.join(changed)} of meter {current.api_name}: it has usage events. "
            "Create a new meter instead.",
            code="meter_in_use",
        )


def meter_create(*, spec: MeterSpec) -> MeterInfo:
    """Create a meter; its label defaults to its API name."""
    if not spec.label:
        spec = dataclasses.replace(spec, label=spec.api_name)
    _spec_check(spec)
    with transaction.atomic():
        _name_check(spec, current_name=None)
        return provider().create_meter(spec)


def meter_update(*, meter_id: UUID, changes: dict) -> MeterInfo:
    """Apply ``changes`` (MeterSpec field names). How events are read (aggregation, value and
    unique properties) cannot change once the meter has events: their rollups depend on it."""
    with transaction.atomic():
        meter = Meter.objects.select_for_update().filter(pk=meter_id).first()
        if meter is None:
            raise NotFound(f"Meter not found for id {meter_id}", code="meter_not_found")
        current = provider().fetch_meter(meter_id)
        spec = MeterSpec(
            **{
                name: changes.get(name, getattr(current, name))
                for name in MeterSpec.__dataclass_fields__
                if name != "dimensions"
            },
            dimensions=tuple(changes.get("dimensions", current.dimensions)),
        )
        _spec_check(spec)
        _in_use_check(spec, current)
        _name_check(spec, current_name=current.api_name)
        return provider().update_meter(meter_id, spec)


def meter_archive(*, meter_id: UUID) -> MeterInfo:
    """Archive a meter (PUT {"active": false}): it refuses new usage, keeps its events and
    rollups, and may then be deleted."""
    return meter_update(meter_id=meter_id, changes={"active": False})


def meter_delete(*, meter_id: UUID) -> None:
    with transaction.atomic():
        meter = Meter.objects.select_for_update().filter(pk=meter_id).first()
        if meter is None:
            raise NotFound(f"Meter not found for id {meter_id}", code="meter_not_found")
        if meter.active and UsageEvent.objects.filter(meter_id=meter_id).exists():
            raise Conflict(
                f"Meter {meter.api_name} has usage events: archive it first (PUT with active=false).",
                code="meter_in_use",
            )
        provider().delete_meter(meter_id)
