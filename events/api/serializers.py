"""Shape checks of POST /events: one PutEvents-style entry, or ``{"entries": [...]}``."""

from rest_framework import serializers

from sbt_site.conf import sbt_settings


class EventEntryInput(serializers.Serializer):
    """``{"detail-type": "<name>", "source"?: "<source>", "detail": {...}}``."""

    def get_fields(self):
        # "detail-type" is not a Python identifier, so the fields are declared here.
        return {
            "detail-type": serializers.CharField(max_length=128),
            "source": serializers.CharField(max_length=128, required=False),
            "detail": serializers.DictField(),
        }


class EventEntriesInput(serializers.Serializer):
    entries = serializers.ListField(child=EventEntryInput(), allow_empty=False)

    def validate_entries(self, entries):
        limit = sbt_settings.EVENT_INBOUND_MAX_ENTRIES
        if len(entries) > limit:
            raise serializers.ValidationError(
                f"At most {limit} entries per request, got {len(entries)}: split the batch.", code="max_length"
            )
        return entries
