"""OpenAPI generation: each operation lists the OAuth2 scope it needs."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework.permissions import AllowAny

from sbt_site.api.permissions import required_scope
from sbt_site.conf import SCOPE_DESCRIPTIONS


class ScopedAutoSchema(AutoSchema):
    def get_auth(self):
        if any(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            return []
        declared = super().get_auth()  # also registers the security scheme in the document
        scope = required_scope(self.view, self.method)
        return [{"oauth2": [scope]}] if scope else declared

    def get_description(self):
        description = super().get_description() or ""
        if any(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            return description
        scope = required_scope(self.view, self.method)
        return f"{description}\n\nRequired scope: `{scope}`".strip()


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "sbt_site.api.authentication.BearerTokenAuthentication"
    name = "oauth2"

    def get_security_definition(self, auto_schema):
        return {
            "type": "oauth2",
            "flows": {
                "clientCredentials": {"tokenUrl": "/o/token/", "scopes": SCOPE_DESCRIPTIONS},
                "authorizationCode": {
                    "authorizationUrl": "/o/authorize/",
                    "tokenUrl": "/o/token/",
                    "scopes": SCOPE_DESCRIPTIONS,
                },
            },
        }
