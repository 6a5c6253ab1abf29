"""Writes of the billing app: customers, users, webhook events (and the usage push, push.py)."""

import hashlib
import logging
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Min
from django.utils import timezone

from billing import signatures
from billing.interface import (
    BillingProvider,
    CustomerInput,
    CustomerRef,
    PriceRef,
    UsageRecord,
    UserInput,
    UserRef,
)
from billing.models import BillingCustomer, BillingUser, UsagePush, WebhookEvent
from events.services import event_publish
from sbt_site.conf import sbt_settings
from sbt_site.errors import Conflict, NotFound, ProviderError, ServiceError
from sbt_site.providers import get_provider
from tenants.models import Tenant

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)


def billing_provider() -> BillingProvider:
    return get_provider("billing")


def customer_ref(customer: BillingCustomer) -> CustomerRef:
    return CustomerRef(
        customer_id=customer.provider_customer_id,
        subscription_id=customer.provider_subscription_id,
        subscription_status=customer.subscription_status,
    )


def tenant_prices(tenant: Tenant) -> tuple[PriceRef, ...]:
    """The tenant's well-formed registered prices; malformed entries are skipped (and logged)."""
    prices = []
    for entry in tenant.prices if isinstance(tenant.prices, list) else []:
        price_id = entry.get("id") if isinstance(entry, dict) else None
        meter = entry.get("metricName") if isinstance(entry, dict) else None
        if not isinstance(price_id, str) or not price_id:
            logger.warning("Tenant %s has a price without an id, skipped: %r", tenant.pk, entry)
            continue
        prices.append(PriceRef(price_id=price_id, meter_api_name=meter if isinstance(meter, str) else ""))
    return tuple(prices)


def _tenant(tenant_id: UUID | str) -> Tenant:
    try:
        return Tenant.objects.get(pk=tenant_id)
    except (Tenant.DoesNotExist, ValueError, DjangoValidationError):
        raise NotFound(f"Tenant not found for id {tenant_id}") from None


def _locked_customer(tenant: Tenant) -> BillingCustomer:
    try:
        with transaction.atomic():
            BillingCustomer.objects.get_or_create(tenant=tenant, defaults={"provider": billing_provider().name})
    except IntegrityError:
        pass  # created concurrently by another run
    return BillingCustomer.objects.select_for_update().get(tenant=tenant)


def _customer_input(tenant: Tenant, customer: BillingCustomer) -> CustomerInput:
    return CustomerInput(
        tenant_id=tenant.pk,
        name=tenant.name,
        email=tenant.email,
        prices=tenant_prices(tenant),
        customer_id=customer.provider_customer_id,
    )


@transaction.atomic
def billing_customer_create(*, tenant_id: UUID | str) -> BillingCustomer:
    """Create the tenant's customer (and subscription to its prices) at the provider, once.

    Safe to call again: a customer that exists is returned unchanged, and the provider call is
    itself idempotent for a run that crashed after the provider answered, however long ago:
    the provider id our row holds is used first, else the provider looks the tenant up before
    creating anything (Stripe: search by ``metadata.tenant_id``).
    """
    tenant = _tenant(tenant_id)
    customer = _locked_customer(tenant)
    if customer.status != BillingCustomer.Status.PENDING:
        return customer
    provider = billing_provider()
    ref = provider.create_customer(_customer_input(tenant, customer))
    customer.provider = provider.name
    customer.provider_customer_id = ref.customer_id
    customer.provider_subscription_id = ref.subscription_id
    customer.subscription_status = ref.subscription_status
    customer.billed_prices = _prices_json(tenant)
    customer.status = BillingCustomer.Status.ACTIVE
    customer.last_error = ""
    customer.save()
    return customer


def _prices_json(tenant: Tenant) -> list[dict]:
    return [{"id": price.price_id, "metricName": price.meter_api_name} for price in tenant_prices(tenant)]


