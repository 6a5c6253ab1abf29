from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers

from accounts.interface import AuthUser


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: DRF's CharField turns 5 into "5" (CONTRACT: strings)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class UserCreateInput(serializers.Serializer):
    userName = StrictCharField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = serializers.EmailField(max_length=254)
    userRole = StrictCharField(max_length=64)
    tenantId = serializers.UUIDField(required=False, allow_null=True, help_text="Binds the user to this tenant")


class UserUpdateInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254, required=False)
    userRole = StrictCharField(max_length=64, required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give userRole and/or email")
        return attrs


class UserOutput(serializers.Serializer):
    """The user object of CONTRACT.md; used for the OpenAPI document and to render AuthUser."""

    userName = serializers.CharField()
    email = serializers.CharField()
    userRole = serializers.CharField()
    status = serializers.CharField(help_text="CONFIRMED, or FORCE_CHANGE_PASSWORD until a password is set")
    enabled = serializers.BooleanField()
    tenantId = serializers.UUIDField(allow_null=True)
    created = serializers.DateTimeField()
    modified = serializers.DateTimeField()


def user_data(user: AuthUser) -> dict:
    return {
        "userName": user.user_name,
        "email": user.email,
        "userRole": user.user_role,
        "status": user.status,
        "enabled": user.enabled,
        "tenantId": str(user.tenant_id) if user.tenant_id is not None else None,
        "created": user.created.isoformat(),
        "modified": user.modified.isoformat(),
    }
