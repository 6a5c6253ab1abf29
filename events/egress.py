"""Where outbound webhooks may go: the egress policy.

A subscription's URL is chosen by whoever administers subscriptions, and the control plane sends
requests to it from inside its own network: without a policy it could be pointed at the control
plane's own API, a database's HTTP port or a cloud metadata service (169.254.169.254). So a
destination must be globally routable — no loopback, private (RFC 1918, ULA), link-local, shared
(CGNAT), multicast, unspecified or reserved address — unless it lies in one of the networks of
``SBT["EVENT_WEBHOOK_ALLOWED_NETWORKS"]`` (loopback in development, nothing in production).

A name is resolved once and every address it resolves to is checked; the delivery then connects
to those checked addresses (events.webhooks), so a DNS answer that changes between the check and
the connection (DNS rebinding) cannot send the request elsewhere.
"""

import functools
import ipaddress
import socket
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from sbt_site.conf import sbt_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "EVENT_WEBHOOK_ALLOWED_NETWORKS"
DEFAULT_PORTS = {"http": 80, "https": 443}

_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")  # CGNAT, RFC 6598
# IPv6 forms that carry an IPv4 address in their last 32 bits and may reach it: the deprecated
# IPv4-compatible ::a.b.c.d and the NAT64 well-known prefix (RFC 6052).
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class DestinationRefused(Exception):
    """The destination is not allowed by the egress policy; the message says which address and why."""


class DestinationUnresolved(Exception):
    """The destination's host name does not resolve to any address."""


def allowed_networks() -> tuple[IPNetwork, ...]:
    """The configured allow-list, parsed; ImproperlyConfigured names a bad entry."""
    configured = sbt_settings.EVENT_WEBHOOK_ALLOWED_NETWORKS
    if isinstance(configured, str):
        configured = configured.split(",")
    return _parse_networks(tuple(item.strip() for item in configured if item.strip()))


@functools.lru_cache(maxsize=8)
def _parse_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"{SETTING} must be comma-separated networks in CIDR notation (e.g. 10.20.0.0/16,fd12::/64); "
                f"{entry!r} is not one: {exc}"
            ) from None
    return tuple(networks)


def _reached_address(address: IPAddress) -> IPAddress:
    """The address a connection to ``address`` leads to, as far as the policy is concerned: the
    IPv4 address inside an IPv4-mapped, IPv4-compatible or NAT64 IPv6 address."""
    if not isinstance(address, ipaddress.IPv6Address) or address.is_unspecified or address.is_loopback:
        return address  # :: and ::1 are in ::/96 but are themselves, not 0.0.0.0 and 0.0.0.1
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _IPV4_COMPATIBLE or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _not_public(address: IPAddress) -> str | None:
    """What kind of non-public address this is, or None for a globally routable one."""
    # Ordered from the most specific name to the most general: ``is_private`` covers loopback
    # and link-local too, and ``is_global`` is False for all of them.
    if address.is_unspecified:
        return "unspecified address"
    if address.is_loopback:
        return "loopback address"
    if address.is_link_local:
        return "link-local address"
    if address.is_multicast:
        return "multicast address"
    if address in _SHARED_ADDRESS_SPACE:
        return "shared address space (CGNAT)"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local address"
    if address.is_private:
        return "private or special-purpose address"
    if address.is_reserved:
        return "reserved address"
    if not address.is_global:
        return "address not globally routable"
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why the policy refuses this address (e.g. ``"loopback address"``), or None when it is allowed.

    An IPv6 address that embeds an IPv4 one (``::ffff:127.0.0.1``, ``::127.0.0.1``,
    ``64:ff9b::7f00:1``, 6to4's ``2002:7f00:1::``) is judged by the IPv4 address too.
    """
    allowed = allowed_networks()
    if any(address in network for network in allowed):
        return None
    # ::ffff:127.0.0.1 *is* 127.0.0.1 to the kernel, so an allowed IPv4 network covers it.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if mapped is not None and any(mapped in network for network in allowed):
        return None
    reached = _reached_address(address)
    kind = _not_public(reached)
    if kind is None and isinstance(reached, ipaddress.IPv6Address) and reached.sixtofour is not None:
        kind = _not_public(reached.sixtofour)
    return kind


def resolve_checked(host: str, port: int) -> list[str]:
    """Resolve ``host`` once and return its addresses, all of which the policy allows.

    Raises DestinationRefused if any address is refused: a name whose answers mix a public and a
    private address is refused, as a connection could reach either. Raises DestinationUnresolved
    when the name does not resolve.
    """
    host = host.strip("[]")
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationUnresolved(f"cannot resolve host {host!r}: {exc}") from exc
    addresses = list(dict.fromkeys(str(answer[4][0]) for answer in answers))
    if not addresses:
        raise DestinationUnresolved(f"cannot resolve host {host!r}: no address")
    for address in addresses:
        kind = address_refusal(ipaddress.ip_address(address))
        if kind is not None:
            shown = address if address == host else f"{host} ({address})"
            raise DestinationRefused(f"destination {shown} is not allowed by the egress policy ({SETTING}): {kind}")
    return addresses


def url_check(url: str) -> list[str]:
    """Check an http(s) URL's destination (see ``resolve_checked``); returns its addresses."""
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except (ValueError, KeyError) as exc:
        raise DestinationUnresolved(f"{url!r} has no usable port: {exc}") from None
    if not parts.hostname:
        raise DestinationUnresolved(f"{url!r} has no host")
    return resolve_checked(parts.hostname, port)
