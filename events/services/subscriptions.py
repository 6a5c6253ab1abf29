"""Outbound webhook subscriptions: their URL (checked against the egress policy), event types
(checked against the catalogue), signing secret, and the operator's test event."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from events import crypto, egress
from events.catalogue import (
    canonical_name,
    control_plane_source,
    name_refusal,
)
from events.models import Delivery, Event, Subscription
from events.services.deliveries import _delivery_enqueue
from sbt_site.errors import InvalidInput

EVENT_TYPE_MAX_LENGTH = 128


SECRET_MIN_LENGTH = 16


TEST_EVENT_TYPE = "subscriptionTest"


def subscription_url_validate(url: str) -> str:
    """The URL if a subscription may send to it: http(s), and a host whose every address the
    egress policy allows (events.egress). A name that does not resolve is refused too: it cannot
    be checked, and would only fail at delivery. Delivery checks again when it connects."""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except DjangoValidationError:
        raise InvalidInput(
            f"{url!r} is not a valid http(s) URL", detail=[{"loc": ["url"], "msg": "invalid URL", "type": "url"}]
        ) from None
    try:
        egress.url_check(url)
    except (egress.DestinationRefused, egress.DestinationUnresolved) as exc:
        raise InvalidInput(
            f"{url!r} cannot receive webhooks: {exc}",
            detail=[{"loc": ["url"], "msg": str(exc), "type": "egress_policy"}],
        ) from None
    return url


def event_types_normalize(event_types: list[str]) -> list[str]:
    """Plain, de-duplicated names; InvalidInput names the first that cannot be an event type.

    Custom names are allowed, except those ``events.catalogue.name_refusal`` refuses (the rule
    POST /events follows too): one a typo away from a standard event (``onbordingRequest``) would
    subscribe to nothing, silently."""
    names = []
    for raw in event_types:
        name = canonical_name(raw.strip())
        if not name or len(name) > EVENT_TYPE_MAX_LENGTH or any(char.isspace() for char in name):
            raise InvalidInput(
                f"{raw!r} is not an event type name (no spaces, 1 to {EVENT_TYPE_MAX_LENGTH} characters)",
                detail=[{"loc": ["eventTypes"], "msg": "invalid event type", "type": "value_error"}],
            )
        refusal = name_refusal(raw.strip())
        if refusal is not None:
            raise InvalidInput(refusal, detail=[{"loc": ["eventTypes"], "msg": refusal, "type": "value_error"}])
        names.append(name)
    return list(dict.fromkeys(names))


def _validated_secret(secret: str) -> str:
    if len(secret) < SECRET_MIN_LENGTH:
        raise InvalidInput(
            f"A signing secret needs at least {SECRET_MIN_LENGTH} characters",
            detail=[{"loc": ["secret"], "msg": "too short", "type": "value_error"}],
        )
    return secret


@transaction.atomic
def subscription_create(
    *,
    url: str,
    event_types: list[str],
    secret: str | None = None,
    description: str = "",
    enabled: bool = True,
) -> tuple[Subscription, str]:
    """Create an outbound webhook; returns it and its signing secret in clear (generated when
    not given). The secret is stored encrypted; this is the only time it is returned."""
    secret = _validated_secret(secret) if secret else crypto.secret_generate()
    subscription = Subscription.objects.create(
        url=subscription_url_validate(url),
        event_types=event_types_normalize(event_types),
        description=description,
        enabled=enabled,
        secret_encrypted=crypto.secret_encrypt(secret),
    )
    return subscription, secret


@transaction.atomic
def subscription_update(
    *,
    subscription: Subscription,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    secret: str | None = None,
) -> Subscription:
    """Change what is given; a new ``secret`` replaces the old one for every later attempt."""
    if url is not None:
        subscription.url = subscription_url_validate(url)
    if event_types is not None:
        subscription.event_types = event_types_normalize(event_types)
    if description is not None:
        subscription.description = description
    if enabled is not None:
        subscription.enabled = enabled
    if secret:
        subscription.secret_encrypted = crypto.secret_encrypt(_validated_secret(secret))
    subscription.save()
    return subscription


@transaction.atomic
def subscription_send_test_event(*, subscription: Subscription) -> Delivery:
    """Send a ``subscriptionTest`` event to this subscription only, to check its endpoint and
    its signature verification; the delivery is recorded like any other."""
    event = Event.objects.create(
        detail_type=TEST_EVENT_TYPE,
        source=control_plane_source(),
        detail={"subscriptionId": str(subscription.pk), "message": "Test event from the SBT control plane"},
        dispatched_at=timezone.now(),  # fanned out to this one subscription only, below
    )
    delivery = Delivery.objects.create(event=event, subscription=subscription)
    _delivery_enqueue(delivery.pk)
    return delivery
