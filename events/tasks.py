"""Celery tasks of the event bus: thin wrappers around services."""

from celery import shared_task

from events import services


@shared_task(name="events.dispatch_event", autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def dispatch_event(event_id: str) -> None:
    services.event_dispatch(event_id=event_id)


@shared_task(name="events.sweep")
def sweep_events() -> dict:
    return services.events_sweep()


@shared_task(name="events.deliver_event")
def deliver_event(delivery_id: str, deferrals: int = 0) -> None:
    # Retries are the delivery's own (backoff, dead-letter), scheduled by the service; so are the
    # re-enqueues of a delivery whose subscription has its limit of attempts under way.
    services.delivery_attempt(delivery_id=delivery_id, deferrals=deferrals)


@shared_task(name="events.publish_to_bus")
def publish_to_bus() -> dict:
    # Retries are each publication's own (backoff, dead-letter), recorded by the service; a
    # backlog larger than one run's limit goes on in the next run.
    result = services.bus_publications_send()
    if result["more"]:
        publish_to_bus.delay()
    return result