def billing_customer_delete(*, tenant_id: UUID | str) -> BillingCustomer | None:
    """Offboard the tenant's customer: push its remaining usage, then the provider stops billing it.

    The final push sends every closed hourly window not yet billed **and the hour in progress**
    (what metering holds of it: from the offboardingRequest on, metering refuses the tenant's
    usage, so that hour cannot grow any more), so the final invoice the cancellation issues
    includes it. If any window cannot be pushed, nothing is cancelled and a retryable
    ProviderError makes the event bus try the offboarding again later. Idempotent.
    """
    customer = BillingCustomer.objects.filter(tenant_id=tenant_id).first()
    if customer is None or customer.status == BillingCustomer.Status.CANCELED:
        return customer
    if customer.provider_customer_id and customer.status != BillingCustomer.Status.PENDING:
        # Identifiers are deterministic: if this runs inside a caller's transaction (the event
        # bus's savepoint) and rolls back, the next attempt resends the same records, billed once.
        result = usage_push_run(tenant_id=customer.tenant_id, include_current_hour=True)
        if result.failed:
            errors = "; ".join(error for line in result.lines for error in line.errors[:1])
            raise ProviderError(
                f"The final usage of tenant {customer.tenant_id} could not be pushed ({result.failed} windows "
                f"failed: {errors}); its subscription stays active until it is",
                retryable=True,
                code="final_push_failed",
            )
    return _billing_customer_cancel(tenant_id=customer.tenant_id)


@transaction.atomic
def _billing_customer_cancel(*, tenant_id: UUID | str) -> BillingCustomer | None:
    customer = BillingCustomer.objects.select_for_update().filter(tenant_id=tenant_id).first()
    if customer is None or customer.status == BillingCustomer.Status.CANCELED:
        return customer
    if customer.provider_customer_id:
        ref = billing_provider().delete_customer(customer_ref(customer))
        customer.subscription_status = ref.subscription_status
    customer.status = BillingCustomer.Status.CANCELED
    customer.save()
    return customer


def billing_subscription_sync(*, tenant_id: UUID | str) -> BillingCustomer | None:
    """Make the tenant's subscription at the provider bill exactly its registered prices now.

    The tenants app publishes no event when a tenant's ``prices`` change (PUT /tenants/{id},
    PATCH of a registration's tenantData): run this afterwards, from ``billing_subscription_sync``
    or the admin. Meters that lose their price get a last push first (closed windows and the
    hour in progress), as on offboarding, since the usage push stops following them; if it
    fails nothing changes and a retryable ProviderError says so. A customer not created yet
    needs nothing (onboarding uses the prices of the moment); an offboarded one is refused.
    Idempotent: prices already billed change nothing.
    """
    tenant = _tenant(tenant_id)
    customer = BillingCustomer.objects.filter(tenant=tenant).first()
    if customer is None or customer.status == BillingCustomer.Status.PENDING:
        return customer
    if customer.status == BillingCustomer.Status.CANCELED:
        raise Conflict(f"Tenant {tenant.pk} is offboarded: its subscription was cancelled", code="offboarded")
    billed = {price.get("metricName") for price in customer.billed_prices if isinstance(price, dict)}
    removed = sorted(billed - {price.meter_api_name for price in tenant_prices(tenant)} - {None, ""})
    if removed:
        result = usage_push_run(tenant_id=tenant.pk, meters=removed, include_current_hour=True)
        if result.failed:
            raise ProviderError(
                f"The last usage of {', '.join(removed)} for tenant {tenant.pk} could not be pushed; "
                "its subscription was left unchanged",
                retryable=True,
                code="final_push_failed",
            )
    return _subscription_sync(tenant)


@transaction.atomic
def _subscription_sync(tenant: Tenant) -> BillingCustomer:
    customer = BillingCustomer.objects.select_for_update().get(tenant=tenant)
    if customer.status == BillingCustomer.Status.CANCELED:
        raise Conflict(f"Tenant {tenant.pk} is offboarded: its subscription was cancelled", code="offboarded")
    ref = billing_provider().sync_subscription(_customer_input(tenant, customer), customer_ref(customer))
    customer.provider_subscription_id = ref.subscription_id
    customer.subscription_status = ref.subscription_status
    customer.billed_prices = _prices_json(tenant)
    customer.save()
    return customer


def billing_subscriptions_sync(*, tenant_ids: list[UUID | str] | None = None) -> list[tuple[UUID, str]]:
    """Sync the given tenants' subscriptions (default: every active customer's); (tenant, error or "") each.

    One tenant's failure does not stop the others; its message is returned.
    """
    if tenant_ids is None:
        tenant_ids = list(
            BillingCustomer.objects.filter(status__in=(BillingCustomer.Status.ACTIVE, BillingCustomer.Status.PAST_DUE))
            .order_by("created", "id")
            .values_list("tenant_id", flat=True)
        )
    results = []
    for tenant_id in tenant_ids:
        try:
            billing_subscription_sync(tenant_id=tenant_id)
        except ServiceError as exc:
            results.append((tenant_id, exc.message))
        else:
            results.append((tenant_id, ""))
    return results


