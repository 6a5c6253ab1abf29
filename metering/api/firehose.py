"""POST /api/v1/usage/firehose: an Amazon Data Firehose HTTP endpoint destination for SBT's
billing ingestor records (docs/metering.md "From Amazon Data Firehose").

It speaks Firehose's protocol ("HTTP endpoint delivery request and response specifications"),
not the contract's: the access key Firehose is configured with arrives verbatim in
``X-Amz-Firehose-Access-Key`` (no OAuth token), the body is
``{"requestId", "timestamp", "records": [{"data": <base64>}, ...]}``, optionally gzip-encoded,
and every answer is ``{"requestId", "timestamp"}`` plus ``errorMessage`` on failure: Firehose
counts a 200 as delivered and retries anything else. So the view is a DRF view without DRF's
parsing, authentication and error envelope: no parser (the body may be gzip; it is read raw),
no token (the access key is the credential, checked here), and every failure, DRF's own (405)
included, answered in Firehose's shape (never a 500 for what the sender sent). It is left out
of the OpenAPI document, which describes the contract's API. The records go through metering's
ingestion services like any other usage.
"""

import base64
import binascii
import hmac
import json
import logging
import time
import zlib
from datetime import UTC, datetime

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from metering.services import usage_firehose_records_ingest
from sbt_site import strict_json
from sbt_site.conf import sbt_settings
from sbt_site.errors import InvalidInput, ServiceError

logger = logging.getLogger(__name__)

ACCESS_KEY_HEADER = "X-Amz-Firehose-Access-Key"
REQUEST_ID_HEADER = "X-Amz-Firehose-Request-Id"
# Enough of a validation failure for the operator reading Firehose's error log.
ERRORS_SHOWN = 5


def _answer(status: int, request_id: str, message: str = "", headers: dict | None = None) -> HttpResponse:
    body = {"requestId": request_id, "timestamp": int(time.time() * 1000)}
    if message:
        body["errorMessage"] = message
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _body(request) -> bytes:
    """The request body, gunzipped when Firehose compressed it; RequestDataTooBig past
    ``USAGE_FIREHOSE_MAX_BODY_BYTES``, compressed or not (a small gzip can hold a huge body).

    Read from the stream, not ``request.body``: Firehose buffers at least 1 MiB, more than the
    API's own limit (DATA_UPLOAD_MAX_MEMORY_SIZE), which ``request.body`` enforces."""
    limit = sbt_settings.USAGE_FIREHOSE_MAX_BODY_BYTES
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise ValueError("Content-Length is not a number") from None
    if declared > limit:
        raise RequestDataTooBig
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise RequestDataTooBig
    if request.headers.get("Content-Encoding", "").strip().lower() != "gzip":
        return raw
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    body = inflater.decompress(raw, limit + 1)
    if len(body) > limit:
        raise RequestDataTooBig
    if not inflater.eof:
        raise ValueError("the gzip body is truncated")
    return body


def _records(payload) -> tuple[str, datetime, list]:
    """(request id, delivery time, the records' JSON values); InvalidInput naming what is wrong."""
    if not isinstance(payload, dict):
        raise InvalidInput('the body must be {"requestId", "timestamp", "records": [...]}')
    request_id, timestamp, records = payload.get("requestId"), payload.get("timestamp"), payload.get("records")
    if not isinstance(request_id, str) or not request_id:
        raise InvalidInput("requestId is missing")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise InvalidInput("timestamp must be epoch milliseconds")
    try:
        delivered_at = datetime.fromtimestamp(timestamp / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidInput("timestamp is out of range") from None
    if not isinstance(records, list):
        raise InvalidInput("records must be a list")
    values = []
    for index, record in enumerate(records):
        data = record.get("data") if isinstance(record, dict) else None
        if not isinstance(data, str):
            raise InvalidInput(f'records[{index}] must be {{"data": <base64>}}')
        try:
            values.append(strict_json.loads(base64.b64decode(data, validate=True)))
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(f"records[{index}].data is not base64 of a JSON record: {exc}") from None
    return request_id, delivered_at, values


def _refusal(exc: InvalidInput) -> str:
    shown = [f"{'.'.join(str(part) for part in error['loc'][1:])}: {error['msg']}" for error in exc.detail or []]
    if len(shown) > ERRORS_SHOWN:
        shown = [*shown[:ERRORS_SHOWN], f"... {len(shown) - ERRORS_SHOWN} more"]
    return "; ".join([exc.message, *shown])


class FirehoseDeliveryView(APIView):
    """``POST /usage/firehose``: one Firehose delivery of SBT billing-ingestor records."""

    permission_classes = [AllowAny]
    authentication_classes = []
    parser_classes = []

    @extend_schema(exclude=True)
    def post(self, request):
        return _deliver(request)

    def handle_exception(self, exc):
        if isinstance(exc, APIException):  # 405 for another method: DRF would answer in our envelope
            return _answer(exc.status_code, self.request.headers.get(REQUEST_ID_HEADER, ""), str(exc.detail))
        return super().handle_exception(exc)


def _deliver(request) -> HttpResponse:
    request_id = request.headers.get(REQUEST_ID_HEADER, "")
    expected = sbt_settings.USAGE_FIREHOSE_ACCESS_KEY
    if not expected:
        return _answer(403, request_id, "This endpoint is off: set USAGE_FIREHOSE_ACCESS_KEY on the control plane")
    given = request.headers.get(ACCESS_KEY_HEADER, "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return _answer(401, request_id, f"{ACCESS_KEY_HEADER} is missing or wrong")
    try:
        payload = strict_json.loads(_body(request))
        request_id, delivered_at, records = _records(payload)
        result = usage_firehose_records_ingest(request_id=request_id, delivered_at=delivered_at, records=records)
    except RequestDataTooBig:
        limit = sbt_settings.USAGE_FIREHOSE_MAX_BODY_BYTES
        return _answer(413, request_id, f"The delivery is over {limit} bytes: lower the stream's buffer size")
    except (ValueError, zlib.error) as exc:  # strict_json.InvalidJSON is a ValueError
        return _answer(400, request_id, f"The body is not Firehose's JSON: {exc}")
    except InvalidInput as exc:
        logger.warning("Firehose delivery %s refused: %s", request_id, exc.message)
        return _answer(400, request_id, _refusal(exc))
    except ServiceError as exc:  # a quota (429), the database briefly gone (503): Firehose retries
        return _answer(exc.status_code, request_id, exc.message, getattr(exc, "headers", None))
    except (OperationalError, InterfaceError):
        return _answer(503, request_id, "The database is briefly unavailable; Firehose retries", {"Retry-After": "1"})
    logger.info("Firehose delivery %s: %s stored, %s duplicates", request_id, result.accepted, result.duplicates)
    return _answer(200, request_id)
