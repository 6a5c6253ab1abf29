"""Meters and usage (CONTRACT.md "Meters", "Usage"): thin views over services and selectors."""

import functools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from metering import selectors, services
from metering.api.fast import _ingest_fast
from metering.api.serializers import (
    CancelSerializer,
    MeterInputSerializer,
    UsageQuerySerializer,
    meter_data,
    usage_window_data,
)
from metering.interface import MeterSpec, usage_window_order
from metering.models import Meter
from sbt_site.api.exceptions import RequestValidationError
from sbt_site.api.pagination import decode_token, encode_token, paginate, parse_limit
from sbt_site.api.permissions import client_tenant_id
from sbt_site.errors import NotFound


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
        return page.response([meter_data(selectors.meter_info(meter)) for meter in page.items])

    @extend_schema(operation_id="createMeter", request=MeterInputSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        serializer = MeterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = serializer.changes()
        changes.setdefault("label", "")
        changes["dimensions"] = tuple(changes.get("dimensions", ()))
        meter = services.meter_create(spec=MeterSpec(**changes))
        return Response({"data": meter_data(meter)}, status=status.HTTP_201_CREATED)


class MeterDetailView(APIView):
    operations = {"GET": "fetchMeter", "PUT": "updateMeter", "DELETE": "deleteMeter"}

    @extend_schema(operation_id="fetchMeter", responses={200: OpenApiTypes.OBJECT})
    def get(self, request, meter_id):
        return Response({"data": meter_data(selectors.meter_info(_meter_or_404(meter_id)))})

    @extend_schema(operation_id="updateMeter", request=MeterInputSerializer, responses={200: OpenApiTypes.OBJECT})
    def put(self, request, meter_id):
        meter = _meter_or_404(meter_id)
        serializer = MeterInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        updated = services.meter_update(meter_id=meter.pk, changes=serializer.changes())
        return Response({"data": meter_data(updated)})

    @extend_schema(operation_id="deleteMeter", responses={200: OpenApiTypes.OBJECT})
    def delete(self, request, meter_id):
        meter = _meter_or_404(meter_id)
        services.meter_delete(meter_id=meter.pk)
        return Response({"data": {"message": f"Meter {meter.api_name} deleted"}})


# POST (ingest) and DELETE (cancel) /usage. The common POST, a few events with a bearer token,
# is answered without DRF (metering/api/fast.py, which says what it bypasses); anything else, and
# every POST whose token does not pass, is answered by DRF, so every error is the one DRF gives.
# metering/checks.py keeps this view's DRF classes equal to what the fast path emulates.
# (A comment, not a docstring: drf-spectacular publishes view docstrings.)
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
        query = selectors.usage_query_check(
            meter=meter,
            client_tenant_id=client_tenant_id(request),
            now=timezone.now(),
            tenant_id=params.get("tenantId"),
            start=_from_seconds(params["startTimeInSeconds"]) if "startTimeInSeconds" in params else None,
            end=_from_seconds(params["endTimeInSeconds"]) if "endTimeInSeconds" in params else None,
            interval=params["timeGroupingInterval"],
            time_zone=params["timeZone"],
            group_by=params.get("groupBy"),
        )
        salt = f"metering.usage.{meter.pk}"
        cursor = decode_token(request, salt=salt)
        if cursor is not None:
            types = (str, bool, str, float)
            if len(cursor) != 4 or not all(isinstance(part, kind) for part, kind in zip(cursor, types, strict=True)):
                raise RequestValidationError(
                    {"next_token": ["next_token is malformed or not for this list"]}, location="query"
                )
            cursor = tuple(cursor)
        # one page, plus one result to know whether another page follows
        windows = selectors.usage_query_page(query=query, after=cursor, limit=limit + 1)
        page = windows[:limit]
        zone = ZoneInfo(query.time_zone)
        body = {
            "data": {
                "meterId": str(meter.pk),
                "meterApiName": meter.api_name,
                "aggregation": meter.aggregation,
                "timeGroupingInterval": query.interval,
                "results": [usage_window_data(window, zone) for window in page],
            }
        }
        if len(windows) > limit:
            body["next_token"] = encode_token(list(usage_window_order(page[-1])), salt=salt)
        return Response(body)
