"""The tenant boundary: the one place that decides whether a caller may perform an operation.

A caller is an OAuth client or a user acting through a token, with the token's scopes, maybe
bound to one tenant (its client's tenant, or its user's); or the operator (the admin and the
management commands), who may do anything the services allow. Operations are SBT's IAuth
operation names (``SBT["SCOPES"]`` maps each to the scope it needs).

A tenant-bound caller may perform only the operations listed in ``SBT["TENANT_OPERATIONS"]``,
and those only on its own tenant's objects (the selectors and services filter by its tenant, so
anything else is a 404). Everything else — shared objects (meters, webhook subscriptions), other
tenants, tenant records themselves, provisioning results — is the operator's and the unbound
integrations': fail closed, so an operation added later is refused to tenant-bound callers
until it is listed.

Every REST route asks through ``sbt_site.api.permissions.HasOperationScope``; every inbound
event type of POST /events through the operation it performs, besides putEvents
(``events.registry.inbound_operation``: the event catalogue's, or its inbound handler's).
"""

from dataclasses import dataclass
from uuid import UUID

from django.core.exceptions import ImproperlyConfigured

from sbt_site.conf import sbt_settings
from sbt_site.errors import Forbidden, NotFound


@dataclass(frozen=True)
class Caller:
    """Who is asking: ``scopes`` None is the operator (every scope), ``tenant_id`` the tenant a
    bound caller is limited to."""

    tenant_id: UUID | None = None
    scopes: frozenset[str] | None = None
    client_id: str | None = None

    @property
    def tenant_bound(self) -> bool:
        return self.tenant_id is not None


OPERATOR = Caller()


def scope_for_operation(operation: str) -> str:
    scopes = sbt_settings.SCOPES
    if operation not in scopes:
        raise ImproperlyConfigured(f"No scope configured for operation {operation!r} in SBT['SCOPES']")
    return scopes[operation]


def operation_refusal(caller: Caller, operation: str) -> str | None:
    """Why ``caller`` may not perform ``operation`` (for logs and the operator), or None."""
    scope = scope_for_operation(operation)
    if caller.scopes is not None and scope not in caller.scopes:
        return f"{operation} needs the scope {scope}"
    if caller.tenant_bound and operation not in sbt_settings.TENANT_OPERATIONS:
        return f"{operation} is not open to tenant-bound callers"
    return None


def operation_authorize(caller: Caller, operation: str) -> None:
    """Raise ``Forbidden`` (403, the contract's plain "Forbidden") unless ``caller`` may perform
    ``operation``. The reason is not told: a refused caller learns nothing it could probe with."""
    if operation_refusal(caller, operation) is not None:
        raise Forbidden("Forbidden")


def tenant_in_reach(
    *, bound: UUID | None, requested: UUID | None, not_found: str, code: str | None = None
) -> UUID | None:
    """The tenant a call acts on. An unbound caller acts on the tenant it names (or on none); a
    tenant-bound caller (``bound``) acts on its own, and naming another is ``NotFound(not_found)``
    (a 404, as for an id that does not exist, so ids do not leak)."""
    if bound is None:
        return requested
    if requested is not None and str(requested) != str(bound):
        raise NotFound(not_found, code=code)
    return bound


def tenant_visible(caller: Caller, tenant_id: UUID | str | None) -> bool:
    """Whether ``caller`` may see objects of ``tenant_id``: its own tenant, or any when unbound."""
    return not caller.tenant_bound or (tenant_id is not None and str(tenant_id) == str(caller.tenant_id))
