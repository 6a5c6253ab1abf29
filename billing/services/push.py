"""The usage push: metering's hourly totals sent to the billing provider, once per window and revision.

docs/billing.md "The usage push" explains the identifiers, the corrections and the lookback.
One module past 400 lines, because every function here moves the same UsagePush row through its
states (pending, sent, failed, cancelling, canceled) and a split would scatter that state machine.
"""

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import F, Max, Min, Sum
from django.utils import timezone

from billing.interface import BillingProvider, UsageReceipt, UsageRecord
from billing.models import BillingCustomer, UsagePush
from billing.services.common import billing_provider, customer_ref, tenant_prices
from sbt_site.conf import sbt_settings
from sbt_site.errors import ProviderError
from sbt_site.metrics import USAGE_PUSHES
from tenants.selectors import tenant_get

HOUR = timedelta(hours=1)


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


def _push_landed(push: UsagePush, *, provider: BillingProvider) -> bool | None:
    """Whether the provider already bills ``push``, asked only when it may have forgotten the
    identifier (the row is older than ``usage_identifier_window_seconds``: Stripe's 24 hours,
    as long as the daily schedule takes to retry). Resending then could bill it twice, so the
    window's total at the provider decides: with this push, it landed; without, it did not.
    None when not asked or the provider cannot tell. Anything else is a ProviderError for the
    operator, and nothing is sent."""
    window = provider.usage_identifier_window_seconds
    if window is None or (timezone.now() - push.created).total_seconds() < window:
        return None
    billed = provider.usage_total(
        customer=customer_ref(push.customer),
        meter_api_name=push.meter_api_name,
        start=push.window_start,
        end=push.window_end,
    )
    if billed is None:
        return None
    others = UsagePush.objects.filter(
        customer=push.customer,
        meter_api_name=push.meter_api_name,
        window_start=push.window_start,
        status=UsagePush.Status.SENT,
    ).exclude(pk=push.pk).aggregate(total=Sum("value"))["total"] or Decimal(0)

    def matches(expected: Decimal) -> bool:  # the provider may answer a float (Stripe's summaries do)
        return abs(billed - expected) <= Decimal("1e-6") * max(Decimal(1), abs(expected))

    if matches(others + push.value):
        return True
    if matches(others):
        return False
    billed, without, with_it = (format(value.normalize(), "f") for value in (billed, others, others + push.value))
    raise ProviderError(
        f"{push.identifier} was first sent more than {window // 3600} hours ago, when the provider may have "
        f"forgotten its identifier, and the provider bills {billed} for the window: neither {without} (without it) "
        f"nor {with_it} (with it). Check the window at the provider; nothing was resent.",
        retryable=False,
    )


def _push_send(push: UsagePush, *, provider: BillingProvider) -> bool:
    """Send a committed push row; safe to repeat (the identifier makes the provider dedupe, and
    past the provider's identifier window its total for the window is checked first)."""
    customer = push.customer
    record = UsageRecord(
        identifier=push.identifier,
        customer=customer_ref(customer),
        meter_api_name=push.meter_api_name,
        timestamp=push.window_start,
        value=push.value,
    )
    try:
        if _push_landed(push, provider=provider):
            receipt = UsageReceipt(
                identifier=push.identifier,
                reference=push.identifier,
                already_recorded=True,
                response={"verifiedBy": "the provider's total for the window"},
            )
        else:
            receipt = provider.put_usage(record)
    except ProviderError as exc:
        UsagePush.objects.filter(pk=push.pk).update(
            status=UsagePush.Status.FAILED,
            attempts=F("attempts") + 1,
            error=exc.message[:4000],
            modified=timezone.now(),
        )
        push.status = UsagePush.Status.FAILED
        USAGE_PUSHES.labels("failed").inc()
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
    USAGE_PUSHES.labels("sent").inc()
    return True


def _push_cancel(push: UsagePush, *, provider: BillingProvider) -> bool:
    """Withdraw a sent push at the provider, the intent committed first: a process killed once the
    provider has cancelled it leaves the row ``cancelling``, never ``sent``, and the next run cancels
    it again (a repeat is recognised by the provider, as a resent push is)."""
    UsagePush.objects.filter(pk=push.pk, status=UsagePush.Status.SENT).update(
        status=UsagePush.Status.CANCELLING, modified=timezone.now()
    )
    push.status = UsagePush.Status.CANCELLING
    try:
        provider.cancel_usage(identifier=push.identifier, meter_api_name=push.meter_api_name)
    except ProviderError as exc:
        push.error = exc.message[:4000]
        UsagePush.objects.filter(pk=push.pk).update(error=push.error, modified=timezone.now())
        return False
    UsagePush.objects.filter(pk=push.pk).update(status=UsagePush.Status.CANCELED, error="", modified=timezone.now())
    push.status = UsagePush.Status.CANCELED
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
    # What a stopped run left half done is finished first, and a cancellation before anything: until
    # it is answered the provider may or may not still bill the row, so the window's bill is unknown.
    cancelling = [push for push in pushes if push.status == UsagePush.Status.CANCELLING]
    unfinished = cancelling + [push for push in pushes if push.status in UsagePush.UNFINISHED_SENDS]
    for push in unfinished:
        if dry_run:
            line.retried += 1
            continue
        finish = _push_cancel if push.status == UsagePush.Status.CANCELLING else _push_send
        if not finish(push, provider=provider):
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
        line.corrected += 1 if sent or cancelling else 0
        line.sent += 0 if sent or cancelling else 1
        line.value_sent += value
        return
    if sent and kind == UsagePush.Kind.TOTAL:
        for push in sent:
            if not _push_cancel(push, provider=provider):
                line.failed += 1
                line.errors.append(push.error)
                return
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
        if sent or cancelling:
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
        tenant = tenant_get(tenant_id=tenant_id)
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
        first_unfinished = history.filter(status__in=UsagePush.UNFINISHED).aggregate(first=Min("window_start"))["first"]
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
    """Resend the given pending or failed pushes with their recorded identifier and value, and
    cancel again the given ``cancelling`` ones (the window's new total goes out with the next run)."""
    provider = billing_provider()
    result = PushResult()
    pushes = UsagePush.objects.filter(pk__in=push_ids, status__in=UsagePush.UNFINISHED).select_related(
        "customer__tenant"
    )
    for push in pushes.order_by("window_start", "revision"):
        line = PushLine(
            tenant_id=push.customer.tenant_id, tenant_name=push.customer.tenant.name, meter_api_name=push.meter_api_name
        )
        result.lines.append(line)
        if push.status == UsagePush.Status.CANCELLING:
            if _push_cancel(push, provider=provider):
                line.retried += 1
            else:
                line.failed += 1
                line.errors.append(push.error)
        elif _push_send(push, provider=provider):
            line.retried += 1
            line.value_sent += push.value
        else:
            line.failed += 1
    return result
