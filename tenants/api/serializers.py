"""Request bodies of the tenants API: only their outer shape is checked here; the keys inside
``tenantData`` / ``tenantRegistrationData`` are free-form and checked by tenants.wire."""

from rest_framework import serializers

from sbt_site.api.exceptions import RequestValidationError


class StrictSerializer(serializers.Serializer):
    """Refuses unknown top-level keys: a typo such as ``tenantdata`` must not be silently dropped."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                expected = ", ".join(self.fields)
                raise RequestValidationError({key: [f"Unknown field; expected {expected}"] for key in unknown})
        return super().to_internal_value(data)


class TenantRegistrationCreateInput(StrictSerializer):
    tenantData = serializers.DictField(required=False, help_text="tenantName, email, tier, prices, any other key")
    tenantRegistrationData = serializers.DictField(required=False, help_text="free-form keys of the registration")


class TenantRegistrationUpdateInput(StrictSerializer):
    tenantData = serializers.DictField(required=False, help_text="keys merged into the tenant")
    tenantRegistrationData = serializers.DictField(
        required=False, help_text="keys merged into the registration (registrationStatus follows the status flow)"
    )
    # SBT's ScriptJob failure output, which SBT's API destination PATCHes as is.
    tenantStatus = serializers.JSONField(
        required=False, help_text='a failure report, e.g. "Failed to provision tenant.": status failed, this reason'
    )


def validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def validated_object(data) -> dict:
    if not isinstance(data, dict):
        raise RequestValidationError({"non_field_errors": ["The body must be a JSON object"]})
    return data
