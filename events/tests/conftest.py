"""Fixtures of the events tests: a real HTTP receiver on loopback that plays the application plane."""

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    headers: dict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """What a webhook receiver got, and how it answers.

    ``answers`` is consumed one per request (an int is a status code, ``"hang"`` never answers
    until the test ends); when empty, it answers ``default``. ``on_request(received)`` runs for
    every request before the answer, e.g. to POST an event back to the control plane.
    """

    url: str = ""
    answers: list = field(default_factory=list)
    default: int = 200
    requests: list[Received] = field(default_factory=list)
    on_request: object = None
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_answer(self):
        with self.lock:
            return self.answers.pop(0) if self.answers else self.default


def verify_signature(secret: str, headers: dict, body: bytes) -> bool:
    """What docs/events.md tells a receiver to do, written independently of events.crypto."""
    event_id = headers["X-SBT-Event-Id"]
    timestamp = headers["X-SBT-Timestamp"]
    expected = hmac.new(secret.encode(), f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-SBT-Signature"], f"v1={expected}")


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            received = Received(headers=dict(self.headers.items()), body=self.rfile.read(length))
            with state.lock:
                state.requests.append(received)
            answer = state.next_answer()
            if answer == "hang":
                state.release.wait(30)
                return
            if state.on_request is not None:
                state.on_request(received)
            self.send_response(answer)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if answer < 300 else b"receiver is unhappy")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def fast_retries(settings):
    """Tiny timeouts and backoff so retries and dead-letters happen within a test."""
    settings.SBT = {
        **getattr(settings, "SBT", {}),
        "EVENT_DELIVERY_CONNECT_TIMEOUT_SECONDS": 0.5,
        "EVENT_DELIVERY_READ_TIMEOUT_SECONDS": 0.3,
        "EVENT_DELIVERY_BACKOFF_SECONDS": 0.01,
        "EVENT_DELIVERY_MAX_ATTEMPTS": 3,
    }
