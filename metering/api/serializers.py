"""Shapes of the metering API (CONTRACT.md "Meters" and "Usage")."""

from decimal import Decimal

from rest_framework import serializers

from metering.interface import MeterInfo, UsageWindow
from metering.models import Meter
from metering.services.meters import API_NAME_MESSAGE, API_NAME_PATTERN
from metering.windows import INTERVALS

AGGREGATIONS = tuple(Meter.Aggregation.values)
# Amberflo's meterType names, accepted as aliases of ``aggregation``.
METER_TYPE_ALIASES = {
    "sum_of_all_usage": Meter.Aggregation.SUM,
    "sum": Meter.Aggregation.SUM,
    "count": Meter.Aggregation.COUNT,
    "max": Meter.Aggregation.MAX,
    "min": Meter.Aggregation.MIN,
    "unique_count": Meter.Aggregation.UNIQUE_COUNT,
    "latest": Meter.Aggregation.LATEST,
    "average": Meter.Aggregation.AVG,
    "avg": Meter.Aggregation.AVG,
}


def number(value: Decimal | None):
    """A Decimal as a JSON number: an integer when it is whole."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


class MeterInputSerializer(serializers.Serializer):
    # the service's rule and message, so the console refuses the same names with the same words
    meterApiName = serializers.RegexField(
        API_NAME_PATTERN, max_length=128, error_messages={"invalid": API_NAME_MESSAGE}
    )
    label = serializers.CharField(max_length=255, required=False, allow_blank=True)
    aggregation = serializers.CharField(required=False)
    meterType = serializers.CharField(required=False)
    valueProperty = serializers.CharField(max_length=128, required=False)
    uniqueProperty = serializers.CharField(max_length=128, required=False, allow_blank=True)
    dimensions = serializers.ListField(child=serializers.CharField(max_length=128), required=False, max_length=32)
    unit = serializers.CharField(max_length=64, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    active = serializers.BooleanField(required=False)

    def validate(self, attrs):
        raw = attrs.pop("aggregation", None) or attrs.pop("meterType", None)
        attrs.pop("meterType", None)
        if raw is not None:
            aggregation = raw.upper() if raw.upper() in AGGREGATIONS else METER_TYPE_ALIASES.get(raw.lower())
            if aggregation is None:
                raise serializers.ValidationError({"aggregation": [f"must be one of {', '.join(AGGREGATIONS)}"]})
            attrs["aggregation"] = aggregation
        elif not self.partial:
            raise serializers.ValidationError({"aggregation": ["This field is required."]})
        if len(set(attrs.get("dimensions", []))) != len(attrs.get("dimensions", [])):
            raise serializers.ValidationError({"dimensions": ["dimensions must be distinct"]})
        return attrs

    def changes(self) -> dict:
        """Validated fields under MeterSpec's names."""
        names = {
            "meterApiName": "api_name",
            "label": "label",
            "aggregation": "aggregation",
            "valueProperty": "value_property",
            "uniqueProperty": "unique_property",
            "dimensions": "dimensions",
            "unit": "unit",
            "description": "description",
            "active": "active",
        }
        return {names[key]: value for key, value in self.validated_data.items() if key in names}


def meter_data(meter: MeterInfo) -> dict:
    return {
        "meterId": str(meter.id),
        "meterApiName": meter.api_name,
        "label": meter.label,
        "aggregation": meter.aggregation,
        "valueProperty": meter.value_property,
        "uniqueProperty": meter.unique_property,
        "dimensions": list(meter.dimensions),
        "unit": meter.unit,
        "description": meter.description,
        "active": meter.active,
        "created": meter.created.isoformat(),
        "modified": meter.modified.isoformat(),
    }


class UsageQuerySerializer(serializers.Serializer):
    tenantId = serializers.UUIDField(required=False)
    startTimeInSeconds = serializers.IntegerField(required=False, min_value=0, max_value=253402300799)
    endTimeInSeconds = serializers.IntegerField(required=False, min_value=0, max_value=253402300799)
    timeGroupingInterval = serializers.ChoiceField(choices=INTERVALS, required=False, default="DAY")
    timeZone = serializers.CharField(required=False, default="UTC", max_length=64)
    groupBy = serializers.CharField(required=False, max_length=128)


class IngestionTimeRangeSerializer(serializers.Serializer):
    startTimeInSeconds = serializers.IntegerField(min_value=0, max_value=253402300799)
    endTimeInSeconds = serializers.IntegerField(min_value=0, max_value=253402300799)

    def validate(self, attrs):
        if attrs["startTimeInSeconds"] >= attrs["endTimeInSeconds"]:
            raise serializers.ValidationError("startTimeInSeconds must be before endTimeInSeconds")
        return attrs


class CancelSerializer(serializers.Serializer):
    eventIds = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, allow_empty=False, max_length=1000
    )
    meterApiName = serializers.CharField(required=False, max_length=128)
    tenantId = serializers.UUIDField(required=False)
    ingestionTimeRange = IngestionTimeRangeSerializer(required=False)

    def validate(self, attrs):
        if "eventIds" in attrs:
            return attrs
        missing = [name for name in ("meterApiName", "ingestionTimeRange") if name not in attrs]
        if missing:
            raise serializers.ValidationError(
                "Give eventIds, or meterApiName and ingestionTimeRange (and optionally tenantId)"
            )
        return attrs


def usage_window_data(window: UsageWindow, zone) -> dict:
    return {
        "tenantId": str(window.tenant_id),
        "windowStart": window.window_start.astimezone(zone).isoformat(),
        "windowEnd": window.window_end.astimezone(zone).isoformat(),
        "value": number(window.value),
        "eventCount": window.event_count,
        "group": window.group,
    }
