"""The wire format of outbound deliveries and the one HTTP call that sends them."""

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import parse_url
from urllib3.util.connection import create_connection

from events import egress
from events.catalogue import wire_name
from events.crypto import signature
from events.models import Event
from sbt_site import logcontext
from sbt_site.conf import sbt_settings

HEADER_EVENT_ID = "X-SBT-Event-Id"
HEADER_TIMESTAMP = "X-SBT-Timestamp"
HEADER_SIGNATURE = "X-SBT-Signature"
HEADER_DELIVERY_ID = "X-SBT-Delivery-Id"

# Enough of a failing receiver's answer to tell the operator what it said.
ERROR_BODY_LIMIT = 2000


def event_body(event: Event) -> bytes:
    """The event as EventBridge shapes it: id, detail-type, source, time, detail; and, for an
    event the application plane sent in, ``sender``: the OAuth client that sent it. ``source``
    is whatever that client said, so a receiver relayed such an event learns from ``sender``
    (covered by the signature, as the whole body) who actually spoke; the control plane's own
    events have no ``sender``."""
    payload = {
        "id": str(event.id),
        "detail-type": wire_name(event.detail_type),
        "source": event.source,
        "time": event.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": event.detail,
    }
    if event.direction == Event.Direction.INBOUND:
        payload["sender"] = {"clientId": event.sender}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Outcome:
    ok: bool
    status_code: int | None
    error: str


class _Deadline:
    """A hard cap on one delivery attempt: ``requests``' read timeout is per read, so a receiver
    that drips its answer (a byte every few seconds) would hold the worker for ever. When the
    deadline passes, every socket of the attempt is shut down, which ends any blocked read."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _CheckedAdapter(HTTPAdapter):
    """An adapter that sends only where the egress policy allows, and never lets a slow
    receiver outlive ``deadline``.

    ``send`` resolves the request's host once and checks every address (events.egress); the
    connections then connect to those addresses, not to the name, while TLS (SNI, certificate
    check) and the Host header still use the name. A second lookup could answer differently
    (DNS rebinding) and reach an address nobody checked. Each connected socket is handed to
    ``deadline``.
    """

    def __init__(self, deadline: _Deadline):
        self.deadline = deadline
        self.addresses: list[str] = []
        super().__init__(max_retries=0)

    def send(self, request, **kwargs):
        url = parse_url(request.url)
        self.addresses = egress.resolve_checked(url.host, url.port or egress.DEFAULT_PORTS[url.scheme])
        # A proxy would resolve the name itself, outside the policy: always connect directly.
        kwargs["proxies"] = {}
        return super().send(request, **kwargs)

    def _connect(self, connection: HTTPConnection) -> socket.socket:
        """Connect ``connection`` to the first checked address that answers (urllib3's
        HTTPConnection._new_conn, with the checked addresses in place of a lookup)."""
        error: OSError | None = None
        for address in self.addresses:
            try:
                sock = create_connection(
                    (address, connection.port),
                    connection.timeout,
                    source_address=connection.source_address,
                    socket_options=connection.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    connection, f"Connection to {connection.host} ({address}) timed out: {exc}"
                ) from exc
            except OSError as exc:
                error = exc
                continue
            return sock
        raise NewConnectionError(connection, f"Failed to establish a new connection: {error}")

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        adapter = self

        # The socket is watched once connected: for https, self.sock is then the TLS socket (the
        # plain one _new_conn returns is detached when wrapped, and shutting it down does nothing).
        class CheckedHTTPConnection(HTTPConnection):
            def _new_conn(self):
                return adapter._connect(self)

            def connect(self):
                super().connect()
                adapter.deadline.watch(self.sock)

        class CheckedHTTPSConnection(HTTPSConnection):
            def _new_conn(self):
                return adapter._connect(self)

            def connect(self):
                super().connect()
                adapter.deadline.watch(self.sock)

        class CheckedHTTPPool(HTTPConnectionPool):
            ConnectionCls = CheckedHTTPConnection

        class CheckedHTTPSPool(HTTPSConnectionPool):
            ConnectionCls = CheckedHTTPSConnection

        self.poolmanager.pool_classes_by_scheme = {"http": CheckedHTTPPool, "https": CheckedHTTPSPool}


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
    # The request that caused the event, carried through the outbox's tasks (sbt_site/tasklog.py),
    # so the receiver's logs can be joined with ours.
    request_id = logcontext.get_field("request_id")
    if request_id:
        headers[logcontext.HEADER] = request_id
    timeout = (sbt_settings.EVENT_DELIVERY_CONNECT_TIMEOUT_SECONDS, sbt_settings.EVENT_DELIVERY_READ_TIMEOUT_SECONDS)
    total = sbt_settings.EVENT_DELIVERY_TOTAL_TIMEOUT_SECONDS
    with _Deadline(total) as deadline, requests.Session() as session:
        adapter = _CheckedAdapter(deadline)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        try:
            # No redirects: a signed event must reach the URL the operator configured, nothing else.
            # stream=True: only the first bytes of the answer are read, however much it sends.
            with session.post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
            ) as response:
                if 200 <= response.status_code < 300:
                    return Outcome(ok=True, status_code=response.status_code, error="")
                text = response.raw.read(ERROR_BODY_LIMIT, decode_content=True).decode("utf-8", "replace")
                if deadline.expired:
                    raise requests.Timeout("total deadline passed while reading the answer")
        except (egress.DestinationRefused, egress.DestinationUnresolved) as exc:
            # Nothing was sent: no connection was opened.
            return Outcome(ok=False, status_code=None, error=str(exc))
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if deadline.expired:
                return Outcome(ok=False, status_code=None, error=f"No complete answer within {total}s (total): {exc}")
            if isinstance(exc, requests.Timeout):
                return Outcome(
                    ok=False,
                    status_code=None,
                    error=f"No answer within {timeout[0]}s (connect) / {timeout[1]}s (read): {exc}",
                )
            return Outcome(ok=False, status_code=None, error=f"Request failed: {exc}")
    return Outcome(ok=False, status_code=response.status_code, error=f"HTTP {response.status_code}: {text}")
