"""The reads behind the console's overview: each counts what it says, over real rows."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.models import BillingCustomer, UsagePush
from billing.selectors import billing_customer_status_counts, usage_push_status_counts
from metering.interface import MeterSpec
from metering.selectors import usage_period_comparison
from metering.services import meter_create, usage_events_ingest
from tenants.models import TenantRegistration
from tenants.selectors import tenant_registrations_stalled, tenant_status_counts
from tenants.services import tenant_registration_apply_job_output
from tenants.tests.factories import TenantFactory, tenant_registration_onboard

pytestmark = pytest.mark.django_db


def test_tenant_status_counts_and_stalled_registrations():
    waiting = tenant_registration_onboard("waiting")
    old = tenant_registration_onboard("old")
    done = tenant_registration_onboard("done")
    broken = tenant_registration_onboard("broken")
    tenant_registration_apply_job_output(registration_id=done.pk, outcome="provisionSuccess")
    tenant_registration_apply_job_output(registration_id=broken.pk, outcome="provisionFailure", reason="no capacity")
    now = datetime.now(UTC)
    TenantRegistration.objects.filter(pk=old.pk).update(created=now - timedelta(hours=3))

    assert tenant_status_counts() == {"In progress": 2, "created": 1, "failed": 1, "deleting": 0, "deleted": 0}
    assert list(tenant_registrations_stalled(started_before=now - timedelta(hours=1))) == [old]
    assert set(tenant_registrations_stalled(started_before=now + timedelta(seconds=1))) == {waiting, old}


def test_billing_status_counts_name_every_status():
    tenants = [TenantFactory() for _ in range(3)]
    for tenant, status in zip(tenants, ("active", "past_due", "past_due"), strict=True):
        BillingCustomer.objects.create(tenant=tenant, provider="local", status=status)
    customer = BillingCustomer.objects.first()
    hour = datetime(2026, 1, 1, tzinfo=UTC)
    for revision, status in enumerate(("sent", "failed")):
        UsagePush.objects.create(
            customer=customer,
            meter_api_name="calls",
            window_start=hour,
            window_end=hour + timedelta(hours=1),
            revision=revision,
            identifier=f"push-{revision}",
            value=1,
            window_total=1,
            status=status,
        )

    assert billing_customer_status_counts() == {"pending": 0, "active": 1, "past_due": 2, "canceled": 0}
    assert usage_push_status_counts() == {"pending": 0, "sent": 1, "failed": 1, "cancelling": 0, "canceled": 0}


def test_usage_period_comparison_sums_this_month_so_far_against_the_same_days_of_last_month(settings):
    settings.SBT = {**settings.SBT, "USAGE_MAX_BACKDATE_DAYS": 3650}  # the test's months are in the past
    calls = meter_create(spec=MeterSpec(api_name="calls", label="Calls", aggregation="SUM"))
    meter_create(spec=MeterSpec(api_name="peak", label="Peak", aggregation="MAX"))
    first, second = TenantFactory(name="first"), TenantFactory(name="second")
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

    def event(number: int, tenant, at: datetime, value: int) -> dict:
        return {
            "eventId": f"e-{number}",
            "meterApiName": "calls",
            "tenantId": str(tenant.pk),
            "meterValue": value,
            "timestamp": at.isoformat(),
        }

    usage_events_ingest(
        events=[
            event(1, first, datetime(2026, 3, 1, 0, 0, tzinfo=UTC), 5),  # this period: 1 to 3 March
            event(2, second, datetime(2026, 3, 2, 11, 0, tzinfo=UTC), 7),
            event(3, first, datetime(2026, 2, 1, 9, 0, tzinfo=UTC), 2),  # last period: 1 to 3 February
            event(4, second, datetime(2026, 2, 2, 23, 59, tzinfo=UTC), 3),
            event(5, first, datetime(2026, 2, 3, 0, 0, tzinfo=UTC), 100),  # later in February: not compared
            event(6, first, datetime(2026, 2, 28, 0, 0, tzinfo=UTC), 100),
        ]
    )

    comparison = usage_period_comparison(now=now)

    assert (comparison.this_start, comparison.this_end) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 3, tzinfo=UTC),
    )
    assert (comparison.last_start, comparison.last_end) == (
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 2, 3, tzinfo=UTC),
    )
    rows = {row.meter.api_name: row for row in comparison.meters}
    assert rows["calls"].meter.pk == calls.id
    assert (rows["calls"].this_period, rows["calls"].last_period) == (Decimal(12), Decimal(5))
    # a maximum summed over tenants means nothing: not compared
    assert (rows["peak"].this_period, rows["peak"].last_period) == (None, None)


def test_a_short_last_month_ends_at_its_own_end():
    comparison = usage_period_comparison(now=datetime(2026, 3, 31, 8, 0, tzinfo=UTC))
    assert (comparison.last_start, comparison.last_end) == (
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
    )
