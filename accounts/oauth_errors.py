"""What the /o/ endpoints answer to a request oauthlib cannot even parse.

oauthlib decodes the query string strictly (``oauthlib.common.urldecode``): a ``%`` not
followed by two hex digits raises ValueError from deep inside every DOT view, a 500. Django
itself decodes such a query leniently, so only the OAuth endpoints need this guard.
"""

import functools

from django.http import JsonResponse
from django.urls import URLPattern
from oauthlib.common import INVALID_HEX_PATTERN


def malformed_query(query_string: str) -> bool:
    """Whether oauthlib would refuse ``query_string``'s percent-encoding."""
    return INVALID_HEX_PATTERN.search(query_string) is not None


def query_checked(pattern: URLPattern) -> URLPattern:
    """``pattern`` whose view answers a malformed percent-encoding in the query string with
    RFC 6749's JSON error (400 ``invalid_request``) before oauthlib sees it."""
    view = pattern.callback

    @functools.wraps(view)  # keeps view_class, csrf_exempt and the other view attributes
    def checked(request, *args, **kwargs):
        if malformed_query(request.META.get("QUERY_STRING", "")):
            response = JsonResponse(
                {"error": "invalid_request", "error_description": "Malformed percent-encoding in the query string."},
                status=400,
            )
            response["Cache-Control"] = "no-store"
            return response
        return view(request, *args, **kwargs)

    return URLPattern(pattern.pattern, checked, pattern.default_args, pattern.name)
