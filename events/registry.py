"""In-process subscribers to the event bus.

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
