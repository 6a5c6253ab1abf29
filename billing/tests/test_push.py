"""The usage push: exact totals per closed hourly window, once, whatever fails on the way."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from billing.interface import CustomerRef, UsageRecord
from billing.models import BillingCustomer, LocalBillingRecord, UsagePush
from billing.services import billing_provider, usage_push_run, usage_pushes_retry
from metering.interface import MeterSpec
from metering.services import meter_create, usage_events_cancel, usage_events_ingest
from sbt_site.errors import ProviderError

pytestmark = pytest.mark.django_db

METER = "api_calls"


def hour_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def billed_tenant(stripe_billing, make_tenant, onboard):
    stripe_billing.create_meter(METER)
    price = stripe_billing.create_price(METER)
    meter_create(spec=MeterSpec(api_name=METER, label="API calls", aggregation="SUM"))
    tenant = make_tenant(prices=[{"id": price["id"], "metricName": METER}])
    onboard(tenant)
    return tenant


def ingest(tenant, hours_ago: int, values: list, *, prefix: str = "e") -> None:
    """Events ``hours_ago`` whole hours before the current hour, a few minutes into that hour."""
    window = hour_start(timezone.now()) - timedelta(hours=hours_ago)
    usage_events_ingest(
        events=[
            {
                "eventId": f"{prefix}-{hours_ago}-{index}",
                "meterApiName": METER,
                "tenantId": str(tenant.pk),
                "meterValue": value,
                "timestamp": (window + timedelta(minutes=5 + index)).isoformat(),
            }
            for index, value in enumerate(values)
        ]
    )


def expected_totals(usage: dict[int, list]) -> dict[int, Decimal]:
    now = hour_start(timezone.now())
    return {int((now - timedelta(hours=h)).timestamp()): Decimal(str(sum(v))) for h, v in usage.items() if h >= 1}


USAGE = {1: [3, 4], 2: [10], 5: [1, 1, 1], 26: [7.5, 2.5], 24 * 20: [100]}


def customer_id(tenant) -> str:
    return BillingCustomer.objects.get(tenant=tenant).provider_customer_id


def test_closed_windows_are_pushed_with_their_exact_totals(stripe_billing, billed_tenant):
    for hours_ago, values in USAGE.items():
        ingest(billed_tenant, hours_ago, values)
    ingest(billed_tenant, 0, [999])  # the current hour is still open: not billed yet

    result = usage_push_run()

    assert stripe_billing.totals(METER, customer_id(billed_tenant)) == expected_totals(USAGE)
    assert len(stripe_billing.live_events(METER)) == len(USAGE)
    assert (result.sent, result.failed) == (len(USAGE), 0)
    assert result.total("value_sent") == Decimal("130")
    pushes = UsagePush.objects.filter(status=UsagePush.Status.SENT)
    assert pushes.count() == len(USAGE)
    assert {push.identifier for push in pushes} == set(stripe_billing.meter_events)
    assert all(len(push.identifier) <= 100 for push in pushes)


def test_pushing_twice_sends_nothing_new(stripe_billing, billed_tenant):
    for hours_ago, values in USAGE.items():
        ingest(billed_tenant, hours_ago, values)
    usage_push_run()
    posts_before = len(stripe_billing.requests)

    again = usage_push_run()

    assert len(stripe_billing.requests) == posts_before, "the second run made no Stripe request"
    # Windows within BILLING_PUSH_LOOKBACK_HOURS are re-read (found unchanged); older ones are not.
    assert (again.sent, again.total("unchanged")) == (0, len(USAGE) - 1)
    assert stripe_billing.totals(METER, customer_id(billed_tenant)) == expected_totals(USAGE)


def test_lost_answers_never_bill_twice(stripe_billing, billed_tenant):
    usage = {hours: [hours % 7 + 1, 2] for hours in range(1, 61)}
    for hours_ago, values in usage.items():
        ingest(billed_tenant, hours_ago, values)
    stripe_billing.drop_rate = 0.3

    runs = [usage_push_run() for _ in range(3)]

    assert stripe_billing.dropped >= 10, "about 30% of the meter events lost their answer"
    assert runs[-1].failed == 0
    live = stripe_billing.live_events(METER)
    assert len(live) == len(usage), "exactly one meter event per window"
    assert stripe_billing.totals(METER, customer_id(billed_tenant)) == expected_totals(usage)
    assert UsagePush.objects.filter(status=UsagePush.Status.SENT).count() == len(usage)
    assert UsagePush.objects.exclude(status=UsagePush.Status.SENT).count() == 0


def test_a_failed_push_is_resent_with_the_same_identifier_next_time(stripe_billing, billed_tenant):
    ingest(billed_tenant, 3, [5])
    stripe_billing.fail_next(4)  # every attempt of the first run
    first = usage_push_run()
    push = UsagePush.objects.get()
    assert (first.failed, push.status, push.attempts) == (1, UsagePush.Status.FAILED, 1)
    assert "Stripe could not record usage now" in push.error

    second = usage_push_run()

    push.refresh_from_db()
    assert (second.total("retried"), push.status, push.attempts) == (1, UsagePush.Status.SENT, 2)
    assert list(stripe_billing.meter_events) == [push.identifier]


def test_late_usage_in_a_pushed_window_replaces_the_window_total(stripe_billing, billed_tenant):
    ingest(billed_tenant, 2, [10])
    usage_push_run()
    ingest(billed_tenant, 2, [5], prefix="late")

    result = usage_push_run()

    assert result.total("corrected") == 1
    assert stripe_billing.totals(METER, customer_id(billed_tenant)) == expected_totals({2: [15]})
    assert len(stripe_billing.live_events(METER)) == 1
    assert len(stripe_billing.adjustments) == 1
    revisions = list(UsagePush.objects.order_by("revision").values_list("revision", "kind", "value", "status"))
    assert revisions == [
        (0, "total", Decimal(10), UsagePush.Status.CANCELED),
        (1, "total", Decimal(15), UsagePush.Status.SENT),
    ]


def test_cancelled_usage_is_withdrawn_from_the_window(stripe_billing, billed_tenant):
    ingest(billed_tenant, 4, [8])
    usage_push_run()
    usage_events_cancel(client_tenant_id=None, tenant_id=billed_tenant.pk, event_ids=["e-4-0"])

    usage_push_run()

    assert stripe_billing.totals(METER, customer_id(billed_tenant)) == {}
    assert UsagePush.objects.get().status == UsagePush.Status.CANCELED


ADJUSTMENTS = "/v1/billing/meter_event_adjustments"

# Where a run can stop inside a cancellation, as the fake makes every attempt of it fail: before
# Stripe applied it, or after (each answer lost). The flag says whether Stripe cancelled the event.
CANCEL_STOPS = {
    "before Stripe applied it": (lambda fake: fake.fail_next(4), False),
    "after Stripe applied it": (lambda fake: fake.drop_next(4, path=ADJUSTMENTS), True),
}


def stop_inside_a_correction(stripe_billing, tenant, stop: str) -> None:
    """Push 10 for a window, add 5 late, and let the correcting run stop inside its cancellation."""
    ingest(tenant, 2, [10])
    usage_push_run()
    ingest(tenant, 2, [5], prefix="late")
    make_it_fail, applied = CANCEL_STOPS[stop]
    make_it_fail(stripe_billing)

    stopped = usage_push_run()

    assert (stopped.failed, UsagePush.objects.get().status) == (1, UsagePush.Status.CANCELLING)
    billed = {} if applied else expected_totals({2: [10]})
    assert stripe_billing.totals(METER, customer_id(tenant)) == billed


@pytest.mark.parametrize("usage_after", [[10, 5], [10]], ids=["usage still changed", "usage back to what was billed"])
@pytest.mark.parametrize("stop", CANCEL_STOPS)
def test_a_run_stopped_inside_a_cancellation_is_finished_by_the_next_run(
    stripe_billing, billed_tenant, stop, usage_after
):
    stop_inside_a_correction(stripe_billing, billed_tenant, stop)
    if usage_after == [10]:
        # What was billed before is right again: only the recorded intent says Stripe may hold nothing.
        usage_events_cancel(client_tenant_id=None, tenant_id=billed_tenant.pk, event_ids=["late-2-0"])

    resumed = usage_push_run()

    assert (resumed.failed, resumed.total("retried"), resumed.total("corrected")) == (0, 1, 1)
    assert stripe_billing.totals(METER, customer_id(billed_tenant)) == expected_totals({2: usage_after})
    revisions = list(UsagePush.objects.order_by("revision").values_list("revision", "window_total", "status"))
    assert revisions == [
        (0, Decimal(10), UsagePush.Status.CANCELED),
        (1, Decimal(sum(usage_after)), UsagePush.Status.SENT),
    ]
    live = [event["identifier"] for event in stripe_billing.live_events(METER)]
    assert live == [UsagePush.objects.get(revision=1).identifier]
    assert usage_push_run().sent == 0, "the window is settled"


def test_the_admin_retry_finishes_a_stopped_cancellation(stripe_billing, billed_tenant):
    stop_inside_a_correction(stripe_billing, billed_tenant, "after Stripe applied it")
    push = UsagePush.objects.get()

    retried = usage_pushes_retry(push_ids=[push.pk])

    push.refresh_from_db()
    assert (retried.total("retried"), retried.failed, push.status) == (1, 0, UsagePush.Status.CANCELED)
    assert stripe_billing.totals(METER, customer_id(billed_tenant)) == {}
    usage_push_run()
    assert stripe_billing.totals(METER, customer_id(billed_tenant)) == expected_totals({2: [15]})


def test_a_cancellation_that_cannot_be_finished_stays_reported(stripe_billing, billed_tenant):
    stop_inside_a_correction(stripe_billing, billed_tenant, "before Stripe applied it")
    age_the_pushes(stripe_billing, 2)

    result = usage_push_run()

    assert result.failed == 1
    assert "within 24 hours" in result.lines[0].errors[0]
    assert UsagePush.objects.get().status == UsagePush.Status.CANCELLING, "whether Stripe bills it is not known"
    assert UsagePush.objects.count() == 1, "nothing is added on top of a record that may still be billed"


def age_the_pushes(stripe_billing, days: int) -> None:
    """Stripe received the events ``days`` ago: past its 24-hour cancellation window."""
    UsagePush.objects.update(sent_at=timezone.now() - timedelta(days=days))
    for event in stripe_billing.meter_events.values():
        event["created"] -= days * 86400


def a_day_later(stripe_billing) -> None:
    """The next daily run: the rows were written, and Stripe received what it did, 25 hours ago."""
    UsagePush.objects.update(created=timezone.now() - timedelta(hours=25))
    for event in stripe_billing.meter_events.values():
        event["created"] -= 25 * 3600


@pytest.mark.parametrize("stripe_holds", [1, 0], ids=["killed once Stripe had recorded it", "it never reached Stripe"])
def test_a_push_retried_after_stripes_identifier_window_is_checked_not_billed_twice(
    stripe_billing, billed_tenant, stripe_holds
):
    ingest(billed_tenant, 3, [5, 2])
    if stripe_holds:
        usage_push_run()
        # the process was killed between Stripe's answer and our row: it stays pending
        UsagePush.objects.update(status=UsagePush.Status.PENDING, sent_at=None)
    else:
        stripe_billing.fail_next(4)  # every attempt of the run
        assert usage_push_run().failed == 1
    assert len(stripe_billing.live_events(METER)) == stripe_holds
    a_day_later(stripe_billing)  # Stripe has forgotten the identifier: a resend would be a new event

    retried = usage_push_run()

    push = UsagePush.objects.get()
    assert (retried.failed, push.status) == (0, UsagePush.Status.SENT)
    assert len(stripe_billing.live_events(METER)) == 1
    assert stripe_billing.totals(METER, customer_id(billed_tenant)) == expected_totals({3: [5, 2]})
    assert push.provider_response["alreadyRecorded"] is (stripe_holds == 1)


def test_a_push_whose_window_stripe_bills_otherwise_is_not_resent_after_the_identifier_window(
    stripe_billing, billed_tenant
):
    ingest(billed_tenant, 3, [5])
    usage_push_run()
    UsagePush.objects.update(status=UsagePush.Status.PENDING, sent_at=None)  # killed before recording the answer
    push = UsagePush.objects.get()
    stripe_billing.meter_events[push.identifier]["payload"]["value"] = "4"  # someone changed it at Stripe
    a_day_later(stripe_billing)

    retried = usage_pushes_retry(push_ids=[push.pk])

    push.refresh_from_db()
    assert (retried.failed, push.status) == (1, UsagePush.Status.FAILED)
    assert "the provider bills 4 for the window: neither 0 (without it) nor 5" in push.error
    assert len(stripe_billing.meter_events) == 1, "nothing was resent"


def test_late_usage_after_the_cancellation_window_is_sent_as_a_delta(stripe_billing, billed_tenant):
    ingest(billed_tenant, 30, [10])
    usage_push_run()
    age_the_pushes(stripe_billing, 2)
    ingest(billed_tenant, 30, [4], prefix="late")

    usage_push_run()

    assert stripe_billing.totals(METER, customer_id(billed_tenant)) == expected_totals({30: [14]})
    assert sorted(Decimal(e["payload"]["value"]) for e in stripe_billing.live_events(METER)) == [4, 10]
    delta = UsagePush.objects.get(revision=1)
    assert (delta.kind, delta.value, delta.window_total) == ("delta", Decimal(4), Decimal(14))
    assert usage_push_run().sent == 0, "the corrected window is now unchanged"


def test_usage_lowered_after_the_cancellation_window_is_reported_not_hidden(stripe_billing, billed_tenant):
    ingest(billed_tenant, 30, [10, 2])
    usage_push_run()
    age_the_pushes(stripe_billing, 2)
    usage_events_cancel(client_tenant_id=None, tenant_id=billed_tenant.pk, event_ids=["e-30-1"])

    result = usage_push_run()

    assert result.total("uncorrectable") == 1
    assert "usage fell from 12" in result.lines[0].errors[0]
    assert "credit note" in result.lines[0].errors[0]
    assert stripe_billing.totals(METER, customer_id(billed_tenant)) == expected_totals({30: [12]})


def test_the_fake_enforces_stripes_timestamp_window(stripe_billing, billed_tenant):
    provider = billing_provider()
    ref = CustomerRef(customer_id=customer_id(billed_tenant))
    for timestamp in (timezone.now() - timedelta(days=36), timezone.now() + timedelta(minutes=10)):
        with pytest.raises(ProviderError, match="within the past 35 calendar days") as error:
            provider.put_usage(UsageRecord("sbt-test", ref, METER, timestamp, Decimal(1)))
        assert error.value.retryable is False
    assert stripe_billing.meter_events == {}


def test_only_active_customers_with_price_mapped_meters_are_pushed(stripe_billing, billed_tenant, make_tenant, onboard):
    onboard(make_tenant(name="free"))  # a customer without prices
    ingest(billed_tenant, 2, [1])
    result = usage_push_run()
    assert [(line.tenant_name, line.meter_api_name) for line in result.lines] == [("acme", METER)]
    BillingCustomer.objects.filter(tenant=billed_tenant).update(status=BillingCustomer.Status.CANCELED)
    assert usage_push_run().lines == []


def test_the_local_provider_records_usage_per_tenant_and_period(local_billing, make_tenant, onboard):
    meter_create(spec=MeterSpec(api_name=METER, label="API calls", aggregation="SUM"))
    tenant = make_tenant(prices=[{"id": "price_local", "metricName": METER}])
    onboard(tenant)
    ingest(tenant, 1, [2, 3])
    ingest(tenant, 2, [4])
    usage_push_run()
    usage_push_run()
    records = LocalBillingRecord.objects.filter(canceled=False)
    assert sorted(records.values_list("value", flat=True)) == [4, 5]
    assert {record.period for record in records} == {
        (hour_start(timezone.now()) - timedelta(hours=h)).strftime("%Y-%m") for h in (1, 2)
    }


def test_command_dry_run_sends_nothing_and_prints_a_summary(stripe_billing, billed_tenant, capsys):
    ingest(billed_tenant, 2, [6])
    ingest(billed_tenant, 3, [1])
    call_command("usage_push", "--dry-run")
    out = capsys.readouterr().out
    assert stripe_billing.meter_events == {}
    assert UsagePush.objects.count() == 0
    assert "Dry run: nothing was sent." in out
    header, row, total = out.splitlines()[:3]
    assert total.split()[0] == "total"
    assert header.split() == [
        "tenant",
        "meter",
        "windows",
        "sent",
        "corrected",
        "retried",
        "unchanged",
        "failed",
        "value",
    ]
    assert row.split()[-7:] == ["2", "2", "0", "0", "0", "0", "7"]

    call_command("usage_push", "--tenant", str(billed_tenant.pk))
    assert len(stripe_billing.live_events(METER)) == 2
    assert "total" in capsys.readouterr().out


def test_command_reports_failures_and_unknown_tenants(stripe_billing, billed_tenant):
    ingest(billed_tenant, 2, [6])
    stripe_billing.fail_next(4)
    with pytest.raises(CommandError, match="1 usage record\\(s\\) failed"):
        call_command("usage_push")
    with pytest.raises(CommandError, match="Tenant not found for id nope"):
        call_command("usage_push", "--tenant", "nope")


def test_the_push_is_scheduled_every_24_hours():
    task = PeriodicTask.objects.get(task="billing.usage_push")
    assert task.interval.every == 86400
    assert task.interval.period == "seconds"


def test_the_scheduled_task_runs_the_push(stripe_billing, billed_tenant):
    from billing.tasks import usage_push

    ingest(billed_tenant, 2, [2, 2])
    assert usage_push.delay().get() == {"sent": 1, "failed": 0, "value": "4"}
    assert stripe_billing.totals(METER, customer_id(billed_tenant)) == expected_totals({2: [4]})
