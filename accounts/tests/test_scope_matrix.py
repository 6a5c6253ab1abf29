"""Every API route, crossed with {no token, token without the route's scope, token with it}.

The routes come from the URL configuration itself, so a route added later by any app is covered
without editing this file, and a route that declares no operation (hence no scope) fails here.
"""

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient
from rest_framework.views import APIView

from sbt_site.conf import SCOPE_DESCRIPTIONS, sbt_settings

API_PREFIX = "api/v1/"
# Routes that are public by contract (CONTRACT.md); any other AllowAny route fails the test.
# The billing webhook and Firehose's endpoint have their own credential (a signature, an access key).
PUBLIC_ROUTES = ("api/v1/auth-info", "api/v1/tenant-config", "api/v1/billing/", "api/v1/usage/firehose")
METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def _fill(route: str) -> str:
    """A concrete path for a route: path converters and regex groups get generic values."""
    unique = uuid.uuid4()

    def converter(match):
        kind = match.group(1) or "str"
        return {"uuid": str(unique), "int": "1"}.get(kind, f"matrix-{unique.hex[:8]}")

    path = re.sub(r"<(?:(\w+):)?(\w+)>", converter, route)
    if path.startswith("^"):  # a re_path: replace each named group by a value its regex accepts
        path = path.lstrip("^").rstrip("$")
        for candidate in (str(unique), "1", f"matrix-{unique.hex[:8]}"):
            filled = re.sub(r"\(\?P<\w+>[^)]*\)", candidate, path)
            if re.fullmatch(route.lstrip("^").rstrip("$"), filled):
                return "/" + filled
        raise AssertionError(f"Cannot fill the path parameters of {route!r}")
    return "/" + path


def api_routes(urlconf: str | None = None):
    """(route, view class, method, operation or None) for every API method."""
    cases = []
    for route, pattern in _walk(get_resolver(urlconf).url_patterns):
        if not route.lstrip("^").startswith(API_PREFIX):
            continue
        view_class = getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)
        assert view_class is not None and issubclass(view_class, APIView), (
            f"{route} is not a DRF view: API routes must go through the API plumbing"
        )
        actions = getattr(pattern.callback, "actions", None) or {}
        for method in METHODS:
            if actions and method not in actions:
                continue
            if not actions and not hasattr(view_class, method):
                continue
            operations = getattr(view_class, "operations", None) or {}
            operation = operations.get(actions.get(method)) or operations.get(method.upper())
            cases.append((route.lstrip("^"), view_class, method, operation))
    return cases


def is_public(view_class) -> bool:
    return any(permission is AllowAny for permission in view_class.permission_classes)


ROUTES = api_routes()
PROTECTED = [case for case in ROUTES if not is_public(case[1])]
PUBLIC = [case for case in ROUTES if is_public(case[1])]


def _id(case):
    return f"{case[2].upper()} {case[0]}"


def test_the_matrix_sees_the_routes():
    assert ("api/v1/users", "get") in {(route, method) for route, _, method, _ in ROUTES}
    assert len(PROTECTED) >= 7


def test_a_route_without_an_operation_is_caught():
    # The probe URLconf has a view that declares no operation: the walk reports it as such,
    # which makes test_route_requires_its_scope fail for it.
    undeclared = [case for case in api_routes("sbt_site.tests.probe_urls") if case[0] == "api/v1/undeclared"]
    assert [(method, operation) for _, _, method, operation in undeclared] == [("get", None)]


@pytest.mark.parametrize("case", PUBLIC, ids=_id)
def test_only_the_contracts_public_routes_are_public(case):
    route = case[0]
    assert route.startswith(PUBLIC_ROUTES), f"{route} needs no token, but CONTRACT.md does not make it public"


@pytest.mark.parametrize("case", PROTECTED, ids=_id)
@pytest.mark.django_db
def test_route_requires_its_scope(case, make_token):
    route, view_class, method, operation = case
    assert operation, (
        f"{view_class.__name__} declares no operation for {method.upper()} {route}: add it to `operations`"
    )
    scope = sbt_settings.SCOPES.get(operation)
    assert scope in SCOPE_DESCRIPTIONS, f"operation {operation!r} of {route} has no known scope in SBT['SCOPES']"
    path = _fill(route)

    def call(token: str | None):
        client = APIClient()
        if token:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return getattr(client, method)(path, {}, format="json") if method != "get" else client.get(path)

    anonymous = call(None)
    assert anonymous.status_code == 401, anonymous.content
    assert anonymous.json()["message"] == "Unauthorized"

    others = " ".join(name for name in SCOPE_DESCRIPTIONS if name != scope)
    forbidden = call(make_token(scopes=others))
    assert forbidden.status_code == 403, forbidden.content
    assert forbidden.json()["message"] == "Forbidden"

    allowed = call(make_token(scopes=scope))
    assert allowed.status_code not in (401, 403), allowed.content
    assert allowed.status_code < 500, allowed.content