def _customer_for_users(tenant_id: UUID | str) -> BillingCustomer:
    customer = BillingCustomer.objects.select_for_update().filter(tenant_id=tenant_id).first()
    if customer is None or customer.status == BillingCustomer.Status.PENDING:
        # The onboarding handler has not run yet: failing makes the event bus retry later.
        raise NotFound(f"No billing customer yet for tenant {tenant_id}")
    return customer


@transaction.atomic
def billing_user_create(*, tenant_id: UUID | str, user_name: str, email: str = "") -> BillingUser:
    """Record a tenant user with the billing provider (idempotent)."""
    customer = _customer_for_users(tenant_id)
    user, created = BillingUser.objects.get_or_create(customer=customer, user_name=user_name, defaults={"email": email})
    if not created and user.status == BillingUser.Status.ACTIVE:
        return user
    ref = billing_provider().create_user(
        UserInput(tenant_id=customer.tenant_id, customer=customer_ref(customer), user_name=user_name, email=email)
    )
    user.email = email or user.email
    user.provider_user_id = ref.user_id
    user.status = BillingUser.Status.ACTIVE
    user.save()
    return user


@transaction.atomic
def billing_user_delete(*, tenant_id: UUID | str, user_name: str) -> BillingUser | None:
    """Forget a tenant user at the billing provider (idempotent)."""
    user = (
        BillingUser.objects.select_for_update()
        .select_related("customer")
        .filter(customer__tenant_id=tenant_id, user_name=user_name)
        .first()
    )
    if user is None or user.status == BillingUser.Status.DELETED:
        return user
    billing_provider().delete_user(
        UserInput(
            tenant_id=user.customer.tenant_id,
            customer=customer_ref(user.customer),
            user_name=user.user_name,
            email=user.email,
        ),
        UserRef(user_id=user.provider_user_id),
    )
    user.status = BillingUser.Status.DELETED
    user.save()
    return user


# --- webhooks -------------------------------------------------------------------------------------

INVOICE_PAID = ("invoice.paid", "invoice.payment_succeeded")
INVOICE_FAILED = ("invoice.payment_failed",)
SUBSCRIPTION_CHANGED = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
)


def webhook_event_receive(*, body: bytes, headers) -> tuple[WebhookEvent, bool]:
    """Verify, store once and process a provider webhook; returns (event, whether it was new).

    Verification comes first: a request that fails it stores nothing. A provider event id seen
    before is acknowledged without being processed again.
    """
    provider = billing_provider()
    data = provider.parse_webhook(body, headers)
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                provider=provider.name,
                provider_event_id=data.event_id,
                event_type=data.event_type,
                body=body.decode("utf-8"),
                payload=data.payload,
                provider_created=data.created,
            )
    except IntegrityError:
        return WebhookEvent.objects.get(provider_event_id=data.event_id), False
    return webhook_event_process(webhook_event_id=event.pk), True


def webhook_event_process(*, webhook_event_id: int, force: bool = False) -> WebhookEvent:
    """Apply a stored webhook event in one transaction; a failure is recorded on the event.

    Processed and ignored events are left alone unless ``force`` (an operator's reprocess).
    """
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=webhook_event_id)
        if not force and event.status in (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED):
            return event
        event.attempts += 1
        try:
            with transaction.atomic():
                event.status, event.error = _webhook_event_apply(event)
        except Exception as exc:  # recorded on the event; the operator reprocesses it
            logger.exception("Processing webhook event %s failed", event.provider_event_id)
            event.status = WebhookEvent.Status.FAILED
            event.error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
        event.processed_at = timezone.now()
        event.save()
    return event


