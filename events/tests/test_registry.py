"""Subscribers are stored by their explicit name, never by where their function lives; the
tenant an event is about is read one way."""

from uuid import UUID

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from billing import handlers as billing_handlers
from events import registry
from events.models import Event, HandlerRun
from events.selectors import event_tenant_id
from events.services import event_publish
from metering import handlers as metering_handlers
from sbt_site.errors import InvalidInput

NAME = "tests.registry.durable"


@pytest.fixture
def cleanup():
    yield
    registry._subscribers.pop("registryProbe", None)
    registry._subscribers.pop("registryOther", None)


def test_a_subscriber_is_found_and_stored_by_its_name_not_its_python_location(
    cleanup, db, django_capture_on_commit_callbacks
):
    calls = []

    def located_anywhere(event):
        calls.append(event.pk)

    registry.subscriber("registryProbe", name=NAME)(located_anywhere)
    assert registry.handler_by_name(NAME) is located_anywhere
    assert registry.handler_by_name(f"{located_anywhere.__module__}.{located_anywhere.__qualname__}") is None

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        event = event_publish(detail_type="registryProbe", detail={})
    assert calls == [event.pk]
    assert list(HandlerRun.objects.filter(event=event).values_list("handler", "status")) == [
        (NAME, HandlerRun.Status.SUCCEEDED)
    ]


def test_a_name_is_required_and_registering_another_function_under_a_taken_name_raises(cleanup):
    def first(event):
        pass

    def second(event):
        pass

    with pytest.raises(TypeError):
        registry.subscriber("registryProbe")(first)
    with pytest.raises(ValueError, match="needs a name"):
        registry.subscriber("registryProbe", name="")
    registry.subscriber("registryProbe", name=NAME)(first)
    registry.subscriber("registryProbe", "registryOther", name=NAME)(first)  # the same function again: fine
    with pytest.raises(ValueError, match=f"already registered .*{first.__qualname__}"):
        registry.subscriber("registryOther", name=NAME)(second)
    assert registry.subscribers_for("registryOther") == {NAME: first}


@pytest.mark.parametrize(
    ("name", "handler"),
    [
        ("billing.handlers.create_billing_customer", billing_handlers.create_billing_customer),
        ("billing.handlers.delete_billing_customer", billing_handlers.delete_billing_customer),
        ("billing.handlers.create_billing_user", billing_handlers.create_billing_user),
        ("billing.handlers.delete_billing_user", billing_handlers.delete_billing_user),
        ("metering.handlers.create_metering_customer", metering_handlers.create_metering_customer),
        ("metering.handlers.delete_metering_customer", metering_handlers.delete_metering_customer),
    ],
)
def test_the_subscribers_stored_before_names_were_explicit_are_found_by_the_name_their_runs_hold(name, handler):
    # Their runs were stored under the functions' module.qualname of the time: these names must
    # not change, wherever the functions move.
    assert registry.handler_by_name(name) is handler


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ({"tenantId": "12345678-1234-5678-1234-567812345678"}, UUID("12345678-1234-5678-1234-567812345678")),
        ({"tenantId": "not-a-tenant"}, None),
        ({"tenantId": None}, None),
        ({}, None),
        (["tenantId"], None),
    ],
)
def test_the_tenant_of_an_event_is_its_detail_tenant_id_when_that_is_a_uuid(detail, expected):
    event = Event(detail_type="onboardingRequest", detail=detail)
    assert event_tenant_id(event) == expected
    if expected is None:
        with pytest.raises(InvalidInput, match=r"no valid detail\.tenantId"):
            event_tenant_id(event, required=True)


@pytest.fixture
def inbound_cleanup():
    yield
    for name in ("registryInbound", "provisionSuccess"):
        for handler in [h for h in registry.inbound_handlers_for(name) if h.__module__ == __name__]:
            registry._inbound_handlers[name].pop(handler)


def test_an_inbound_handler_declares_the_operation_its_type_performs(inbound_cleanup):
    def handler(detail, *, client_tenant_id):
        pass

    with pytest.raises(TypeError):
        registry.inbound_handler("registryInbound")(handler)
    with pytest.raises(ImproperlyConfigured, match="noSuchOperation"):
        registry.inbound_handler("registryInbound", operation="noSuchOperation")
    with pytest.raises(ValueError, match="published by the control plane"):
        registry.inbound_handler("onboardingRequest", operation="putEvents")(handler)
    # The catalogue declares the standard types; a handler disagreeing with it fails at startup.
    with pytest.raises(ValueError, match="declares 'putEvents' for provisionSuccess, which performs"):
        registry.inbound_handler("provisionSuccess", operation="putEvents")(handler)
    assert registry.inbound_operation("provisionSuccess") == "updateTenantRegistration"
    assert registry.inbound_operation("activateSuccess") == "updateTenantRegistration", "no handler, still guarded"
    # A custom type: its handlers declare it, and must agree.
    assert registry.inbound_operation("registryInbound") == "putEvents"
    registry.inbound_handler("registryInbound", operation="ingestUsage")(handler)
    assert registry.inbound_operation("registryInbound") == "ingestUsage"
    with pytest.raises(ValueError, match="declares 'putEvents' for registryInbound"):
        registry.inbound_handler("registryInbound", operation="putEvents")(lambda detail, **_: None)


def test_the_shipped_inbound_handlers_declare_the_catalogues_operations():
    from tenants import handlers as tenant_handlers

    assert registry.inbound_handlers_for("provisionSuccess") == [tenant_handlers.apply_provision_success]
    assert registry.inbound_handlers_for("ingestUsage") == [metering_handlers.ingest_usage]
    assert registry.inbound_handled_types() == [
        "deprovisionFailure",
        "deprovisionSuccess",
        "ingestUsage",
        "provisionFailure",
        "provisionSuccess",
    ]
