"""Two push runs at the same time (a manual run during the scheduled one) still bill each window once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from billing.models import BillingCustomer, UsagePush
from billing.services import usage_push_run
from metering.interface import MeterSpec
from metering.services import meter_create, usage_events_ingest


@pytest.mark.django_db(transaction=True)
def test_concurrent_push_runs_send_each_window_once(stripe_billing, make_tenant, onboard):
    stripe_billing.create_meter("api_calls")
    price = stripe_billing.create_price("api_calls")
    meter_create(spec=MeterSpec(api_name="api_calls", label="API calls", aggregation="SUM"))
    tenant = make_tenant(prices=[{"id": price["id"], "metricName": "api_calls"}])
    onboard(tenant)
    current_hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    usage_events_ingest(
        events=[
            {
                "eventId": f"c{hours}",
                "meterApiName": "api_calls",
                "tenantId": str(tenant.pk),
                "meterValue": hours,
                "timestamp": (current_hour - timedelta(hours=hours, minutes=-10)).isoformat(),
            }
            for hours in range(1, 21)
        ]
    )
    stripe_billing.latency = 0.005
    errors = []

    def run():
        try:
            usage_push_run()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    customer_id = BillingCustomer.objects.get().provider_customer_id
    live = stripe_billing.live_events("api_calls")
    assert len(live) == 20, "one meter event per window"
    assert sum(stripe_billing.totals("api_calls", customer_id).values()) == sum(range(1, 21))
    assert UsagePush.objects.filter(status=UsagePush.Status.SENT).count() == 20