def _webhook_event_apply(event: WebhookEvent) -> tuple[str, str]:
    data = signatures.parse_event(event.body.encode("utf-8"))
    handled = INVOICE_PAID + INVOICE_FAILED + SUBSCRIPTION_CHANGED
    if data.event_type not in handled:
        return WebhookEvent.Status.IGNORED, f"{data.event_type} needs no action"
    customer = None
    if data.customer_id:
        customer = (
            BillingCustomer.objects.select_for_update()
            .filter(provider=event.provider, provider_customer_id=data.customer_id)
            .first()
        )
    if customer is None:
        return WebhookEvent.Status.IGNORED, f"No billing customer has the provider id {data.customer_id!r}"
    newer = customer.status_changed_at is None or data.created is None or data.created >= customer.status_changed_at
    detail = {
        "tenantId": str(customer.tenant_id),
        "providerEventId": data.event_id,
        "eventType": data.event_type,
        "customerId": data.customer_id,
    }
    if data.event_type in INVOICE_PAID + INVOICE_FAILED:
        paid = data.event_type in INVOICE_PAID
        detail.update({"invoiceId": data.invoice_id, "amount": data.amount, "currency": data.currency})
        if newer and customer.status != BillingCustomer.Status.CANCELED:
            customer.status = BillingCustomer.Status.ACTIVE if paid else BillingCustomer.Status.PAST_DUE
        event_publish(detail_type="billingSuccess" if paid else "billingFailure", detail=detail)
    else:
        if newer and data.subscription_id and data.subscription_id == customer.provider_subscription_id:
            customer.subscription_status = data.subscription_status
            if customer.status != BillingCustomer.Status.CANCELED:
                if data.subscription_status in ("past_due", "unpaid"):
                    customer.status = BillingCustomer.Status.PAST_DUE
                elif data.subscription_status in ("active", "trialing"):
                    customer.status = BillingCustomer.Status.ACTIVE
    if newer and data.created is not None:
        customer.status_changed_at = data.created
    customer.save()
    return WebhookEvent.Status.PROCESSED, ""


def webhook_events_reprocess(
    *, event_ids: list[str] | None = None, status: str | None = WebhookEvent.Status.FAILED
) -> list[WebhookEvent]:
    """Process stored webhook events again: the given provider event ids, or all with ``status``."""
    if event_ids:
        events = WebhookEvent.objects.filter(provider_event_id__in=event_ids)
        missing = set(event_ids) - set(events.values_list("provider_event_id", flat=True))
        if missing:
            raise NotFound(f"No webhook event with provider id {', '.join(sorted(missing))}")
    else:
        events = WebhookEvent.objects.filter(status=status)
    return [
        webhook_event_process(webhook_event_id=pk, force=True)
        for pk in events.order_by("received", "id").values_list("pk", flat=True)
    ]


# --- usage push -----------------------------------------------------------------------------------


@dataclass
class PushLine:
    """What one push run did for one tenant and meter (a row of the command's summary table)."""

    tenant_id: UUID
    tenant_name: str
    meter_api_name: str
    windows: int = 0
    sent: int = 0
    corrected: int = 0
    retried: int = 0
    unchanged: int = 0
    failed: int = 0
    uncorrectable: int = 0
    value_sent: Decimal = Decimal(0)
    errors: list[str] = field(default_factory=list)


@dataclass
class PushResult:
    lines: list[PushLine] = field(default_factory=list)
    dry_run: bool = False

    def total(self, name: str):
        return sum((getattr(line, name) for line in self.lines), start=Decimal(0) if name == "value_sent" else 0)

    @property
    def sent(self) -> int:
        return self.total("sent") + self.total("corrected") + self.total("retried")

    @property
    def failed(self) -> int:
        return self.total("failed")


def usage_push_identifier(*, tenant_id: UUID, meter_api_name: str, window_start: datetime, revision: int) -> str:
    """The deterministic identifier of one revision of one window (at most 100 characters, as Stripe allows)."""
    meter = hashlib.sha256(meter_api_name.encode()).hexdigest()[:12]
    return f"sbt-{UUID(str(tenant_id)).hex}-{meter}-{int(window_start.timestamp())}-r{revision}"


def _hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _push_send(push: UsagePush, *, provider: BillingProvider) -> bool:
    """Send a committed push row; safe to repeat (the identifier makes the provider dedupe)."""
    customer = push.customer
    record = UsageRecord(
        identifier=push.identifier,
        customer=customer_ref(customer),
        meter_api_name=push.meter_api_name,
        timestamp=push.window_start,
        value=push.value,
    )
    try:
        receipt = provider.put_usage(record)
    except ProviderError as exc:
        UsagePush.objects.filter(pk=push.pk).update(
            status=UsagePush.Status.FAILED,
            attempts=F("attempts") + 1,
            error=exc.message[:4000],
            modified=timezone.now(),
        )
        push.status = UsagePush.Status.FAILED
        return False
    UsagePush.objects.filter(pk=push.pk).update(
        status=UsagePush.Status.SENT,
        attempts=F("attempts") + 1,
        error="",
        sent_at=timezone.now(),
        provider_reference=receipt.reference,
        provider_response={**receipt.response, "alreadyRecorded": receipt.already_recorded},
        modified=timezone.now(),
    )
    push.status = UsagePush.Status.SENT
    push.sent_at = timezone.now()
    return True


