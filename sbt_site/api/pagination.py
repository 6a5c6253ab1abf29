"""``limit`` / ``next_token`` pagination (CONTRACT.md "Basics").

Keyset ("seek") pagination: the token holds the sort key of the last item served, signed so
that a client cannot forge or corrupt it. Items added while a client pages through a list never
make it skip or repeat an item, unlike offsets.

    page = paginate(Tenant.objects.all(), request, ordering=("created", "pk"))
    return page.response([serialize(tenant) for tenant in page.items])
"""

from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.core import signing
from django.db.models import Q, QuerySet
from rest_framework.response import Response

from sbt_site.api.exceptions import RequestValidationError
from sbt_site.conf import sbt_settings


def parse_limit(request, *, max_limit: int | None = None) -> int:
    """The validated ``limit`` query parameter (default and maximum from settings)."""
    max_limit = max_limit or sbt_settings.PAGE_SIZE_MAX
    raw = request.query_params.get("limit")
    if raw in (None, ""):
        return min(sbt_settings.PAGE_SIZE_DEFAULT, max_limit)
    try:
        limit = int(raw)
    except ValueError:
        limit = None
    if limit is None or not 1 <= limit <= max_limit:
        raise RequestValidationError(
            {"limit": [f"limit must be an integer between 1 and {max_limit}"]}, location="query"
        )
    return limit


def encode_token(values: list, *, salt: str) -> str:
    """An opaque, signed cursor holding ``values`` (JSON-serialisable)."""
    return signing.dumps(values, salt=f"sbt.page.{salt}", compress=True)


def decode_token(request, *, salt: str) -> list | None:
    """The values held by the ``next_token`` query parameter; None for the first page."""
    token = request.query_params.get("next_token")
    if not token:
        return None
    try:
        values = signing.loads(token, salt=f"sbt.page.{salt}")
    except signing.BadSignature:
        values = None
    if not isinstance(values, list):
        raise RequestValidationError({"next_token": ["next_token is malformed or not for this list"]}, location="query")
    return values


@dataclass
class Page:
    items: list
    next_token: str | None

    def response(self, data: list) -> Response:
        body = {"data": data}
        if self.next_token:
            body["next_token"] = self.next_token
        return Response(body)


def _field_name(order: str) -> str:
    return order.lstrip("-")


def _keyset_filter(ordering: tuple[str, ...], values: list) -> Q:
    """Rows strictly after ``values`` in ``ordering`` (lexicographic)."""
    clauses = []
    for position, order in enumerate(ordering):
        equal = {_field_name(prior): values[index] for index, prior in enumerate(ordering[:position])}
        lookup = "lt" if order.startswith("-") else "gt"
        clauses.append(Q(**equal, **{f"{_field_name(order)}__{lookup}": values[position]}))
    return reduce(or_, clauses)


def paginate(
    queryset: QuerySet, request, *, ordering: tuple[str, ...] = ("created", "pk"), max_limit: int | None = None
) -> Page:
    """One page of ``queryset`` in a stable order; ``ordering`` must end with a unique field."""
    limit = parse_limit(request, max_limit=max_limit)
    model = queryset.model
    salt = model._meta.label_lower
    fields = [
        model._meta.pk if _field_name(order) == "pk" else model._meta.get_field(_field_name(order))
        for order in ordering
    ]
    cursor = decode_token(request, salt=salt)
    if cursor is not None:
        if len(cursor) != len(ordering):
            raise RequestValidationError(
                {"next_token": ["next_token is malformed or not for this list"]}, location="query"
            )
        try:
            values = [field.to_python(value) for field, value in zip(fields, cursor, strict=True)]
        except Exception:  # noqa: BLE001 - any failure to decode is the client's malformed token
            raise RequestValidationError({"next_token": ["next_token is malformed"]}, location="query") from None
        queryset = queryset.filter(_keyset_filter(ordering, values))
    rows = list(queryset.order_by(*ordering)[: limit + 1])
    items, more = rows[:limit], len(rows) > limit
    next_token = None
    if more:
        last = items[-1]
        next_token = encode_token([field.value_to_string(last) for field in fields], salt=salt)
    return Page(items=items, next_token=next_token)
