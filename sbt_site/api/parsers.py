"""The one request parser of the API: strict JSON with a size limit."""

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from sbt_site import strict_json

# Where a document already parsed from a request's body waits for DRF's parse (parsed_json_keep).
_PARSED_JSON = "_sbt_parsed_json"


def parsed_json_keep(request, document) -> None:
    """Hand ``document``, which StrictJSONParser parsed from this Django request's whole body
    (within the size limit), to the parse DRF runs next for the request, instead of parsing the
    body twice: POST /usage's fast path parses a body to decide whether to take it, and a
    1,000-event batch it hands to DRF cost another 1.5 ms to parse (metering/api/fast.py)."""
    setattr(request, _PARSED_JSON, document)


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


class StrictJSONParser(JSONParser):
    """JSON as RFC 8259 defines it (no NaN/Infinity), nested at most ``strict_json.MAX_DEPTH``
    levels, and no body above the configured size.

    Django checks DATA_UPLOAD_MAX_MEMORY_SIZE only when ``request.body`` is read; DRF parsers
    read the stream, so the limit is enforced here, before anything is parsed.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        request = getattr((parser_context or {}).get("request"), "_request", None)  # DRF's → Django's
        if hasattr(request, _PARSED_JSON):
            return getattr(request, _PARSED_JSON)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"Request body too large: the limit is {limit} bytes.")
        try:
            return strict_json.loads(raw)
        except strict_json.InvalidJSON as exc:
            raise ParseError(f"Malformed JSON: {exc}") from exc
