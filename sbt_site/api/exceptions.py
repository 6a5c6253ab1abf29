"""One exception handler for the whole API, producing CONTRACT.md's error envelope.

``{"statusCode": <status>, "message": "<text>", "code": "<machine-readable>"}``, and for request
validation failures (422) a FastAPI-style ``detail`` list of ``{"loc", "msg", "type"}``.
"""

import logging
import sys

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

from sbt_site.errors import ServiceError, ServiceUnavailable

logger = logging.getLogger(__name__)


class RequestValidationError(exceptions.ValidationError):
    """A validation error whose fields sit in a given part of the request (body, query, path)."""

    def __init__(self, detail, *, location: str = "body"):
        super().__init__(detail)
        self.location = location


def error_body(status_code: int, message: str, code: str, detail: list | None = None) -> dict:
    body = {"statusCode": status_code, "message": message, "code": code}
    if detail is not None:
        body["detail"] = detail
    return body


def validation_detail(errors, loc: tuple = ()) -> list[dict]:
    """Flatten DRF's nested error structure into ``[{"loc", "msg", "type"}]``."""
    if isinstance(errors, dict):
        items = []
        for key, value in errors.items():
            sub_loc = loc if key in ("non_field_errors", "__all__") else (*loc, key)
            items.extend(validation_detail(value, sub_loc))
        return items
    if isinstance(errors, list):
        items = []
        for index, value in enumerate(errors):
            if isinstance(value, (dict, list)):
                items.extend(validation_detail(value, (*loc, index)))
            else:
                items.extend(validation_detail(value, loc))
        return items
    return [{"loc": list(loc), "msg": str(errors), "type": getattr(errors, "code", "invalid")}]


def _summary(detail: list[dict]) -> str:
    if not detail:
        return "Request validation failed"
    first = detail[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(detail) - 1} more)" if len(detail) > 1 else ""
    return f"Request validation failed: {where + ': ' if where else ''}{first['msg']}{more}"


SIMPLE_MESSAGES = {
    status.HTTP_401_UNAUTHORIZED: ("Unauthorized", "unauthorized"),
    status.HTTP_403_FORBIDDEN: ("Forbidden", "forbidden"),
}


def database_unavailable(exc: BaseException | None) -> ServiceUnavailable | None:
    """The 503 for a database that is briefly out of reach, or None for any other error.

    An OperationalError is the database's operation failing, not the request: a dropped
    connection (a restart, a failover, ``pg_terminate_backend``), a pool with no connection free
    within its timeout, a server refusing connections, a deadlock or a statement timeout. An
    InterfaceError is a connection already closed. The request did nothing wrong and a retry
    may pass (the broken connection is replaced when the request ends), so it is a 503 with
    Retry-After, not a 500.
    """
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return None
    logger.warning("database unavailable: %s", exc, exc_info=exc)
    return ServiceUnavailable("The database is briefly unavailable; retry shortly.", retry_after=1)


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error the API returns goes through here."""
    headers = {}
    exc = database_unavailable(exc) or exc
    if isinstance(exc, ServiceError):
        body = error_body(exc.status_code, exc.message, exc.code, exc.detail)
        return Response(body, status=exc.status_code, headers=exc.headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's handler500 answers with the envelope and logs it

    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ValidationError):
        location = getattr(exc, "location", "body")
        detail = validation_detail(exc.detail, (location,))
        body = error_body(422, _summary(detail), "validation_error", detail)
        return Response(body, status=422, headers=headers)

    status_code = exc.status_code
    if status_code in SIMPLE_MESSAGES:
        message, code = SIMPLE_MESSAGES[status_code]
    else:
        message = str(exc.detail) if not isinstance(exc.detail, (list, dict)) else str(exc.default_detail)
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
    return Response(error_body(status_code, message, code), status=status_code, headers=headers)


def _api_error(request, status_code: int, message: str, code: str):
    return JsonResponse(error_body(status_code, message, code), status=status_code)


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """The catch-all for unknown routes under /api/ (any method)."""
    return _api_error(request, 404, "Not found", "not_found")


# Paths whose clients are programs: their Django-level errors are the envelope, not HTML pages.
_API_PATHS = ("/api/", "/healthz", "/readyz", "/o/")


def json_or_html_404(request, exception=None):
    """handler404: the envelope for API paths, Django's page elsewhere."""
    if request.path.startswith(_API_PATHS):
        return _api_error(request, 404, "Not found", "not_found")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_or_html_500(request):
    """handler500: a bug reached the client; it gets the envelope, the log gets the traceback.
    A database briefly out of reach outside DRF (the POST /usage fast path, /healthz, /o/) is
    not a bug: a 503 with Retry-After, as DRF's views answer it."""
    if request.path.startswith(_API_PATHS):
        unavailable = database_unavailable(sys.exc_info()[1])  # handler500 runs in Django's except block
        if unavailable is not None:
            response = _api_error(request, 503, unavailable.message, unavailable.code)
            response["Retry-After"] = str(unavailable.retry_after)
            return response
        return _api_error(request, 500, "Internal server error", "server_error")
    from django.views.defaults import server_error

    return server_error(request)


def json_or_html_400(request, exception=None):
    """handler400: a body over DATA_UPLOAD_MAX_MEMORY_SIZE read outside DRF's parser (a form
    posted to /o/token/), too many form fields, a bad Host header."""
    if request.path.startswith(_API_PATHS):
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return _api_error(request, 413, f"Request body too large: the limit is {limit} bytes.", "request_too_large")
        if isinstance(exception, DisallowedHost):
            # Django's message names the ALLOWED_HOSTS setting to add the host to: for the operator's log only
            return _api_error(request, 400, "Bad request: this host is not served here.", "bad_request")
        return _api_error(request, 400, str(exception) or "Bad request", "bad_request")
    from django.views.defaults import bad_request

    return bad_request(request, exception)
