"""Fixtures of the events tests: a real HTTP receiver on loopback that plays the application plane,
and the processes (web, worker, beat) of the broker tests."""

import hashlib
import hmac
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from events.tests.subprocesses import Processes, process_env


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
    until the test ends, ``"drip-headers"``/``"drip-body"`` send a 500 answer's status line and
    headers, or its body, one byte every ``drip_seconds`` until the test ends); when empty, it
    answers ``default``. ``on_request(received)`` runs for
    every request before the answer, e.g. to POST an event back to the control plane.
    """

    url: str = ""
    answers: list = field(default_factory=list)
    default: int = 200
    requests: list[Received] = field(default_factory=list)
    on_request: object = None
    drip_seconds: float = 0.2
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
            if answer in ("drip-headers", "drip-body"):
                head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100000\r\n\r\n"
                if answer == "drip-body":
                    self.wfile.write(head)
                    self.wfile.flush()
                    head = b"x" * 100000
                for byte in head:
                    if state.release.wait(state.drip_seconds):
                        return
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return
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
        # Long enough for a loaded test machine to answer, short enough to wait for a hang.
        "EVENT_DELIVERY_CONNECT_TIMEOUT_SECONDS": 1.0,
        "EVENT_DELIVERY_READ_TIMEOUT_SECONDS": 1.0,
        "EVENT_DELIVERY_BACKOFF_SECONDS": 0.01,
        "EVENT_DELIVERY_MAX_ATTEMPTS": 3,
        # tasks run eagerly here: a retry's task runs at once, finds it not due yet, and is gone,
        # so the sweep must take a due retry at once (as it does a task a broker lost, later)
        "EVENT_DELIVERY_REQUEUE_SECONDS": 0,
    }


def application_plane_scopes() -> str:
    """The scopes of the machine client an application plane reports with (machine_client_create):
    provisionSuccess needs tenant/tenant_write besides events/events_write."""
    from sbt_site.conf import sbt_settings

    return " ".join(sbt_settings.AUTH_MACHINE_CLIENT_SCOPES)


class ApplicationPlane:
    """A minimal application plane: on onboardingRequest it "provisions" the tenant and reports
    provisionSuccess with its jobOutput to the control plane's POST /events, as SBT's
    provisioning job does. It answers the webhook first and reports from another thread."""

    def __init__(self, receiver: Receiver, *, base_url: str, token: str, secret: str):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.secret = secret
        self.reports: list[tuple[int, dict]] = []
        self.bad_signatures = 0
        self.threads: list[threading.Thread] = []
        receiver.on_request = self.on_request

    def on_request(self, received: Received) -> None:
        if not verify_signature(self.secret, received.headers, received.body):
            self.bad_signatures += 1
            return
        event = received.json
        if event["detail-type"] not in ("onboardingRequest", "sbt_aws_onboardingRequest"):
            return
        thread = threading.Thread(target=self.report_provisioned, args=(event["detail"],), daemon=True)
        self.threads.append(thread)
        thread.start()

    def report_provisioned(self, detail: dict) -> None:
        import requests

        tenant_name = detail["tenantName"]
        response = requests.post(
            f"{self.base_url}/api/v1/events",
            json={
                "detail-type": "sbt_aws_provisionSuccess",
                "source": "sbt.application.plane",
                "detail": {
                    "tenantRegistrationId": detail["tenantRegistrationId"],
                    "jobOutput": {
                        "tenantData": {"tenantConfig": {"apiUrl": f"https://{tenant_name}.app.test", "tier": "basic"}},
                        "tenantRegistrationData": {"provisioningJob": "job-42"},
                    },
                },
            },
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        self.reports.append((response.status_code, response.json()))

    def join(self, timeout: float = 30) -> None:
        for thread in self.threads:
            thread.join(timeout)


@pytest.fixture
def processes(tmp_path):
    """A ``Processes`` on the test database and the Redis ./sbt test starts; stops every one at the end."""
    redis_url = os.environ.get("SBT_TEST_REDIS_URL")
    if not redis_url:
        pytest.fail("SBT_TEST_REDIS_URL is not set: run the suite with ./sbt test, which starts Redis")
    group = Processes(env=process_env(broker_url=redis_url, var_dir=tmp_path), log_dir=tmp_path)
    yield group
    group.stop_all()
