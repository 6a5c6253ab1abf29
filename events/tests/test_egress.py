"""The egress policy of outbound webhooks (SSRF): refused destinations at subscription time and
at delivery time, against real receivers on loopback that count every byte they get."""

import datetime
import ipaddress
import os
import re
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from events.egress import address_refusal, allowed_networks
from events.models import Delivery, Event, Subscription
from events.services import event_publish, subscription_create, subscription_update
from events.webhooks import post_event
from sbt_site import conf
from sbt_site.errors import InvalidInput

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
POLICY = "not allowed by the egress policy (EVENT_WEBHOOK_ALLOWED_NETWORKS)"


@dataclass
class CountingReceiver:
    """A TCP server that counts connections and every byte received, and answers each request
    with ``status`` (plus ``headers``)."""

    host: str
    port: int = 0
    status: int = 200
    headers: bytes = b""
    connections: int = 0
    received: bytearray = field(default_factory=bytearray)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}/hook"


@pytest.fixture
def counting_receiver():
    """``start(host, port=0)`` starts a CountingReceiver; all are stopped at the end."""
    servers = []

    def start(host: str = "127.0.0.1", port: int = 0) -> CountingReceiver:
        state = CountingReceiver(host=host)

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                with state.lock:
                    state.connections += 1
                data = b""
                while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _content_length(data):
                    chunk = self.request.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    with state.lock:
                        state.received += chunk
                status_line = f"HTTP/1.1 {state.status} Answer\r\n".encode()
                self.request.sendall(
                    status_line + b"Content-Length: 0\r\nConnection: close\r\n" + state.headers + b"\r\n"
                )

        server = socketserver.ThreadingTCPServer((host, port), Handler)
        server.daemon_threads = True
        state.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return state

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _content_length(data: bytes) -> int:
    match = re.search(rb"(?im)^content-length:\s*(\d+)", data.partition(b"\r\n\r\n")[0])
    return int(match.group(1)) if match else 0


@pytest.fixture
def strict_policy(settings):
    """The production default: no non-public network allowed, loopback included."""
    settings.SBT = {**settings.SBT, "EVENT_WEBHOOK_ALLOWED_NETWORKS": []}


def delivery_of(subscription: Subscription, django_capture_on_commit_callbacks) -> Delivery:
    with django_capture_on_commit_callbacks(execute=True):
        event = event_publish(detail_type="onboardingRequest", detail={"tenantId": "t-1"})
    return Delivery.objects.get(event=event, subscription=subscription)


# --- At subscription time -------------------------------------------------------------------

NON_PUBLIC_URLS = [
    ("http://127.0.0.1:8000/api/v1/tenants", "loopback address"),
    ("http://localhost:8000/hook", "loopback address"),
    ("http://[::1]:8000/hook", "loopback address"),
    ("http://[::ffff:127.0.0.1]:8000/hook", "loopback address"),
    ("http://[::127.0.0.1]/hook", "loopback address"),  # IPv4-compatible
    ("http://0.0.0.0:8000/hook", "unspecified address"),
    ("http://[::]/hook", "unspecified address"),
    ("http://10.0.0.1/hook", "private or special-purpose address"),
    ("http://172.16.5.4/hook", "private or special-purpose address"),
    ("http://192.168.1.1/hook", "private or special-purpose address"),
    ("http://[fd00::1]/hook", "private or special-purpose address"),
    ("http://[64:ff9b::a00:1]/hook", "private or special-purpose address"),  # NAT64 of 10.0.0.1
    ("http://[2002:a00:1::1]/hook", "private or special-purpose address"),  # 6to4 of 10.0.0.1
    ("http://169.254.169.254/latest/meta-data/", "link-local address"),
    ("http://[fe80::1]/hook", "link-local address"),
    ("http://100.64.0.1/hook", "shared address space (CGNAT)"),
    ("http://224.0.0.1/hook", "multicast address"),
    ("http://[ff02::1]/hook", "multicast address"),
    ("http://240.0.0.1/hook", "private or special-purpose address"),
]


@pytest.mark.parametrize(("url", "kind"), NON_PUBLIC_URLS)
def test_a_subscription_to_a_non_public_address_is_refused(strict_policy, url, kind):
    with pytest.raises(InvalidInput) as refused:
        subscription_create(url=url, event_types=[])
    assert refused.value.status_code == 422
    assert POLICY in refused.value.message and kind in refused.value.message
    assert refused.value.detail[0]["loc"] == ["url"]
    assert not Subscription.objects.exists()


