"""POST /usage answered without DRF: the common request, a JSON object of a few events with a
bearer token in the Authorization header.

Its token is checked by the group commit's leader together with those of the other requests of
its group, in one query (``accounts.tokens.bearer_checks``: the validator DRF's authentication
runs, then the route's scope), instead of once per request, and DRF's request and response
machinery is skipped; together that was about half the CPU of a one-event request.

What it bypasses: DRF's ``initial()`` (authentication, permissions, throttles, content
negotiation, versioning) and its parsers and renderers. It emulates ``EMULATED``, the classes
``UsageView`` runs with today (the client's rate limit with the throttle's own counters,
``tokens_throttled``, once per client of a group), and answers byte for byte as DRF would
(metering/tests/test_fast_ingest.py); metering/checks.py fails ``manage.py check`` when the
view's effective classes differ, e.g. after a throttle is added to REST_FRAMEWORK. Any other
request, and any whose token does not pass, is handed to DRF, so every error is DRF's. A body
it parsed and declined (a batch over the group's size) is handed over parsed
(``parsed_json_keep``): DRF's parser returns that document instead of reading the body again.
"""

import base64
import io
import json

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from oauth2_provider.utils import parse_bearer_token
from rest_framework.exceptions import APIException, Throttled
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer

from accounts.tokens import BearerCheck, bearer_checks, token_tenant_id
from metering import services
from metering.interface import IngestResult
from sbt_site import logcontext
from sbt_site.api.authentication import BearerTokenAuthentication
from sbt_site.api.exceptions import error_body, exception_handler
from sbt_site.api.parsers import StrictJSONParser, parsed_json_keep
from sbt_site.api.permissions import HasOperationScope, scope_for_operation
from sbt_site.api.throttling import ClientRateThrottle, tokens_throttled
from sbt_site.errors import ServiceError

# What the fast path does in place of DRF, as UsageView's attributes DRF reads: the check
# compares each with the view's effective value.
EMULATED = {
    "authentication_classes": (BearerTokenAuthentication,),
    "permission_classes": (HasOperationScope,),
    "throttle_classes": (ClientRateThrottle,),
    "parser_classes": (StrictJSONParser,),
    "renderer_classes": (JSONRenderer,),
    "content_negotiation_class": DefaultContentNegotiation,
    "versioning_class": None,
}
OPERATION = "ingestUsage"  # UsageView.operations["POST"]: the scope the token needs
ALLOW = "POST, DELETE, OPTIONS"  # UsageView's Allow header

# The fast path parses the body before the token is checked (DRF checks first): it takes only
# bodies this small, so a client without a valid token cannot make the server parse much. 50
# events (USAGE_GROUP_COMMIT_MAX_EVENTS) of up to 5 KB each fit.
FAST_PATH_MAX_BYTES = 256 * 1024


class NotAuthorized(Exception):
    """The bearer token of a ``usage_events_ingest_bearer`` call did not pass; nothing of its
    batch was stored. The request then goes to DRF, which answers 401 or 403."""


def _bearer_authenticate(checks: list[BearerCheck]) -> list:
    """Credentials.authenticate for bearer tokens: every token of a group in one query, then
    the client's rate limit, as DRF checks it after authentication and permissions (a request
    over it: DRF's Throttled)."""
    tokens = bearer_checks(checks)
    waits = iter(tokens_throttled([token for token in tokens if token is not None]))
    outcomes = []
    for token in tokens:
        if token is None:
            outcomes.append(NotAuthorized())
        elif (wait := next(waits)) is not None:
            outcomes.append(Throttled(wait=wait))
        else:
            outcomes.append(token_tenant_id(token))
    return outcomes


def bearer_credentials(bearer: BearerCheck) -> services.Credentials:
    return services.Credentials(value=bearer, authenticate=_bearer_authenticate)


def usage_events_ingest_bearer(*, events: list, bearer: BearerCheck) -> IngestResult:
    """``usage_events_ingest_shared`` for a request not yet authenticated: its bearer token is
    checked by the group commit's leader, together with those of the other requests of the
    group, in one query (the token lookup was the largest cost of a one-event request that is
    not shared otherwise). Raises NotAuthorized when the token does not pass, Throttled over
    the client's rate limit, a ServiceError when the batch does not pass (InvalidInput, the
    tenant's quota); the batch must be groupable (``services.usage_events_groupable``)."""
    return services.usage_events_ingest_authenticating(events=events, credentials=bearer_credentials(bearer))


def _accepts_json(accept: str | None) -> bool:
    """Whether DRF's content negotiation would pick plain JSON for this Accept header (only the
    unambiguous cases: no header, or ranges without parameters that include JSON)."""
    if not accept:
        return True
    ranges = [part.strip() for part in accept.split(",")]
    return all(";" not in part for part in ranges) and any(
        part in ("*/*", "application/*", "application/json") for part in ranges
    )


def _ingest_fast(request) -> HttpResponse | None:
    """POST /usage without DRF, or None when the request must go to DRF: anything but a JSON
    object of a few events with a bearer token in the Authorization header, and any request
    whose token does not pass (DRF then answers 401 or 403, exactly as it does otherwise).
    The response is byte for byte DRF's (metering/tests/test_fast_ingest.py compares them)."""
    content_length = request.META.get("CONTENT_LENGTH")
    token = parse_bearer_token(request.META.get("HTTP_AUTHORIZATION"))
    if (
        token is None
        or "access_token" in request.GET
        or request.content_type != "application/json"
        or not _accepts_json(request.META.get("HTTP_ACCEPT"))
        or not content_length
        or not content_length.isdigit()
        or int(content_length) > min(FAST_PATH_MAX_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    ):
        return None
    try:
        body = StrictJSONParser().parse(io.BytesIO(request.body))
    except APIException:
        return None
    events = body.get("events", [body]) if isinstance(body, dict) else None
    if not isinstance(events, list) or not events or not services.usage_events_groupable(events):
        parsed_json_keep(request, body)  # a batch over the group's size: DRF need not parse it again
        return None
    bearer = BearerCheck(
        token=token,
        uri=request.build_absolute_uri(),
        method=request.method,
        scope=scope_for_operation(OPERATION),
    )
    try:
        result = usage_events_ingest_bearer(events=events, bearer=bearer)
    except NotAuthorized:
        return None
    except (Throttled, OperationalError, InterfaceError) as exc:  # the last two: the database's 503
        if isinstance(exc, Throttled):  # the token passed
            _log_context_from_claims(token)
        drf = exception_handler(exc, {})
        return _json_response(drf.data, drf.status_code, {"Retry-After": drf["Retry-After"]})
    except ServiceError as exc:
        _log_context_from_claims(token)
        body = error_body(exc.status_code, exc.message, exc.code, exc.detail)
        return _json_response(body, exc.status_code, exc.headers)
    _log_context_from_claims(token)
    return _json_response({"data": {"accepted": result.accepted, "duplicates": result.duplicates}}, 201)


def _log_context_from_claims(token: str) -> None:
    """The client and tenant of a token the group's leader accepted, for the log lines
    (sbt_site/logcontext.py), as BearerTokenAuthentication sets them on DRF's path: read from
    the token's claims (we signed them, and the leader found the token stored) rather than
    handed back through the group commit."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return
    if isinstance(claims, dict):
        logcontext.set(client_id=claims.get("client_id"), tenant_id=claims.get("tenantId"))


def _json_response(data: dict, status_code: int, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(JSONRenderer().render(data), status=status_code, content_type="application/json")
    response["Allow"] = ALLOW
    for name, value in (headers or {}).items():
        response[name] = value
    return response
