"""Shape checks of POST /events: one PutEvents-style entry, or ``{"entries": [...]}``."""

import math

from rest_framework import serializers

from events.catalogue import application_plane_may_send, canonical_name, is_control_plane_source, name_refusal
from sbt_site.conf import sbt_settings
from sbt_site.db import storable_text


def storable_json(value) -> None:
    """PostgreSQL's jsonb cannot hold NUL characters, lone surrogates or infinite numbers (JSON's
    1e999); refuse them here rather than fail on save. Iterative, like every walk over a body
    (sbt_site/strict_json.py bounds the nesting, but no walk should depend on that)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and not storable_text(item):
            raise serializers.ValidationError(
                "Text may not contain NUL (\\u0000) or unpaired surrogate characters.", code="invalid_text"
            )
        elif isinstance(item, float) and not math.isfinite(item):
            raise serializers.ValidationError("A number is out of range.", code="invalid_number")


def storable_name(text: str) -> None:
    if not storable_text(text):
        raise serializers.ValidationError("Unpaired surrogate characters are not allowed.", code="invalid_text")


def not_a_control_plane_event(name: str) -> None:
    if not application_plane_may_send(canonical_name(name)):
        raise serializers.ValidationError(
            f"{name} is published by the control plane itself; the application plane cannot send it.",
            code="control_plane_event",
        )


def an_event_type_name(name: str) -> None:
    """The rule subscriptions follow too (events.catalogue.name_refusal): no second sbt_aws_
    prefix, no near-miss of a standard name that a receiver could take for the real one."""
    refusal = name_refusal(name)
    if refusal is not None:
        raise serializers.ValidationError(refusal, code="event_type_name")


def not_the_control_plane_source(source: str) -> None:
    if is_control_plane_source(source):
        raise serializers.ValidationError(
            f"{source} is the control plane's source; the application plane cannot send as it.",
            code="control_plane_source",
        )


class EventEntryInput(serializers.Serializer):
    """``{"detail-type": "<name>", "source"?: "<source>", "detail": {...}}``."""

    def get_fields(self):
        # "detail-type" is not a Python identifier, so the fields are declared here.
        return {
            "detail-type": serializers.CharField(
                max_length=128, validators=[storable_name, not_a_control_plane_event, an_event_type_name]
            ),
            "source": serializers.CharField(
                max_length=128, required=False, validators=[storable_name, not_the_control_plane_source]
            ),
            "detail": serializers.DictField(validators=[storable_json]),
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
