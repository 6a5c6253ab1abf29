"""The usage explorer: any meter, one tenant or all, a date range, a granularity, an IANA time
zone and a group-by dimension, answered by the same checked query as GET /usage/{meterId}
(``metering.selectors.usage_query_check``), as a chart, a table and a CSV file.

Bad input is a form error (the selector's refusals included, on the field they name), never a
500: the form checks what it must to build the query (dates, the zone), the selector the rest.
"""

import csv
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from metering.interface import UsageWindow
from metering.selectors import ADDITIVE_AGGREGATIONS, meter_list, usage_query_check, usage_query_page
from sbt_site.errors import InvalidInput
from tenants.selectors import tenant_list

GRANULARITIES = (("HOUR", "hour"), ("DAY", "day"), ("WEEK", "week"), ("MONTH", "month"))
DEFAULT_DAYS = 7
ROWS_SHOWN = 1000  # the table's rows; the CSV has them all
SERIES_SHOWN = 10  # the chart's lines; the largest by total
# The selector's names for its query parameters (the API's), as the form's fields.
FORM_FIELDS = {
    "timeZone": "time_zone",
    "startTimeInSeconds": "start",
    "endTimeInSeconds": "end",
    "timeGroupingInterval": "granularity",
    "groupBy": "group_by",
    "tenantId": "tenant",
}


