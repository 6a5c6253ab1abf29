"""Throttling and lockout of failed credentials, on django-axes (docs/operations.md).

Logins at /admin/login/ and /o/login/ are axes' own business: its authentication backend refuses
a locked-out login before the password is checked, and its signal handlers count the failures.
This module adds what axes does not know about:

- the OAuth client endpoints (/o/token/, /o/revoke_token/, /o/introspect/): a failed client
  authentication is counted in axes' own attempt rows under ``client:<client_id>`` and the
  address, so one limit, one admin page and the same ``axes_reset*`` commands cover both;
- the address a request comes from behind reverse proxies (``client_ip``);
- the answers to a locked-out request: OAuth's JSON error for a client, a page for a browser,
  both 429 with Retry-After.
"""

import base64
import binascii
import ipaddress
import math
from urllib.parse import unquote_plus

from axes.conf import settings as axes_settings
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_credentials
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse

from sbt_site.conf import sbt_settings

# ":" never occurs in a user name (Django's username validator), so a client's counter is never
# a user's.
CLIENT_PREFIX = "client:"
# AccessAttempt.username's length; longer client ids are not ids any client has.
_NAME_MAX_LENGTH = 255


def client_ip(request: HttpRequest) -> str | None:
    """The address a request's failures are counted under (``AXES_CLIENT_IP_CALLABLE``).

    The peer's address, unless ``SBT["TRUSTED_PROXY_COUNT"]`` is N > 0: then the address the
    outermost of the N proxies saw, the N-th entry from the right of X-Forwarded-For (each proxy
    appends the address it saw; entries further left are whatever the client sent). A request
    with fewer entries did not come through the proxies, and one whose entry is not an address
    is malformed: both are counted under the peer's address.
    """
    peer = request.META.get("REMOTE_ADDR") or None
    count = sbt_settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    if len(forwarded) < count:
        return peer
    try:
        return str(ipaddress.ip_address(forwarded[-count].strip()))
    except ValueError:
        return peer


def oauth_client_id(request: HttpRequest) -> str:
    """The client id the request authenticates as: HTTP Basic's (client_secret_basic) if it can
    be read, else the body's ``client_id`` (client_secret_post), the order django-oauth-toolkit
    tries them in; "" if neither."""
    client_id = _basic_auth_client_id(request)
    return request.POST.get("client_id", "") if client_id is None else client_id


def oauth_client_name(client_id: str) -> str:
    """The name the client's failures are counted under: ``client:<client_id>``. Requests that
    name no client share ``client:``; no legitimate one does (introspecting with a bearer token
    instead needs a scope no client here can get)."""
    return (CLIENT_PREFIX + client_id)[:_NAME_MAX_LENGTH]


def _basic_auth_client_id(request: HttpRequest) -> str | None:
    scheme, _, encoded = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme != "Basic":
        return None
    try:
        decoded = base64.b64decode(encoded).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, separator, _ = decoded.partition(":")
    return unquote_plus(client_id) if separator else None


def oauth_client_locked(request: HttpRequest, name: str) -> bool:
    """Whether the client ``name`` or the request's address is locked out."""
    if not axes_settings.AXES_ENABLED:
        return False
    return not AxesProxyHandler.is_allowed(request, get_credentials(name))


def oauth_client_failure_record(request: HttpRequest, name: str) -> None:
    """Count a failed client authentication against the client ``name`` and the address. The one
    that reaches the limit sets ``request.axes_locked_out``: axes' middleware then answers with
    ``lockout_response``."""
    AxesProxyHandler.user_login_failed(
        sender=oauth_client_failure_record, credentials=get_credentials(name), request=request
    )


def retry_after_seconds(request: HttpRequest) -> int:
    """Seconds until a lockout ends at the latest: the cool-off, counted from the last failure
    (which is at most now)."""
    cool_off = get_cool_off(request)
    return math.ceil(cool_off.total_seconds()) if cool_off else 0


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """The answer to a locked-out request (``AXES_LOCKOUT_CALLABLE``): 429 with Retry-After, in
    OAuth's JSON error shape at the client endpoints, as a page in the admin's look elsewhere."""
    seconds = retry_after_seconds(request)
    if getattr(request, "oauth_client_endpoint", False):
        response = JsonResponse(
            {
                "error": "temporarily_unavailable",
                "error_description": "Too many failed client authentications from this client or address; "
                "try again after Retry-After seconds.",
            },
            status=429,
        )
        response["Cache-Control"] = "no-store"
    else:
        context = {
            **admin.site.each_context(request),
            "title": "Too many failed logins",
            "minutes": math.ceil(seconds / 60),
        }
        response = TemplateResponse(request, "accounts/locked_out.html", context, status=429)
        # Rendered now: axes' middleware runs after the point where Django renders responses.
        response.render()
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