def test_an_update_to_a_non_public_address_is_refused(strict_policy):
    subscription, _ = subscription_create(url="https://93.184.215.14/hook", event_types=[])
    with pytest.raises(InvalidInput, match=re.escape(POLICY)):
        subscription_update(subscription=subscription, url="http://169.254.169.254/latest/meta-data/")
    subscription.refresh_from_db()
    assert subscription.url == "https://93.184.215.14/hook"


def test_public_addresses_are_accepted(strict_policy):
    for url in ("https://93.184.215.14/hook", "https://[2606:4700:4700::1111]/hook", "http://[::ffff:8.8.8.8]/"):
        subscription_create(url=url, event_types=[])
    assert Subscription.objects.count() == 3


def test_a_name_that_does_not_resolve_is_refused(strict_policy):
    with pytest.raises(InvalidInput, match=re.escape("cannot resolve host 'no-such-host.invalid'")):
        subscription_create(url="https://no-such-host.invalid/hook", event_types=[])


def test_allowed_networks_let_an_internal_application_plane_in(settings):
    settings.SBT = {"EVENT_WEBHOOK_ALLOWED_NETWORKS": ["10.20.0.0/16", "fd12:3456::/32"]}
    for url in ("http://10.20.3.4/hook", "http://[::ffff:10.20.3.4]/hook", "http://[fd12:3456::7]/hook"):
        subscription_create(url=url, event_types=[])
    for url in ("http://10.21.0.1/hook", "http://127.0.0.1/hook", "http://[fd12:3457::7]/hook"):
        with pytest.raises(InvalidInput, match=re.escape(POLICY)):
            subscription_create(url=url, event_types=[])


def test_the_admin_and_the_command_explain_a_refused_url(strict_policy, admin_client):
    response = admin_client.post(
        "/admin/events/subscription/add/", {"url": "http://169.254.169.254/latest/", "enabled": "on"}
    )
    assert response.status_code == 200
    assert POLICY in response.content.decode()
    with pytest.raises(CommandError, match=re.escape(POLICY)):
        call_command("event_subscription_create", "--url", "http://[::1]:8000/", stdout=StringIO())
    assert not Subscription.objects.exists()


# --- At delivery time -----------------------------------------------------------------------


def test_a_name_resolving_to_loopback_at_delivery_is_refused_and_nothing_is_sent(
    settings, counting_receiver, django_capture_on_commit_callbacks
):
    receiver = counting_receiver("127.0.0.1")
    # Accepted while loopback was allowed; then the policy narrows (or the name now points inside).
    subscription, _ = subscription_create(url=receiver.url("localhost"), event_types=["onboardingRequest"])
    settings.SBT = {"EVENT_WEBHOOK_ALLOWED_NETWORKS": []}

    delivery = delivery_of(subscription, django_capture_on_commit_callbacks)

    assert (receiver.connections, len(receiver.received)) == (0, 0)
    assert delivery.status == Delivery.Status.FAILED  # retried like any failure: the policy may change
    assert (delivery.attempts, delivery.last_status_code) == (1, None)
    assert delivery.next_attempt_at is not None
    assert re.fullmatch(
        r"destination localhost \((127\.0\.0\.1|::1)\) is " + re.escape(POLICY) + ": loopback address",
        delivery.last_error,
    )


def test_an_allowed_loopback_receiver_gets_the_delivery(counting_receiver, django_capture_on_commit_callbacks):
    receiver = counting_receiver("127.0.0.1")
    subscription, _ = subscription_create(url=receiver.url("localhost"), event_types=["onboardingRequest"])

    delivery = delivery_of(subscription, django_capture_on_commit_callbacks)

    assert delivery.status == Delivery.Status.SUCCEEDED
    assert receiver.connections == 1
    request = bytes(receiver.received)
    assert request.startswith(b"POST /hook HTTP/1.1\r\n")
    # Connected to the checked address, but the Host header is still the URL's.
    assert f"\r\nHost: localhost:{receiver.port}\r\n".encode() in request
    assert b"X-SBT-Signature: v1=" in request