class UsageExplorerForm(forms.Form):
    meter = forms.ModelChoiceField(queryset=meter_list().order_by("api_name"), empty_label=None)
    tenant = forms.ModelChoiceField(queryset=tenant_list().order_by("name"), required=False, empty_label="All tenants")
    start = forms.DateField(label="from", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="to (included)", widget=forms.DateInput(attrs={"type": "date"}))
    granularity = forms.ChoiceField(choices=GRANULARITIES, initial="DAY")
    time_zone = forms.CharField(
        label="time zone", initial="UTC", max_length=64, widget=forms.TextInput(attrs={"list": "time-zones"})
    )
    group_by = forms.CharField(label="group by", required=False, max_length=128)

    def clean_time_zone(self):
        name = self.cleaned_data["time_zone"].strip()
        try:
            return ZoneInfo(name).key
        except (ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(f"{name!r} is not an IANA time zone (e.g. Europe/Paris, UTC).") from None

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        if cleaned["end"] < cleaned["start"]:
            self.add_error("end", "The range ends before it starts.")
            return cleaned
        # whole days of the chosen zone: midnight of the first day to midnight after the last
        zone = ZoneInfo(cleaned["time_zone"])
        cleaned["start_at"] = datetime.combine(cleaned["start"], time(), zone)
        cleaned["end_at"] = datetime.combine(cleaned["end"] + timedelta(days=1), time(), zone)
        try:
            self.query = usage_query_check(
                meter=cleaned["meter"],
                client_tenant_id=None,
                now=timezone.now(),
                tenant_id=cleaned["tenant"].pk if cleaned["tenant"] else None,
                start=cleaned["start_at"],
                end=cleaned["end_at"],
                interval=cleaned["granularity"],
                time_zone=cleaned["time_zone"],
                group_by=cleaned["group_by"].strip() or None,
            )
        except InvalidInput as exc:
            for error in exc.detail or [{"loc": [], "msg": exc.message}]:
                self.add_error(FORM_FIELDS.get(error["loc"][-1]) if error["loc"] else None, error["msg"])
        return cleaned


def default_query(now: datetime) -> dict:
    """The explorer's first view: the first meter, all tenants, per day over the last week (UTC)."""
    meter = meter_list().order_by("api_name").first()
    today = now.astimezone(ZoneInfo("UTC")).date()
    return {
        "meter": meter.pk if meter else "",
        "start": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
        "end": today.isoformat(),
        "granularity": "DAY",
        "time_zone": "UTC",
    }


@dataclass(frozen=True)
class UsageRow:
    window_start: datetime  # in the query's zone
    window_end: datetime
    tenant_id: object
    tenant_name: str
    group: str
    value: Decimal
    event_count: int


def usage_rows(windows: list[UsageWindow], *, time_zone: str, group_by: str | None) -> list[UsageRow]:
    zone = ZoneInfo(time_zone)
    names = dict(tenant_list().filter(pk__in={window.tenant_id for window in windows}).values_list("pk", "name"))
    return [
        UsageRow(
            window_start=window.window_start.astimezone(zone),
            window_end=window.window_end.astimezone(zone),
            tenant_id=window.tenant_id,
            tenant_name=names.get(window.tenant_id, str(window.tenant_id)),
            group=str(window.group.get(group_by) or "") if group_by else "",
            value=window.value,
            event_count=window.event_count,
        )
        for window in windows
    ]


def number(value: Decimal) -> str:
    """``31``, not ``31.000000000`` nor ``3.1E+1``."""
    return format(value.normalize(), "f")


def window_label(moment: datetime, granularity: str) -> str:
    return moment.strftime("%Y-%m-%d %H:%M" if granularity == "HOUR" else "%Y-%m-%d")


def chart_data(rows: list[UsageRow], *, granularity: str, additive: bool, unit: str, all_tenants: bool) -> dict:
    """Chart.js data: one line per tenant (when all tenants) and group, the SERIES_SHOWN largest;
    a window without usage is 0 for a meter that adds up, a gap otherwise."""
    labels = sorted({row.window_start for row in rows})
    series: dict[str, dict] = {}
    for row in rows:
        name = " · ".join(part for part in (row.tenant_name if all_tenants else "", row.group) if part) or "usage"
        series.setdefault(name, {})[row.window_start] = row.value
    largest = sorted(series.items(), key=lambda item: -sum(item[1].values()))[:SERIES_SHOWN]
    empty = 0 if additive else None
    return {
        "labels": [window_label(label, granularity) for label in labels],
        "datasets": [
            {"label": name, "data": [float(values[label]) if label in values else empty for label in labels]}
            for name, values in largest
        ],
        "yTitle": unit or "value",
        "xTitle": f"window start ({granularity.lower()})",
        "truncated": len(series) > SERIES_SHOWN,
    }


def usage_csv(form: UsageExplorerForm, rows: list[UsageRow]) -> HttpResponse:
    meter = form.cleaned_data["meter"]
    filename = f"usage-{meter.api_name}-{form.cleaned_data['start']}-{form.cleaned_data['end']}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(["windowStart", "windowEnd", "tenantId", "tenantName", "group", "value", "eventCount"])
    for row in rows:
        writer.writerow(
            [
                row.window_start.isoformat(),
                row.window_end.isoformat(),
                row.tenant_id,
                row.tenant_name,
                row.group,
                number(row.value),
                row.event_count,
            ]
        )
    return response


def usage_explorer_view(request, *, site):
    if not (request.user.has_perm("metering.view_meter") or request.user.has_perm("metering.change_meter")):
        raise PermissionDenied
    data = request.GET if "meter" in request.GET else default_query(timezone.now())
    form = UsageExplorerForm(data)
    context = {**site.each_context(request), "title": "Usage explorer", "form": form}
    if form.is_valid():
        query, cleaned = form.query, form.cleaned_data
        wants_csv = request.GET.get("format") == "csv"
        windows = usage_query_page(query=query, after=None, limit=None if wants_csv else ROWS_SHOWN + 1)
        rows = usage_rows(windows, time_zone=query.time_zone, group_by=query.group_by)
        if wants_csv:
            return usage_csv(form, rows)
        meter = cleaned["meter"]
        additive = meter.aggregation in ADDITIVE_AGGREGATIONS
        shown = rows[:ROWS_SHOWN]
        context |= {
            "meter": meter,
            # formatted here: the template's date filter would show them in UTC, not in the query's zone
            "rows": [
                {
                    "row": row,
                    "start": f"{row.window_start:%Y-%m-%d %H:%M}",
                    "end": f"{row.window_end:%Y-%m-%d %H:%M}",
                    "value": number(row.value),
                }
                for row in shown
            ],
            "truncated": len(rows) > ROWS_SHOWN,
            "rows_shown": ROWS_SHOWN,
            "total": number(sum((row.value for row in rows), Decimal(0))) if additive and rows else None,
            "chart": chart_data(
                shown,
                granularity=query.interval,
                additive=additive,
                unit=meter.unit,
                all_tenants=query.tenant_id is None,
            ),
            "csv_query": urlencode({**dict(data.items()), "format": "csv"}),
            "range_label": f"{cleaned['start_at']:%Y-%m-%d %H:%M} to {cleaned['end_at']:%Y-%m-%d %H:%M}",
        }
    context["time_zones"] = sorted(available_timezones())
    return TemplateResponse(request, "console/usage_explorer.html", context)
