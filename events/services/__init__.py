"""Writes of the event bus, one module per sub-domain (re-exported here, so callers import
``events.services`` as before): ``outbox`` (publish, dispatch, sweep, replays), ``deliveries``
(webhook deliveries), ``bus`` (publications to the external bus, EventBridge),
``subscriptions`` (webhook subscriptions), ``inbound`` (POST /events), ``common`` (the retry
state machine subscriber runs, deliveries and publications share)."""

from events.services.bus import bus_batch, bus_entry, bus_publications_send
from events.services.common import HANDLER_BACKOFF_MAX_SECONDS, _attempt_record, _backoff
from events.services.deliveries import (
    _deliveries_create,
    _delivery_enqueue,
    _due_deliveries,
    delivery_attempt,
    delivery_replay,
)
from events.services.inbound import _entry_authorize, events_receive
from events.services.outbox import (
    event_dispatch,
    event_publish,
    event_replay,
    events_sweep,
    handler_run_execute,
    handler_run_replay,
)
from events.services.subscriptions import (
    EVENT_TYPE_MAX_LENGTH,
    SECRET_MIN_LENGTH,
    TEST_EVENT_TYPE,
    _validated_secret,
    event_types_normalize,
    subscription_create,
    subscription_send_test_event,
    subscription_update,
    subscription_url_validate,
)

__all__ = [
    "EVENT_TYPE_MAX_LENGTH",
    "HANDLER_BACKOFF_MAX_SECONDS",
    "SECRET_MIN_LENGTH",
    "TEST_EVENT_TYPE",
    "_attempt_record",
    "_backoff",
    "_deliveries_create",
    "_delivery_enqueue",
    "_due_deliveries",
    "_entry_authorize",
    "_validated_secret",
    "bus_batch",
    "bus_entry",
    "bus_publications_send",
    "delivery_attempt",
    "delivery_replay",
    "event_dispatch",
    "event_publish",
    "event_replay",
    "event_types_normalize",
    "events_receive",
    "events_sweep",
    "handler_run_execute",
    "handler_run_replay",
    "subscription_create",
    "subscription_send_test_event",
    "subscription_update",
    "subscription_url_validate",
]
