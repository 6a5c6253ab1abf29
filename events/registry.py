"""In-process subscribers to the event bus, and the inbound handlers of POST /events.

An app subscribes in its ``handlers.py`` (imported from its ``AppConfig.ready``)::

    from events.registry import subscriber

    @subscriber("onboardingRequest", name="metering.handlers.create_metering_customer")
    def create_metering_customer(event):
        ...

Each subscriber has an explicit ``name``, as a Celery task has: its ``HandlerRun`` rows store that
name, and a pending or failed run finds its handler again by it. So the name must outlive the
function's Python location: moving or renaming the function keeps its runs as long as the name
stays. The subscribers that existed before names were explicit are named by their old
``module.qualname``, which is what their stored runs hold.

A handler receives the stored ``events.models.Event``. It runs in its own transaction after the
event's transaction committed; a failure is recorded and retried with backoff, without stopping
the other handlers. A handler must be idempotent: it can run again after a crash.
"""

from collections import defaultdict
from collections.abc import Callable

from accounts.boundary import scope_for_operation
from events.catalogue import CONTROL_PLANE_EVENTS, PUT_EVENTS_OPERATION, catalogue_operation

Handler = Callable[["events.models.Event"], None]  # noqa: F821

_subscribers: dict[str, dict[str, Handler]] = defaultdict(dict)


NAME_MAX_LENGTH = 255  # HandlerRun.handler


def subscriber(*detail_types: str, name: str):
    """Register the decorated function under ``name`` for each of ``detail_types`` (plain names).

    ``name`` is stored with each run and must be unique: registering another function under a
    name already taken raises ValueError (registering the same function again is a no-op).
    """
    if not name or len(name) > NAME_MAX_LENGTH:
        raise ValueError(f"A subscriber needs a name of 1 to {NAME_MAX_LENGTH} characters, not {name!r}")

    def register(handler: Handler) -> Handler:
        registered = handler_by_name(name)
        if registered is not None and registered is not handler:
            raise ValueError(
                f"A subscriber named {name!r} is already registered ({registered.__module__}.{registered.__qualname__})"
            )
        for detail_type in detail_types:
            _subscribers[detail_type][name] = handler
        return handler

    return register


def subscribers_for(detail_type: str) -> dict[str, Handler]:
    return dict(_subscribers.get(detail_type, {}))


def handler_by_name(name: str) -> Handler | None:
    for handlers in _subscribers.values():
        if name in handlers:
            return handlers[name]
    return None


# --- Inbound handlers -------------------------------------------------------------------------
# An event the application plane POSTs to /events may have to change the control plane *before*
# the request answers (provisionSuccess updates the registration; ingestUsage stores usage).
# Such a handler runs synchronously, inside the transaction that stores the inbound event; it
# receives the event's ``detail`` and the calling client's tenant binding, and rejects the
# whole request by raising a ``sbt_site.errors.ServiceError`` (nothing is stored then).
#
#     @inbound_handler("provisionSuccess", operation="updateTenantRegistration")
#     def apply_provision_success(detail: dict, *, client_tenant_id) -> None: ...
#
# Sending the event performs that IAuth operation: the tenant boundary (accounts.boundary) must
# allow it to the caller, besides putEvents, before anything of the request is stored.

InboundHandler = Callable[..., None]

_inbound_handlers: dict[str, dict[InboundHandler, str]] = defaultdict(dict)  # type -> handler -> operation


def inbound_handler(*detail_types: str, operation: str):
    """Register the decorated function to run synchronously for inbound ``detail_types``, each
    of which performs ``operation`` (an IAuth operation name of ``SBT["SCOPES"]``).

    For the catalogue's application-plane events the catalogue is the declaration
    (``events.catalogue.APPLICATION_PLANE_OPERATIONS``, which also covers the events no handler
    applies) and ``operation`` restates it where the handler is read: a disagreement raises
    ValueError at startup, so the two cannot drift apart. For a custom event type the handlers'
    ``operation`` is the declaration; all of a type's handlers must declare the same one.
    Control-plane events cannot be received, so they cannot have inbound handlers.
    """
    scope_for_operation(operation)  # ImproperlyConfigured for an operation without a scope

    def register(handler: InboundHandler) -> InboundHandler:
        for detail_type in detail_types:
            if detail_type in CONTROL_PLANE_EVENTS:
                raise ValueError(f"{detail_type} is published by the control plane: it has no inbound handlers")
            declared = _declared_operation(detail_type)
            if declared is not None and operation != declared:
                raise ValueError(
                    f"Inbound handler {handler.__module__}.{handler.__qualname__} declares {operation!r} for "
                    f"{detail_type}, which performs {declared!r}"
                )
            _inbound_handlers[detail_type].setdefault(handler, operation)
        return handler

    return register


def inbound_handlers_for(detail_type: str) -> list[InboundHandler]:
    return list(_inbound_handlers.get(detail_type, {}))


def inbound_handled_types() -> list[str]:
    """The event types that have inbound handlers."""
    return sorted(detail_type for detail_type, handlers in _inbound_handlers.items() if handlers)


def _declared_operation(detail_type: str) -> str | None:
    handlers = _inbound_handlers.get(detail_type)
    return catalogue_operation(detail_type) or (next(iter(handlers.values())) if handlers else None)


def inbound_operation(detail_type: str) -> str:
    """The operation sending an event of ``detail_type`` (plain name) performs: the catalogue's
    for an application-plane event, its handlers' for a custom type that has some, else
    putEvents (what sending any event is)."""
    return _declared_operation(detail_type) or PUT_EVENTS_OPERATION
