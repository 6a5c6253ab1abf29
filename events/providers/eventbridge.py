"""Amazon EventBridge as the event bus (the only module importing boto3).

Entries go out as SBT's control plane puts them (sbt-aws resources/functions/tenant-registrations:
``EventBusName``, ``Source``, ``DetailType``, ``Detail``), so rules written for SBT match them.
The client is boto3's, configured the way boto3 is: credentials from its usual chain, the
region from ``region_name`` (settings.py passes ``AWS_REGION``) or ``AWS_DEFAULT_REGION``, the
endpoint from ``endpoint_url``, else ``AWS_ENDPOINT_URL_EVENTS`` (the name the service's API
prefix suggests, read here), else boto3's own ``AWS_ENDPOINT_URL_EVENTBRIDGE`` or
``AWS_ENDPOINT_URL``. It makes one attempt per call: retries are the
outbox's, with backoff, recorded per event (events/services/bus.py).
"""

import os
import threading

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from events.interface import BusEntry, BusOutcome, EventBusTransport

# EventBridge's limits on one PutEvents call (AWS docs, "Amazon EventBridge quotas").
MAX_ENTRIES = 10
MAX_BYTES = 256 * 1024

# What EventBridge answers for an entry that will never be accepted as it is; anything else
# (InternalFailure, ThrottlingException, a missing bus, no answer) may pass later.
PERMANENT_ERRORS = {"MalformedDetail", "InvalidArgument", "ValidationException"}


class EventBridgeTransport(EventBusTransport):
    max_batch_entries = MAX_ENTRIES
    max_batch_bytes = MAX_BYTES

    def __init__(
        self,
        *,
        bus_name: str,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
    ):
        self.bus_name = bus_name
        self.region_name = region_name or None
        self.endpoint_url = endpoint_url or None
        self.config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 1},
        )
        self._local = threading.local()

    def _client(self):
        # A boto3 client is thread-safe once made, but making one on the shared default session
        # is not: one per thread, each from its own session.
        client = getattr(self._local, "client", None)
        if client is None:
            client = boto3.session.Session().client(
                "events",
                region_name=self.region_name,
                endpoint_url=self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_EVENTS") or None,
                config=self.config,
            )
            self._local.client = client
        return client

    def entry_size(self, entry: BusEntry) -> int:
        """EventBridge's count (AWS docs, "Calculating PutEvents event entry size"): the UTF-8
        bytes of source, detail-type and detail (no time, no resources are sent)."""
        return sum(len(text.encode()) for text in (entry.source, entry.detail_type, entry.detail))

    def publish(self, entries: list[BusEntry]) -> list[BusOutcome]:
        request = [
            {
                "EventBusName": self.bus_name,
                "Source": entry.source,
                "DetailType": entry.detail_type,
                "Detail": entry.detail,
            }
            for entry in entries
        ]
        try:
            response = self._client().put_events(Entries=request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            message = f"PutEvents refused: {error.get('Code', 'error')}: {error.get('Message', '')}".strip()
            return [BusOutcome(key=entry.key, error=message) for entry in entries]
        except BotoCoreError as exc:
            return [BusOutcome(key=entry.key, error=f"PutEvents failed: {exc}") for entry in entries]
        results = response.get("Entries") or []
        outcomes = []
        # PutEvents answers one result per entry, in the order sent.
        for number, entry in enumerate(entries):
            result = results[number] if number < len(results) else {"ErrorCode": "NoResult"}
            code = result.get("ErrorCode")
            if code:
                message = f"{code}: {result.get('ErrorMessage', '')}".strip()
                outcomes.append(BusOutcome(key=entry.key, error=message, retriable=code not in PERMANENT_ERRORS))
            else:
                outcomes.append(BusOutcome(key=entry.key, bus_event_id=result.get("EventId", "")))
        return outcomes
