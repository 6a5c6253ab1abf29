"""The one request parser of the API: strict JSON with a size limit."""

import json

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class StrictJSONParser(JSONParser):
    """JSON as RFC 8259 defines it: no NaN/Infinity, and no body above the configured size.

    Django checks DATA_UPLOAD_MAX_MEMORY_SIZE only when ``request.body`` is read; DRF parsers
    read the stream, so the limit is enforced here, before anything is parsed.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"Request body too large: the limit is {limit} bytes.")
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"Malformed JSON: {exc}") from exc
        except RecursionError:
            # json.loads recurses per nesting level: a body of 50,000 "[" must be a 400, not a 500.
            raise ParseError("Malformed JSON: nested too deeply") from None
