"""Meters and usage (CONTRACT.md "Meters", "Usage"): thin views over services and selectors."""

import functools
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from oauth2_provider.utils import parse_bearer_token
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.tokens import BearerCheck
from metering import selectors, services
from metering.api.serializers import (
    CancelSerializer,
    MeterInputSerializer,
    UsageQuerySerializer,
    meter_data,
    usage_window_data,
)
from metering.interface import MeterSpec, usage_window_order
from metering.models import Meter
from metering.providers.native import meter_info
from sbt_site.api.exceptions import RequestValidationError, error_body
from sbt_site.api.pagination import decode_token, encode_token, paginate, parse_limit
from sbt_site.api.parsers import StrictJSONParser
from sbt_site.api.permissions import client_tenant_id, scope_for_operation
from sbt_site.conf import sbt_settings
from sbt_site.errors import NotFound, ServiceError

WINDOW_LENGTH = {
    "HOUR": timedelta(hours=1),
    "DAY": timedelta(days=1),
    "WEEK": timedelta(days=7),
    "MONTH": timedelta(days=28),
}


def _meter_or_404(meter_id) -> Meter:
    meter = selectors.meter_get(meter_id=meter_id)
    if meter is None:
        raise NotFound(f"Meter not found for id {meter_id}", code="meter_not_found")
    return meter


