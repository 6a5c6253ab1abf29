"""Scope checks for API views.

A view names the IAuth *operation* each HTTP method (or viewset action) performs::

    class TenantRegistrationListView(APIView):
        operations = {"GET": "fetchAllTenantRegistrations", "POST": "createTenantRegistration"}

and ``HasOperationScope`` (the default permission class) requires the token to carry the scope
configured for that operation in ``SBT["SCOPES"]`` (CONTRACT.md: each route's scope is a
setting), and asks the tenant boundary (accounts.boundary) whether the caller may perform it:
a tenant-bound caller only the operations of ``SBT["TENANT_OPERATIONS"]``. A view that declares
no operation for a method is refused, so a new route cannot go out unprotected by accident;
public views say so with ``permission_classes = [AllowAny]``.
"""

from uuid import UUID

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission

from accounts.boundary import Caller, operation_refusal, scope_for_operation
from accounts.tokens import token_tenant_id

__all__ = ["HasOperationScope", "caller", "client_tenant_id", "required_scope", "scope_for_operation"]


def operation_for(view, method: str) -> str | None:
    operations = getattr(view, "operations", None) or {}
    action = getattr(view, "action", None)
    if action and action in operations:
        return operations[action]
    return operations.get(method.upper())


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
        operation = operation_for(view, request.method)
        if operation is None:
            raise ImproperlyConfigured(
                f"{type(view).__name__} declares no operation for {request.method}: add it to `operations`"
            )
        return operation_refusal(caller(request), operation) is None


def caller(request) -> Caller:
    """The caller behind an authenticated API request, for the tenant boundary (accounts.boundary)."""
    token = request.auth
    return Caller(
        tenant_id=token_tenant_id(token),
        scopes=frozenset(token.scope.split()),
        client_id=token.application.client_id if token.application is not None else None,
    )


def client_tenant_id(request) -> UUID | None:
    """The tenant a tenant-bound OAuth client (or a tenant user's token) is limited to, or None.

    It comes from the client's registration (its OAuth application) or the user the token was
    issued to, never from the request.
    """
    return token_tenant_id(request.auth) if request.auth is not None else None
