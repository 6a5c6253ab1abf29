"""IBilling: the interface every billing provider implements.

The control plane's models are the system of record (BillingCustomer, BillingUser, UsagePush,
WebhookEvent); a provider mirrors them into an external system and hands back its ids. Only the
dataclasses below cross this boundary, never a vendor SDK object.

Every method must be idempotent: the services call them again after a crash, a timeout or a
dropped response, with the same arguments, and expect no second customer, subscription or
usage record. Failures are raised as ``sbt_site.errors.ProviderError(retryable=...)``.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from sbt_site.errors import ServiceError


class WebhookVerificationError(ServiceError):
    """A webhook request whose signature, timestamp or body cannot be trusted (always 400)."""

    status_code = 400
    code = "invalid_webhook"


@dataclass(frozen=True)
class PriceRef:
    """One of a tenant's registered prices: a provider price id and the meter it bills."""

    price_id: str
    meter_api_name: str


@dataclass(frozen=True)
class CustomerInput:
    """``customer_id`` is the provider customer the control plane already recorded, if any."""

    tenant_id: UUID
    name: str
    email: str
    prices: tuple[PriceRef, ...] = ()
    customer_id: str = ""


@dataclass(frozen=True)
class CustomerRef:
    """A customer as the provider knows it."""

    customer_id: str
    subscription_id: str = ""
    subscription_status: str = ""


@dataclass(frozen=True)
class UserInput:
    tenant_id: UUID
    customer: CustomerRef
    user_name: str
    email: str


@dataclass(frozen=True)
class UserRef:
    """``user_id`` is empty when the provider has no notion of a customer's users."""

    user_id: str = ""


@dataclass(frozen=True)
class UsageRecord:
    """A value to bill for one customer, meter and hourly window, under a deterministic identifier."""

    identifier: str
    customer: CustomerRef
    meter_api_name: str
    timestamp: datetime
    value: Decimal


@dataclass(frozen=True)
class UsageReceipt:
    """``already_recorded`` is True when the provider already held ``identifier`` (a retry)."""

    identifier: str
    reference: str = ""
    already_recorded: bool = False
    response: dict = field(default_factory=dict)


class WebhookEventKind(StrEnum):
    """What a provider event means to the control plane; every other event needs no action."""

    PAYMENT_SUCCEEDED = "payment_succeeded"  # an invoice was paid: the customer is in good standing
    PAYMENT_FAILED = "payment_failed"  # an invoice could not be paid: the customer is past due
    SUBSCRIPTION_CHANGED = "subscription_changed"  # the subscription's status changed
    OTHER = "other"


class CustomerStanding(StrEnum):
    """What a subscription status says about the customer (``BillingCustomer.status``)."""

    ACTIVE = "active"
    PAST_DUE = "past_due"


@dataclass(frozen=True)
class WebhookEventData:
    """A provider event, in the control plane's terms.

    ``kind`` is what the services act on. ``event_type`` and ``subscription_status`` are the
    provider's own words, stored and reported as they are (the admin, ``billingSuccess`` details,
    ``BillingCustomer.subscription_status``); ``standing`` is what that status means, None when
    it changes nothing (a subscription incomplete, paused or cancelled). ``customer_id`` and
    ``subscription_id`` are provider ids, from the event's object if it has them.
    """

    event_id: str
    event_type: str
    created: datetime | None
    payload: dict
    kind: WebhookEventKind = WebhookEventKind.OTHER
    customer_id: str = ""
    subscription_id: str = ""
    subscription_status: str = ""
    standing: CustomerStanding | None = None
    invoice_id: str = ""
    amount: int | None = None
    currency: str = ""


class BillingProvider(ABC):
    """Base class of billing providers, selected by ``SBT_PROVIDERS["billing"]``."""

    #: Short name stored beside every record the provider holds (``BillingCustomer.provider``).
    name: str = ""
    #: How far back usage may be recorded (Stripe: 35 days); None means no limit.
    usage_max_age_seconds: int | None = None
    #: How long after sending a usage record it can still be cancelled; None means forever.
    usage_cancel_window_seconds: int | None = None
    #: How long the provider refuses a second record with an identifier it holds (Stripe: a
    #: rolling 24 hours); None means forever. A record resent later is checked with usage_total.
    usage_identifier_window_seconds: int | None = None

    @abstractmethod
    def create_customer(self, customer: CustomerInput) -> CustomerRef:
        """Create the tenant's customer and, when it has prices, a subscription to them.

        Must not create a second customer or subscription for a tenant the provider already
        holds, however long ago the first attempt was (look it up before creating).
        """

    @abstractmethod
    def sync_subscription(self, customer: CustomerInput, current: CustomerRef) -> CustomerRef:
        """Make the customer's subscription bill exactly ``customer.prices`` (the tenant's prices now).

        Adds the prices it lacks and removes the ones no longer registered; creates the
        subscription if the customer has none. Returns the customer's new state; idempotent.
        """

    @abstractmethod
    def delete_customer(self, customer: CustomerRef) -> CustomerRef:
        """Offboard: stop billing the customer (cancel its subscription); returns its new state."""

    @abstractmethod
    def create_user(self, user: UserInput) -> UserRef:
        """Record a user of the customer (a contact, where the provider has them)."""

    @abstractmethod
    def delete_user(self, user: UserInput, ref: UserRef) -> None:
        """Forget a user of the customer."""

    @abstractmethod
    def put_usage(self, record: UsageRecord) -> UsageReceipt:
        """Record usage once per identifier: a second call with the same identifier bills nothing."""

    @abstractmethod
    def cancel_usage(self, *, identifier: str, meter_api_name: str) -> None:
        """Cancel a usage record sent earlier (within ``usage_cancel_window_seconds``)."""

    def usage_total(
        self, *, customer: CustomerRef, meter_api_name: str, start: datetime, end: datetime
    ) -> Decimal | None:
        """What the provider bills the customer for the meter's live records timestamped in
        [start, end), or None if it cannot tell. Asked before resending a record whose identifier
        it may have forgotten (past ``usage_identifier_window_seconds``)."""
        return None

    @abstractmethod
    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEventData:
        """Verify a webhook request's signature on the raw body, then parse it.

        Raises WebhookVerificationError when the request cannot be trusted or is not an event.
        """

    @abstractmethod
    def parse_stored_webhook(self, body: bytes) -> WebhookEventData:
        """Parse the raw body of an event ``parse_webhook`` accepted earlier, without verifying it.

        For reprocessing a stored event (``webhook_event_process``). Its signature cannot be
        checked again: the headers are not stored, and a signature's timestamp is only accepted
        for minutes after it was sent. The body was verified before it was stored, and only an
        operator's database write can change it. Must give what ``parse_webhook`` gave.
        """