def _push_create(
    *,
    customer: BillingCustomer,
    meter_api_name: str,
    window_start: datetime,
    revision: int,
    kind: str,
    value: Decimal,
    window_total: Decimal,
    event_count: int,
) -> UsagePush | None:
    """Commit the row before anything is sent: if the process dies after the provider applied it,
    the next run finds it pending and resends the same identifier and value."""
    try:
        with transaction.atomic():
            return UsagePush.objects.create(
                customer=customer,
                meter_api_name=meter_api_name,
                window_start=window_start,
                window_end=window_start + HOUR,
                revision=revision,
                identifier=usage_push_identifier(
                    tenant_id=customer.tenant_id,
                    meter_api_name=meter_api_name,
                    window_start=window_start,
                    revision=revision,
                ),
                kind=kind,
                value=value,
                window_total=window_total,
                event_count=event_count,
            )
    except IntegrityError:
        return None  # a concurrent push run created this revision: it owns it


def _window_push(
    *,
    customer: BillingCustomer,
    meter_api_name: str,
    window_start: datetime,
    total: Decimal,
    event_count: int,
    pushes: list[UsagePush],
    provider: BillingProvider,
    line: PushLine,
    dry_run: bool,
    now: datetime,
) -> None:
    unfinished = [push for push in pushes if push.status in (UsagePush.Status.PENDING, UsagePush.Status.FAILED)]
    for push in unfinished:
        if dry_run:
            line.retried += 1
            continue
        if not _push_send(push, provider=provider):
            line.failed += 1
            line.errors.append(UsagePush.objects.get(pk=push.pk).error)
            return  # corrections wait until what was already promised has been delivered
        line.retried += 1
    sent = [push for push in pushes if push.status == UsagePush.Status.SENT]
    billed = max(sent, key=lambda push: push.revision).window_total if sent else Decimal(0)
    if total == billed:
        if sent or unfinished:
            line.unchanged += 1
        return
    revision = max((push.revision for push in pushes), default=-1) + 1
    cancel_window = provider.usage_cancel_window_seconds
    cancellable = cancel_window is None or all(
        push.sent_at and (now - push.sent_at).total_seconds() < cancel_window for push in sent
    )
    if not sent or cancellable:
        kind, value = UsagePush.Kind.TOTAL, total
    elif total > billed:
        kind, value = UsagePush.Kind.DELTA, total - billed
    else:
        line.uncorrectable += 1
        line.errors.append(
            f"{window_start:%Y-%m-%d %H:00} usage fell from {billed} to {total} after the provider's cancellation "
            "window: issue a credit note at the provider"
        )
        return
    if dry_run:
        line.corrected += 1 if sent else 0
        line.sent += 0 if sent else 1
        line.value_sent += value
        return
    if sent and kind == UsagePush.Kind.TOTAL:
        for push in sent:
            try:
                provider.cancel_usage(identifier=push.identifier, meter_api_name=meter_api_name)
            except ProviderError as exc:
                line.failed += 1
                line.errors.append(exc.message)
                return
            UsagePush.objects.filter(pk=push.pk).update(status=UsagePush.Status.CANCELED, modified=timezone.now())
        if value == 0:
            line.corrected += 1  # every event of the window was cancelled: nothing left to bill
            return
    push = _push_create(
        customer=customer,
        meter_api_name=meter_api_name,
        window_start=window_start,
        revision=revision,
        kind=kind,
        value=value,
        window_total=total,
        event_count=event_count,
    )
    if push is None:
        return
    if _push_send(push, provider=provider):
        line.value_sent += value
        if sent:
            line.corrected += 1
        else:
            line.sent += 1
    else:
        line.failed += 1
        line.errors.append(UsagePush.objects.get(pk=push.pk).error)


