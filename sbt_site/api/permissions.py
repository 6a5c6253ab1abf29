"""Scope checks for API views.

A view names the IAuth *operation* each HTTP method (or viewset action) performs::

    class TenantRegistrationListView(APIView):
        operations = {"GET": "fetchAllTenantRegistrations", "POST": "createTenantRegistration"}

and ``HasOperationScope`` (the default permission class) requires the token to carry the scope
configured for that operation in ``SBT["SCOPES"]`` (CONTRACT.md: each route's scope is a
setting). A view that declares no operation for a method is refused, so a new route cannot go
out unprotected by accident; public views say so with ``permission_classes = [AllowAny]``.
"""

from uuid import UUID

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission

from accounts.tokens import token_tenant_id
from sbt_site.conf import sbt_settings


def operation_for(view, method: str) -> str | None:
    operations = getattr(view, "operations", None) or {}
    action = getattr(view, "action", None)
    if action and action in operations:
        return operations[action]
    return operations.get(method.upper())


def scope_for_operation(operation: str) -> str:
    scopes = sbt_settings.SCOPES
    if operation not in scopes:
        raise ImproperlyConfigured(f"No scope configured for operation {operation!r} in SBT['SCOPES']")
    return scopes[operation]


def required_scope(view, method: str) -> str | None:
    """The scope ``view`` needs for ``method``, or None when it declares none."""
    operation = operation_for(view, method)
    return scope_for_operation(operation) if operation else None


class HasOperationScope(BasePermission):
    def has_permission(self, request, view):
        token = request.auth
        if token is None:
            return False  # DRF answers 401, since an authenticator was tried and none succeeded
        if request.method == "OPTIONS" or not hasattr(view, request.method.lower()):
            return True  # OPTIONS is harmless; a method the view lacks gets its 405 next
        scope = required_scope(view, request.method)
        if scope is None:
            raise ImproperlyConfigured(
                f"{type(view).__name__} declares no operation for {request.method}: add it to `operations`"
            )
        return token.allow_scopes([scope])


def client_tenant_id(request) -> UUID | None:
    """The tenant a tenant-bound OAuth client (or a tenant user's token) is limited to, or None.

    It comes from the client's registration (its OAuth application) or the user the token was
    issued to, never from the request.
    """
    return token_tenant_id(request.auth) if request.auth is not None else None
