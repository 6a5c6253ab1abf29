"""In-process subscribers to the event bus.

An app subscribes in its ``handlers.py`` (imported from its ``AppConfig.ready``)::

    from events.registry import subscriber

    @subscriber("onboardingRequest")
    def create_metering_customer(event):
        ...

A handler receives the stored ``events.models.Event``. It runs in its own transaction after the
event's transaction committed; a failure is recorded and retried with backoff, without stopping
the other handlers. A handler must be idempotent: it can run again after a crash.
"""

from collections import defaultdict
from collections.abc import Callable

Handler = Callable[["events.models.Event"], None]  # noqa: F821

_subscribers: dict[str, dict[str, Handler]] = defaultdict(dict)


def handler_name(handler: Handler) -> str:
    return f"{handler.__module__}.{handler.__qualname__}"


def subscriber(*detail_types: str):
    """Register the decorated function for each of ``detail_types`` (plain names)."""

    def register(handler: Handler) -> Handler:
        for detail_type in detail_types:
            _subscribers[detail_type][handler_name(handler)] = handler
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
#     @inbound_handler("provisionSuccess")
#     def apply_provision_success(detail: dict, *, client_tenant_id) -> None: ...

InboundHandler = Callable[..., None]

_inbound_handlers: dict[str, list[InboundHandler]] = defaultdict(list)


def inbound_handler(*detail_types: str):
    """Register the decorated function to run synchronously for inbound ``detail_types``."""

    def register(handler: InboundHandler) -> InboundHandler:
        for detail_type in detail_types:
            if handler not in _inbound_handlers[detail_type]:
                _inbound_handlers[detail_type].append(handler)
        return handler

    return register


def inbound_handlers_for(detail_type: str) -> list[InboundHandler]:
    return list(_inbound_handlers.get(detail_type, []))