def usage_push_targets(
    *, tenant_id: UUID | str | None = None, meters: Iterable[str] | None = None
) -> list[tuple[BillingCustomer, str]]:
    """(customer, meter api name) pairs to push: active customers and the meters their prices map
    (or exactly ``meters``, for a meter whose price is being removed)."""
    customers = BillingCustomer.objects.filter(
        status__in=(BillingCustomer.Status.ACTIVE, BillingCustomer.Status.PAST_DUE)
    ).select_related("tenant")
    if tenant_id is not None:
        tenant = _tenant(tenant_id)
        customers = customers.filter(tenant=tenant)
    targets = []
    for customer in customers.order_by("created", "id"):
        names = (
            dict.fromkeys(meters)
            if meters is not None
            else dict.fromkeys(price.meter_api_name for price in tenant_prices(customer.tenant) if price.meter_api_name)
        )
        targets.extend((customer, meter) for meter in names)
    return targets


def usage_push_run(
    *,
    tenant_id: UUID | str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
    include_current_hour: bool = False,
    meters: Iterable[str] | None = None,
) -> PushResult:
    """Push every closed hourly window since the last successful push, per tenant and meter.

    Each window is sent once under a deterministic identifier; a window whose total changed
    since (late or cancelled usage, re-read ``BILLING_PUSH_LOOKBACK_HOURS`` back) is corrected
    by a new revision (docs/billing.md "Corrections"). Never runs inside a transaction: each row
    is committed before it is sent, so a crash or a lost answer is resent, never billed twice.

    ``include_current_hour`` also sends the hour in progress as far as it is known: only for
    a tenant whose usage can no longer grow (offboarding), as a later push would have to
    correct it otherwise.
    """
    from metering.selectors import usage_window_totals

    provider = billing_provider()
    now = now or timezone.now()
    end = _hour_floor(now) + (HOUR if include_current_hour else timedelta(0))
    earliest = None
    if provider.usage_max_age_seconds is not None:
        earliest = _hour_floor(now - timedelta(seconds=provider.usage_max_age_seconds)) + HOUR
    lookback = timedelta(hours=sbt_settings.BILLING_PUSH_LOOKBACK_HOURS)
    result = PushResult(dry_run=dry_run)
    targets = usage_push_targets(tenant_id=tenant_id, meters=meters)
    for customer, meter in progress(targets) if progress else targets:
        line = PushLine(tenant_id=customer.tenant_id, tenant_name=customer.tenant.name, meter_api_name=meter)
        result.lines.append(line)
        history = UsagePush.objects.filter(customer=customer, meter_api_name=meter)
        last_sent = history.filter(status=UsagePush.Status.SENT).aggregate(last=Max("window_end"))["last"]
        first_unfinished = history.filter(status__in=(UsagePush.Status.PENDING, UsagePush.Status.FAILED)).aggregate(
            first=Min("window_start")
        )["first"]
        # Never pushed: everything the provider still accepts. Otherwise re-read the lookback too.
        never = earliest or customer.created.astimezone(UTC) - lookback
        start = never if last_sent is None else last_sent - lookback
        if first_unfinished is not None:
            start = min(start, first_unfinished)
        start = _hour_floor(max(start, earliest) if earliest else start)
        if start >= end:
            continue
        totals = {
            window.window_start: window
            for window in usage_window_totals(meter_api_name=meter, tenant_id=customer.tenant_id, start=start, end=end)
        }
        pushes_by_window: dict[datetime, list[UsagePush]] = {}
        for push in history.filter(window_start__gte=start, window_start__lt=end).order_by("revision"):
            pushes_by_window.setdefault(push.window_start, []).append(push)
        for window_start in sorted(set(totals) | set(pushes_by_window)):
            window = totals.get(window_start)
            line.windows += 1
            _window_push(
                customer=customer,
                meter_api_name=meter,
                window_start=window_start,
                total=Decimal(window.value) if window else Decimal(0),
                event_count=window.event_count if window else 0,
                pushes=pushes_by_window.get(window_start, []),
                provider=provider,
                line=line,
                dry_run=dry_run,
                now=now,
            )
    return result


def usage_pushes_retry(*, push_ids: list[int]) -> PushResult:
    """Resend the given pending or failed pushes with their recorded identifier and value."""
    provider = billing_provider()
    result = PushResult()
    pushes = UsagePush.objects.filter(
        pk__in=push_ids, status__in=(UsagePush.Status.PENDING, UsagePush.Status.FAILED)
    ).select_related("customer__tenant")
    for push in pushes.order_by("window_start", "revision"):
        line = PushLine(
            tenant_id=push.customer.tenant_id, tenant_name=push.customer.tenant.name, meter_api_name=push.meter_api_name
        )
        result.lines.append(line)
        if _push_send(push, provider=provider):
            line.retried += 1
            line.value_sent += push.value
        else:
            line.failed += 1
    return result
