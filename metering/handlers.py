"""Event-bus subscribers of metering: customers follow onboarding/offboarding, and the
application plane's ingestUsage events are stored like POST /usage."""

from events.registry import inbound_handler, subscriber
from events.selectors import event_tenant_id
from metering.services import metering_customer_create, metering_customer_delete, usage_events_ingest
from sbt_site.errors import InvalidInput


@subscriber("onboardingRequest", name="metering.handlers.create_metering_customer")
def create_metering_customer(event) -> None:
    tenant_id = event_tenant_id(event)
    if tenant_id is not None:
        metering_customer_create(tenant_id=tenant_id)


@subscriber("offboardingRequest", name="metering.handlers.delete_metering_customer")
def delete_metering_customer(event) -> None:
    tenant_id = event_tenant_id(event)
    if tenant_id is not None:
        metering_customer_delete(tenant_id=tenant_id)


@inbound_handler("ingestUsage", operation="ingestUsage")
def ingest_usage(detail: dict, *, client_tenant_id) -> None:
    """``detail`` is one event, or ``{"events": [...]}``; bad events reject the whole request."""
    if not isinstance(detail, dict):
        raise InvalidInput("ingestUsage detail must be an object")
    events = detail.get("events", [detail])
    usage_events_ingest(events=events, client_tenant_id=client_tenant_id)
