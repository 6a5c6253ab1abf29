"""Inbound events (POST /events): authorized through the tenant boundary, stored and applied
by the inbound handlers in one transaction, all or nothing."""

from django.db import transaction

from accounts.boundary import Caller, operation_authorize, tenant_visible
from events.catalogue import (
    LEGACY_APPLICATION_PLANE_OPERATIONS,
    PUT_EVENTS_OPERATION,
    application_plane_source,
    canonical_name,
)
from events.models import Event
from events.registry import inbound_handlers_for, inbound_operation
from events.services.outbox import event_publish
from sbt_site.errors import Forbidden, InvalidInput, ServiceError
from sbt_site.ids import parse_uuid
from tenants.selectors import tenant_get


@transaction.atomic
def events_receive(*, entries: list[dict], caller: Caller) -> list[Event]:
    """Store events the application plane sent and apply them, all or nothing.

    Each entry is ``{"detail-type", "source"?, "detail"}``, already checked by
    ``events.api.serializers.EventEntryInput`` (shape, and no control-plane name or source).
    First every entry is authorized (``_entry_authorize``): one refusal is a ``Forbidden`` and
    nothing is stored. Then inbound handlers (``events.registry.inbound_handler``) run here,
    synchronously, with the caller's tenant binding; a ServiceError from one rolls the whole
    batch back. The events name their sender (``caller.client_id``), and the in-process
    subscribers run after commit, as for any event.
    """
    for index, entry in enumerate(entries):
        _entry_authorize(caller, entry)
        try:
            _user_event_check(caller, entry)
        except ServiceError as exc:
            exc.entry_index = index
            raise
    events = []
    for index, entry in enumerate(entries):
        detail_type = canonical_name(entry["detail-type"])
        event = event_publish(
            detail_type=detail_type,
            detail=entry["detail"],
            source=entry.get("source") or application_plane_source(),
            direction=Event.Direction.INBOUND,
            sender=caller.client_id or "",
        )
        try:
            for handler in inbound_handlers_for(detail_type):
                handler(entry["detail"], client_tenant_id=caller.tenant_id)
        except ServiceError as exc:
            exc.entry_index = index  # lets the API say which entry of a batch was refused
            raise
        events.append(event)
    return events


def _entry_authorize(caller: Caller, entry: dict) -> None:
    """Raise ``Forbidden`` unless ``caller`` may send ``entry``: putEvents, and the operation its
    type performs (``events.registry.inbound_operation``: provisioning results change
    registrations, ingestUsage stores usage). A tenant-bound caller may moreover speak only of
    its own tenant: a ``detail.tenantId`` naming another (or no valid) tenant is refused, so
    subscribers never receive one tenant's event about another."""
    operation_authorize(caller, PUT_EVENTS_OPERATION)
    operation_authorize(caller, inbound_operation(canonical_name(entry["detail-type"])))
    detail = entry["detail"]
    if isinstance(detail, dict) and "tenantId" in detail and not tenant_visible(caller, detail["tenantId"]):
        raise Forbidden("Forbidden")


def _user_event_check(caller: Caller, entry: dict) -> None:
    """A tenantUserCreated / tenantUserDeleted the application plane sends (legacy style,
    events.catalogue.LEGACY_APPLICATION_PLANE_OPERATIONS) is what billing's user subscribers act
    on after commit: refuse here what they could never apply, so that a client's mistake is its
    422 or 404 rather than a subscriber retried until dead. It names a tenant the caller can
    see (``tenantId``) and the user (``userName``)."""
    detail_type = canonical_name(entry["detail-type"])
    if detail_type not in LEGACY_APPLICATION_PLANE_OPERATIONS:
        return
    detail = entry["detail"]
    for field in ("tenantId", "userName"):
        value = detail.get(field)
        if not isinstance(value, str) or not value.strip() or (field == "tenantId" and parse_uuid(value) is None):
            message = f"{detail_type} needs detail.{field}" + (" (a tenant id)" if field == "tenantId" else "")
            raise InvalidInput(message, detail=[{"loc": ["detail", field], "msg": message, "type": "missing"}])
    tenant_get(tenant_id=detail["tenantId"], client_tenant_id=caller.tenant_id)
