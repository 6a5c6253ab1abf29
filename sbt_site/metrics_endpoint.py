"""``GET /metrics``: Prometheus' scrape, for the allowed networks or the bearer token only.

Off unless configured: with neither ``SBT_METRICS_TOKEN`` nor ``SBT_METRICS_ALLOWED_NETWORKS``
(production's default) the route is a 404, as if it did not exist. A request that comes from
an allowed network, or presents the token, is served; any other is a 403. The address is the
one failed logins are counted under (accounts.lockout.client_ip: the peer, or behind
SBT_TRUSTED_PROXY_COUNT proxies the address the outermost saw).
"""

import hmac
import ipaddress
from functools import lru_cache

from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from accounts.lockout import client_ip
from sbt_site.conf import sbt_settings
from sbt_site.metrics import exposition
from sbt_site.metrics_state import StateCollector


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    try:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)
    except ValueError as exc:
        raise ImproperlyConfigured(f"SBT_METRICS_ALLOWED_NETWORKS: {exc} (comma-separated CIDRs)") from None


def _token_presented(request, token: str) -> bool:
    scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme == "Bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


def _from_allowed_network(request, networks: tuple) -> bool:
    address = client_ip(request)
    if not address or not networks:
        return False
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def metrics_access_check(request) -> None:
    """Raise Http404 when the endpoint is off, PermissionDenied when this request may not scrape."""
    token = sbt_settings.METRICS_TOKEN
    networks = _networks(tuple(sbt_settings.METRICS_ALLOWED_NETWORKS))
    if not token and not networks:
        raise Http404("Metrics are off: set SBT_METRICS_TOKEN or SBT_METRICS_ALLOWED_NETWORKS")
    if (token and _token_presented(request, token)) or _from_allowed_network(request, networks):
        return
    raise PermissionDenied("Not an allowed network, and no valid metrics token")


@never_cache
@require_GET
def metrics(request):
    metrics_access_check(request)
    return HttpResponse(exposition(StateCollector()), content_type=CONTENT_TYPE_LATEST)