def test_dns_rebinding_cannot_move_the_connection(settings, monkeypatch, counting_receiver):
    """The resolver answers an allowed address first and a forbidden one afterwards: the request
    goes to the checked address, with one lookup. (The system resolver is replaced here because
    it cannot be pointed at a test DNS server without root.)"""
    allowed = counting_receiver("127.0.0.1")
    forbidden = counting_receiver("127.0.0.2", allowed.port)
    settings.SBT = {"EVENT_WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.1/32"]}
    system_getaddrinfo = socket.getaddrinfo
    lookups = []

    def rebinding_getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.test":
            return system_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        return system_getaddrinfo("127.0.0.1" if len(lookups) == 1 else "127.0.0.2", port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    event = Event.objects.create(detail_type="onboardingRequest", detail={}, source="sbt.control.plane")

    outcome = post_event(url=allowed.url("rebind.test"), event=event, secret="s" * 16, delivery_id="d-1")

    assert outcome.ok, outcome.error
    assert len(lookups) == 1
    assert allowed.connections == 1
    assert (forbidden.connections, len(forbidden.received)) == (0, 0)
    # And the next delivery, which now resolves to the forbidden address, is refused before connecting.
    outcome = post_event(url=allowed.url("rebind.test"), event=event, secret="s" * 16, delivery_id="d-2")
    assert not outcome.ok
    assert outcome.error.startswith("destination rebind.test (127.0.0.2) is " + POLICY)
    assert (forbidden.connections, len(forbidden.received)) == (0, 0)


def test_a_redirect_is_not_followed(counting_receiver):
    target = counting_receiver("127.0.0.1")
    redirecting = counting_receiver("127.0.0.1")
    redirecting.status = 307
    redirecting.headers = f"Location: {target.url()}\r\n".encode()
    event = Event.objects.create(detail_type="onboardingRequest", detail={}, source="sbt.control.plane")

    outcome = post_event(url=redirecting.url(), event=event, secret="s" * 16, delivery_id="d-1")

    assert (outcome.ok, outcome.status_code) == (False, 307)
    assert target.connections == 0


def test_https_still_verifies_the_url_host_name(tmp_path, monkeypatch):
    """Connecting to the checked address must not weaken TLS: SNI and the certificate check use
    the URL's host name, so a certificate for localhost is accepted at https://localhost and
    refused at https://127.0.0.1."""
    ca_pem, cert_pem, key_pem = _certificates_for("localhost")
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    (tmp_path / "cert.pem").write_bytes(cert_pem + ca_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    server_names = []
    hosts = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            hosts.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    event = Event.objects.create(detail_type="onboardingRequest", detail={}, source="sbt.control.plane")
    try:
        by_name = post_event(url=f"https://localhost:{port}/hook", event=event, secret="s" * 16, delivery_id="d-1")
        by_address = post_event(url=f"https://127.0.0.1:{port}/hook", event=event, secret="s" * 16, delivery_id="d-2")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

    assert by_name.ok, by_name.error
    assert (server_names[0], hosts) == ("localhost", [f"localhost:{port}"])
    assert not by_address.ok
    assert "127.0.0.1" in by_address.error and "certificate" in by_address.error.lower()


def _certificates_for(host_name: str) -> tuple[bytes, bytes, bytes]:
    """A throwaway CA, and a certificate it signs for ``host_name`` (PEM: CA, certificate, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject, issuer, public_key, signing_key, extensions):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate(
        "test CA", "test CA", ca_key.public_key(), ca_key, [(x509.BasicConstraints(ca=True, path_length=None), True)]
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate(
        host_name,
        "test CA",
        key.public_key(),
        ca_key,
        [
            (x509.SubjectAlternativeName([x509.DNSName(host_name)]), False),
            (x509.BasicConstraints(ca=False, path_length=None), True),
        ],
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca.public_bytes(serialization.Encoding.PEM), leaf.public_bytes(serialization.Encoding.PEM), key_pem


# --- The classifier and the setting ---------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("127.0.0.1", "loopback address"),
        ("127.255.0.9", "loopback address"),
        ("::ffff:127.0.0.1", "loopback address"),
        ("::ffff:7f00:1", "loopback address"),
        ("::ffff:169.254.169.254", "link-local address"),
        ("::ffff:10.0.0.1", "private or special-purpose address"),
        ("::127.0.0.1", "loopback address"),
        ("64:ff9b::7f00:1", "loopback address"),
        ("2002:7f00:1::", "loopback address"),
        ("0.0.0.0", "unspecified address"),
        ("0.1.2.3", "private or special-purpose address"),
        ("fec0::1", "site-local address"),
        ("2001:db8::1", "private or special-purpose address"),
        ("255.255.255.255", "private or special-purpose address"),
        ("100.127.255.254", "shared address space (CGNAT)"),
        ("239.1.2.3", "multicast address"),
    ],
)
def test_address_classifier(strict_policy, address, kind):
    assert address_refusal(ipaddress.ip_address(address)) == kind


def test_an_allowed_ipv4_network_covers_its_mapped_ipv6_form_only(settings):
    settings.SBT = {"EVENT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    assert address_refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None
    assert address_refusal(ipaddress.ip_address("::1")) == "loopback address"
    assert address_refusal(ipaddress.ip_address("2002:7f00:1::")) == "loopback address"


def test_allowed_networks_are_parsed_from_a_list_or_comma_separated_text(settings):
    settings.SBT = {"EVENT_WEBHOOK_ALLOWED_NETWORKS": " 10.0.0.0/8, fd12::/64 ,, 192.168.1.7"}
    assert [str(network) for network in allowed_networks()] == ["10.0.0.0/8", "fd12::/64", "192.168.1.7/32"]


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "10.0.0.1/8", "intranet", "fd00::/129"])
def test_a_bad_network_is_improperly_configured(settings, bad):
    settings.SBT = {"EVENT_WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8", bad]}
    with pytest.raises(
        ImproperlyConfigured, match=rf"EVENT_WEBHOOK_ALLOWED_NETWORKS .* {re.escape(repr(bad))} is not one"
    ):
        allowed_networks()


def test_a_bad_network_in_the_environment_stops_start_up(tmp_path):
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ} | {
        "DJANGO_SETTINGS_MODULE": "sbt_site.settings",
        "SBT_VAR_DIR": str(tmp_path),
        "EVENT_WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/8,10.300.0.0/16",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: EVENT_WEBHOOK_ALLOWED_NETWORKS must be comma-separated networks" in result.stderr
    assert "'10.300.0.0/16' is not one" in result.stderr


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, ["127.0.0.0/8", "::1/128"]),
        ({"SBT_ENV": "production"}, []),
        (
            {"SBT_ENV": "production", "EVENT_WEBHOOK_ALLOWED_NETWORKS": "10.20.0.0/16, fd12::/64"},
            ["10.20.0.0/16", "fd12::/64"],
        ),
        ({"EVENT_WEBHOOK_ALLOWED_NETWORKS": ""}, []),  # set but empty: nothing, even in development
    ],
)
def test_the_default_depends_on_the_environment(monkeypatch, environment, expected):
    monkeypatch.delenv("SBT_ENV", raising=False)
    monkeypatch.delenv("EVENT_WEBHOOK_ALLOWED_NETWORKS", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert conf._webhook_allowed_networks() == expected


# --- Event types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "standard"),
    [
        ("onbordingRequest", "onboardingRequest"),
        ("onboardingRequests", "onboardingRequest"),
        ("OnboardingRequest", "onboardingRequest"),
        ("sbt_aws_provisionSucces", "provisionSuccess"),
        ("deactivateRequst", "deactivateRequest"),
    ],
)
def test_a_typo_of_a_standard_event_type_is_refused(typo, standard):
    with pytest.raises(InvalidInput, match=rf"{typo!r} is not an SBT event type: did you mean {standard!r}\?"):
        subscription_create(url="http://127.0.0.1:9/hook", event_types=["offboardingRequest", typo])
    with pytest.raises(CommandError, match="did you mean"):
        call_command("event_subscription_create", "--url", "http://127.0.0.1:9/", "--events", typo, stdout=StringIO())
    assert not Subscription.objects.exists()


def test_standard_and_custom_event_types_are_accepted():
    names = ["sbt_aws_onboardingRequest", "provisionSuccess", "myCustomEvent", "tenantCreated", "tenantUserUpdated"]
    subscription, _ = subscription_create(url="http://127.0.0.1:9/hook", event_types=names)
    assert subscription.event_types == ["onboardingRequest", *names[1:]]
