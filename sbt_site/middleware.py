"""The outermost middleware: a request id for every request, its latency in the metrics, and
one log line when it is answered."""

import logging
import time

from sbt_site import logcontext
from sbt_site.metrics import REQUEST_SECONDS

logger = logging.getLogger("sbt.requests")

# Any other method a client invents is counted as "other": label values must stay few.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route(request) -> str:
    """The URL pattern the request matched (``api/v1/tenants/<uuid:tenant_id>``), never its
    raw path, so the number of label values is the number of routes; "unmatched" otherwise
    (404s, static files)."""
    match = getattr(request, "resolver_match", None)
    return match.route if match is not None and match.route else "unmatched"


class RequestObservabilityMiddleware:
    """Takes the request id from ``X-Request-ID`` when a proxy or client sent a well-formed one
    (logcontext.REQUEST_ID_PATTERN), else makes one, and echoes it in the response's header.
    Everything logged while the request is served carries it (sbt_site/logcontext.py), with
    the tenant and client ids that authentication adds; tasks the request enqueues and
    webhooks they send carry it on."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = logcontext.accepted_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        started = time.perf_counter()
        with logcontext.bound(request_id=request_id):
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            method = request.method if request.method in METHODS else "other"
            route = _route(request)
            REQUEST_SECONDS.labels(route, method, str(response.status_code)).observe(seconds)
            response[logcontext.HEADER] = logcontext.get_field("request_id")
            if logger.isEnabledFor(logging.INFO):
                # the path without its query string: a client may put a token there (it is refused)
                logger.info(
                    "%s %s %s",
                    method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": method,
                        "path": request.path,
                        "route": route,
                        "status": response.status_code,
                        "duration_ms": round(seconds * 1000, 3),
                    },
                )
        return response
