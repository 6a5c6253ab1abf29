"""The wire format of outbound deliveries and the one HTTP call that sends them."""

import json
import time
from dataclasses import dataclass
from datetime import UTC

import requests
import urllib3

from events.catalogue import wire_name
from events.crypto import signature
from events.models import Event
from sbt_site.conf import sbt_settings

HEADER_EVENT_ID = "X-SBT-Event-Id"
HEADER_TIMESTAMP = "X-SBT-Timestamp"
HEADER_SIGNATURE = "X-SBT-Signature"
HEADER_DELIVERY_ID = "X-SBT-Delivery-Id"

# Enough of a failing receiver's answer to tell the operator what it said.
ERROR_BODY_LIMIT = 2000


def event_body(event: Event) -> bytes:
    """The event as EventBridge shapes it: id, detail-type, source, time, detail."""
    payload = {
        "id": str(event.id),
        "detail-type": wire_name(event.detail_type),
        "source": event.source,
        "time": event.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": event.detail,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Outcome:
    ok: bool
    status_code: int | None
    error: str


def post_event(*, url: str, event: Event, secret: str, delivery_id: str) -> Outcome:
    """POST one signed event; any 2xx is a success, anything else (or no answer) a failure."""
    body = event_body(event)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "sbt-control-plane-webhooks/1",
        HEADER_EVENT_ID: str(event.id),
        HEADER_DELIVERY_ID: delivery_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_SIGNATURE: signature(secret=secret, event_id=str(event.id), timestamp=timestamp, body=body),
    }
    timeout = (sbt_settings.EVENT_DELIVERY_CONNECT_TIMEOUT_SECONDS, sbt_settings.EVENT_DELIVERY_READ_TIMEOUT_SECONDS)
    try:
        # No redirects: a signed event must reach the URL the operator configured, nothing else.
        # stream=True: only the first bytes of the answer are read, however much it sends.
        with requests.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
        ) as response:
            if 200 <= response.status_code < 300:
                return Outcome(ok=True, status_code=response.status_code, error="")
            text = response.raw.read(ERROR_BODY_LIMIT, decode_content=True).decode("utf-8", "replace")
    except requests.Timeout as exc:
        return Outcome(
            ok=False, status_code=None, error=f"No answer within {timeout[0]}s (connect) / {timeout[1]}s (read): {exc}"
        )
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        return Outcome(ok=False, status_code=None, error=f"Request failed: {exc}")
    return Outcome(ok=False, status_code=response.status_code, error=f"HTTP {response.status_code}: {text}")
