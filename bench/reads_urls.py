"""The bench's URLconf (bench/reads_settings.py): the project's routes, plus two bare Django
views that return the same JSON as ``GET /api/v1/tenants`` and ``GET /api/v1/usage/{meterId}``
from the same rows, without authentication, DRF, pagination or parameter checks. They are the
ceiling bench/reads.py measures the real views against; never served by the product."""

import json
from datetime import UTC, datetime

from django.http import HttpResponse
from django.urls import include, path

from metering.models import Meter
from metering.selectors import usage_windows
from sbt_site.api.pagination import encode_token
from sbt_site.urls import handler400, handler404, handler500  # noqa: F401 - the project's error views
from tenants.models import Tenant

PAGE = 100


def _json(body: dict) -> HttpResponse:
    # what DRF's JSONRenderer writes: compact, UTF-8
    return HttpResponse(json.dumps(body, ensure_ascii=False, separators=(",", ":")), content_type="application/json")


def bare_tenants(request):
    rows = list(
        Tenant.objects.order_by("created", "pk").values_list(
            "data", "pk", "registration__pk", "active", "name", "email", "tier", "prices", "config", "created",
            "modified",
        )[: PAGE + 1]
    )  # fmt: skip
    data = [
        {
            **extra,
            "tenantId": str(tenant_id),
            "tenantRegistrationId": str(registration_id) if registration_id else None,
            "sbtaws_active": active,
            "tenantName": name,
            "email": email,
            "tier": tier,
            "prices": prices,
            "tenantConfig": config,
            "created": created.isoformat(),
            "modified": modified.isoformat(),
        }
        for extra, tenant_id, registration_id, active, name, email, tier, prices, config, created, modified in rows[
            :PAGE
        ]
    ]
    body = {"data": data}
    if len(rows) > PAGE:
        last = rows[PAGE - 1]
        body["next_token"] = encode_token([last[9].isoformat(), str(last[1])], salt="tenants.tenant")
    return _json(body)


def bare_usage(request, meter_id):
    meter = Meter.objects.get(pk=meter_id)
    start = datetime.fromtimestamp(int(request.GET["startTimeInSeconds"]), UTC)
    end = datetime.fromtimestamp(int(request.GET["endTimeInSeconds"]), UTC)
    windows = usage_windows(meter=meter, tenant_id=request.GET["tenantId"], start=start, end=end, interval="DAY")
    results = [
        {
            "tenantId": str(window.tenant_id),
            "windowStart": window.window_start.isoformat(),
            "windowEnd": window.window_end.isoformat(),
            "value": int(window.value) if window.value == window.value.to_integral_value() else float(window.value),
            "eventCount": window.event_count,
            "group": window.group,
        }
        for window in windows
    ]
    body = {
        "data": {
            "meterId": str(meter.pk),
            "meterApiName": meter.api_name,
            "aggregation": meter.aggregation,
            "timeGroupingInterval": "DAY",
            "results": results,
        }
    }
    return _json(body)


urlpatterns = [
    path("bare/tenants", bare_tenants),
    path("bare/usage/<uuid:meter_id>", bare_usage),
    path("", include("sbt_site.urls")),
]
