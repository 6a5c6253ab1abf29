"""Schemathesis against the committed OpenAPI document (docs/openapi.yaml): every operation, with
generated valid and invalid requests (its examples, coverage and fuzzing phases, including
methods the document does not declare), answered by the WSGI application in-process, once with
a token holding every scope and once with a token bound to a tenant. No answer may be a server
error.

Only ``not_a_server_error`` is checked: the document declares each operation's success answers,
not its 4xx ones, so schemathesis' status-code conformance would fail on every 404 and 422.

The run is bounded and deterministic (``derandomize``, a fixed number of examples per operation),
so it is a CI test like any other. Path parameters are sometimes the ids of seeded rows, and
POST /usage bodies sometimes events of a seeded meter and tenant, so that operations reach their
real code paths and not only their 404s and 422s. Each operation runs inside the test's
transaction, except POST /usage, which also runs with real transactions: inside one, ingestion
cannot share a group commit and its fast path (metering/api/views.py ``_ingest_fast``) steps
aside for DRF.
"""

from pathlib import Path

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from accounts.services import user_create
from metering.interface import MeterSpec
from metering.services import meter_create, usage_events_ingest
from tenants.tests.factories import tenant_registration_onboard

SCHEMA = schemathesis.openapi.from_path(Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml")
USAGE_INGEST = SCHEMA.include(path="/api/v1/usage", method="POST")

# The ids of the seeded rows by path parameter name (POST /usage events name the tenant_ids too);
# set by the ``world`` fixture before a test generates its cases.
SEEDED: dict[str, list[str]] = {}

FUZZ = settings(
    max_examples=15, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


@SCHEMA.hook
def flatmap_path_parameters(context, path_parameters):
    if not path_parameters:
        return st.just(path_parameters)
    return st.fixed_dictionaries(
        {
            name: st.sampled_from([value, *SEEDED[name]]) if SEEDED.get(name) else st.just(value)
            for name, value in path_parameters.items()
        }
    )


anything = st.text(max_size=20) | st.integers() | st.floats() | st.none() | st.booleans()
valid_event = st.fixed_dictionaries(
    {
        "eventId": st.text(alphabet="abcdefghij0123456789-", min_size=1, max_size=30),
        "meterApiName": st.just("api-calls"),
        "tenantId": st.deferred(lambda: st.sampled_from(SEEDED["tenant_id"])),
        "meterValue": st.integers(-(10**6), 10**6) | st.floats(-1e6, 1e6) | st.decimals(-1000, 1000).map(str),
    },
    optional={"dimensions": st.dictionaries(st.sampled_from(["region", "plan", "other"]), anything, max_size=3)},
)
# A valid event, or one with a field replaced by anything: a near miss tests more than noise.
usage_event = valid_event | valid_event.flatmap(
    lambda event: st.sampled_from([*event, "timestamp"]).flatmap(
        lambda field: anything.map(lambda value: {**event, field: value})
    )
)


@SCHEMA.hook
def flatmap_body(context, body):
    if (context.operation.method.upper(), context.operation.path) != ("POST", "/api/v1/usage"):
        return st.just(body)
    return st.just(body) | usage_event | st.fixed_dictionaries({"events": st.lists(usage_event, max_size=4)})


@pytest.fixture
def wsgi_app():
    """The project's WSGI application without the per-request cleanup of database connections,
    which would close the connection holding the test's transaction (Django's test client leaves
    it out too)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def world(db):
    """Two onboarded tenants, a meter with dimensions and some usage of each, a tenant user."""
    registration, other = tenant_registration_onboard("fuzz-acme"), tenant_registration_onboard("fuzz-other")
    meter = meter_create(
        spec=MeterSpec(api_name="api-calls", label="API calls", aggregation="SUM", dimensions=("region", "plan"))
    )
    usage_events_ingest(
        events=[
            {"eventId": f"seed-{number}", "meterApiName": "api-calls", "tenantId": str(tenant.pk),
             "meterValue": number, "dimensions": {"region": "eu" if number % 2 else "us", "plan": "pro"}}
            for number in range(6)
            for tenant in (registration.tenant, other.tenant)
        ]
    )  # fmt: skip
    user = user_create(
        user_name="fuzz-user", email="fuzz-user@example.test", user_role="TenantUser", tenant_id=registration.tenant_id
    )
    SEEDED.update(
        {
            "tenant_id": [str(registration.tenant_id), str(other.tenant_id)],
            "registration_id": [str(registration.pk), str(other.pk)],
            "tenant_name": [registration.tenant.name],
            "meter_id": [str(meter.id)],
            "user_name": [user.user_name],
            "webhook_path": ["stripe/webhook"],
        }
    )
    yield registration.tenant
    SEEDED.clear()


@pytest.fixture(params=["every scope", "tenant-bound"])
def token(request, world, make_token):
    return make_token() if request.param == "every scope" else make_token(tenant=world)


def _call(case, token: str, app) -> None:
    response = case.call(app=app, headers={"Authorization": f"Bearer {token}"})
    case.validate_response(response, checks=[not_a_server_error])


@SCHEMA.parametrize()
@FUZZ
def test_no_request_is_a_server_error(case, token, wsgi_app):
    _call(case, token, wsgi_app)


@USAGE_INGEST.parametrize()
@settings(FUZZ, max_examples=40)
@pytest.mark.django_db(transaction=True)
def test_no_usage_ingestion_through_the_fast_path_is_a_server_error(case, token, wsgi_app):
    _call(case, token, wsgi_app)