class MeterListView(APIView):
    operations = {"GET": "fetchAllMeters", "POST": "createMeter"}

    @extend_schema(operation_id="fetchAllMeters", responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        page = paginate(selectors.meter_list(), request, ordering=("created", "pk"))
        return page.response([meter_data(meter_info(meter)) for meter in page.items])

    @extend_schema(operation_id="createMeter", request=MeterInputSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        serializer = MeterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = serializer.changes()
        changes.setdefault("label", changes["api_name"])
        changes["dimensions"] = tuple(changes.get("dimensions", ()))
        if changes["aggregation"] == "UNIQUE_COUNT" and not changes.get("unique_property"):
            raise RequestValidationError({"uniqueProperty": ["uniqueProperty is required for UNIQUE_COUNT"]})
        meter = services.meter_create(spec=MeterSpec(**changes))
        return Response({"data": meter_data(meter)}, status=status.HTTP_201_CREATED)


class MeterDetailView(APIView):
    operations = {"GET": "fetchMeter", "PUT": "updateMeter", "DELETE": "deleteMeter"}

    @extend_schema(operation_id="fetchMeter", responses={200: OpenApiTypes.OBJECT})
    def get(self, request, meter_id):
        return Response({"data": meter_data(meter_info(_meter_or_404(meter_id)))})

    @extend_schema(operation_id="updateMeter", request=MeterInputSerializer, responses={200: OpenApiTypes.OBJECT})
    def put(self, request, meter_id):
        meter = _meter_or_404(meter_id)
        serializer = MeterInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = serializer.changes()
        aggregation = changes.get("aggregation", meter.aggregation)
        if aggregation == "UNIQUE_COUNT" and not changes.get("unique_property", meter.unique_property):
            raise RequestValidationError({"uniqueProperty": ["uniqueProperty is required for UNIQUE_COUNT"]})
        updated = services.meter_update(meter_id=meter.pk, changes=changes)
        return Response({"data": meter_data(updated)})

    @extend_schema(operation_id="deleteMeter", responses={200: OpenApiTypes.OBJECT})
    def delete(self, request, meter_id):
        meter = _meter_or_404(meter_id)
        services.meter_delete(meter_id=meter.pk)
        return Response({"data": {"message": f"Meter {meter.api_name} deleted"}})


# POST (ingest) and DELETE (cancel) /usage. The common POST, a few events with a bearer token,
# is answered without DRF (``_ingest_fast``): its token is checked with those of the other
# requests of its group commit, in one query, instead of once per request, and DRF's request and
# response machinery is skipped; together that was about half the CPU of a one-event request.
# Anything else, and every POST whose token does not pass, is answered by DRF, so every error is
# the one DRF gives. (A comment, not a docstring: drf-spectacular publishes view docstrings.)
class UsageView(APIView):
    operations = {"POST": "ingestUsage", "DELETE": "cancelUsage"}

    @classmethod
    def as_view(cls, **initkwargs):
        drf_view = super().as_view(**initkwargs)

        @functools.wraps(drf_view)  # keeps what DRF, Django and drf-spectacular read off the view
        def view(request, *args, **kwargs):
            response = _ingest_fast(request) if request.method == "POST" else None
            return response if response is not None else drf_view(request, *args, **kwargs)

        return view

    @extend_schema(operation_id="ingestUsage", request=OpenApiTypes.OBJECT, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        body = request.data
        if not isinstance(body, dict):
            raise RequestValidationError({"events": ['send one event object or {"events": [...]}']})
        events = body.get("events", [body])
        result = services.usage_events_ingest_shared(events=events, client_tenant_id=client_tenant_id(request))
        return Response(
            {"data": {"accepted": result.accepted, "duplicates": result.duplicates}}, status=status.HTTP_201_CREATED
        )

    @extend_schema(operation_id="cancelUsage", request=CancelSerializer, responses={200: OpenApiTypes.OBJECT})
    def delete(self, request):
        serializer = CancelSerializer(data=request.data if isinstance(request.data, dict) else None)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        time_range = data.get("ingestionTimeRange")
        cancelled = services.usage_events_cancel(
            client_tenant_id=client_tenant_id(request),
            event_ids=data.get("eventIds"),
            meter_api_name=data.get("meterApiName"),
            tenant_id=data.get("tenantId"),
            ingested_from=_from_seconds(time_range["startTimeInSeconds"]) if time_range else None,
            ingested_to=_from_seconds(time_range["endTimeInSeconds"]) if time_range else None,
        )
        return Response({"data": {"cancelled": cancelled}})


def _from_seconds(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class UsageQueryView(APIView):
    operations = {"GET": "fetchUsage"}

    @extend_schema(
        operation_id="fetchUsage",
        parameters=[
            UsageQuerySerializer,
            OpenApiParameter("limit", int),
            OpenApiParameter("next_token", str),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, meter_id):
        meter = _meter_or_404(meter_id)
        serializer = UsageQuerySerializer(data=request.query_params)
        if not serializer.is_valid():
            raise RequestValidationError(serializer.errors, location="query")
        params = serializer.validated_data
        limit = parse_limit(request)
        bound = client_tenant_id(request)
        tenant_id = params.get("tenantId")
        if bound is not None:
            if tenant_id is not None and tenant_id != bound:
                raise NotFound(f"Tenant not found for id {tenant_id}", code="tenant_not_found")
            tenant_id = bound
        now = timezone.now()
        end = _from_seconds(params["endTimeInSeconds"]) if "endTimeInSeconds" in params else now
        start = (
            _from_seconds(params["startTimeInSeconds"]) if "startTimeInSeconds" in params else now - timedelta(days=1)
        )
        interval = params["timeGroupingInterval"]
        errors = {}
        try:
            zone = ZoneInfo(params["timeZone"])
        except (ZoneInfoNotFoundError, ValueError):
            errors["timeZone"] = [f"unknown IANA time zone {params['timeZone']!r}"]
        if start >= end:
            errors["startTimeInSeconds"] = ["startTimeInSeconds must be before endTimeInSeconds"]
        elif (end - start) / WINDOW_LENGTH[interval] > sbt_settings.USAGE_QUERY_MAX_WINDOWS:
            errors["timeGroupingInterval"] = [
                f"the range spans more than {sbt_settings.USAGE_QUERY_MAX_WINDOWS} windows: use a larger interval"
            ]
        group_by = params.get("groupBy")
        if group_by is not None and group_by not in meter.dimensions:
            errors["groupBy"] = [
                f"groupBy must be one of the meter's dimensions ({', '.join(meter.dimensions) or 'none'})"
            ]
        if errors:
            raise RequestValidationError(errors, location="query")
        salt = f"metering.usage.{meter.pk}"
        cursor = decode_token(request, salt=salt)
        if cursor is not None:
            types = (str, bool, str, float)
            if len(cursor) != 4 or not all(isinstance(part, kind) for part, kind in zip(cursor, types, strict=True)):
                raise RequestValidationError(
                    {"next_token": ["next_token is malformed or not for this list"]}, location="query"
                )
            cursor = tuple(cursor)
        # one page (plus one result to know whether another page follows), paginated in SQL
        windows = selectors.usage_windows(
            meter=meter,
            tenant_id=tenant_id,
            start=start,
            end=end,
            interval=interval,
            time_zone=params["timeZone"],
            group_by=group_by,
            after=cursor,
            limit=limit + 1,
        )
        page = windows[:limit]
        body = {
            "data": {
                "meterId": str(meter.pk),
                "meterApiName": meter.api_name,
                "aggregation": meter.aggregation,
                "timeGroupingInterval": interval,
                "results": [usage_window_data(window, zone) for window in page],
            }
        }
        if len(windows) > limit:
            body["next_token"] = encode_token(list(usage_window_order(page[-1])), salt=salt)
        return Response(body)


def _accepts_json(accept: str | None) -> bool:
    """Whether DRF's content negotiation would pick plain JSON for this Accept header (only the
    unambiguous cases: no header, or ranges without parameters that include JSON)."""
    if not accept:
        return True
    ranges = [part.strip() for part in accept.split(",")]
    return all(";" not in part for part in ranges) and any(
        part in ("*/*", "application/*", "application/json") for part in ranges
    )


# The fast path parses the body before the token is checked (DRF checks first): it takes only
# bodies this small, so a client without a valid token cannot make the server parse much. 50
# events (USAGE_GROUP_COMMIT_MAX_EVENTS) of up to 5 KB each fit.
FAST_PATH_MAX_BYTES = 256 * 1024


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
        return None
    bearer = BearerCheck(
        token=token,
        uri=request.build_absolute_uri(),
        method=request.method,
        scope=scope_for_operation(UsageView.operations["POST"]),
    )
    try:
        result = services.usage_events_ingest_bearer(events=events, bearer=bearer)
    except services.NotAuthorized:
        return None
    except ServiceError as exc:
        return _json_response(error_body(exc.status_code, exc.message, exc.code, exc.detail), exc.status_code)
    return _json_response({"data": {"accepted": result.accepted, "duplicates": result.duplicates}}, 201)


_ALLOW = ", ".join(UsageView().allowed_methods)


def _json_response(data: dict, status_code: int) -> HttpResponse:
    response = HttpResponse(JSONRenderer().render(data), status=status_code, content_type="application/json")
    response["Allow"] = _ALLOW
    return response
