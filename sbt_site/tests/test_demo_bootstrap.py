"""The embedded default's first look: operator, demo client, tenants with prices, meters and usage."""

from io import StringIO

import pytest
from django.core.management import call_command

from metering.models import Meter, UsageEvent
from metering.selectors import usage_window_totals
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def test_demo_data_is_seeded_once_and_queryable(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    output = StringIO()
    call_command("demo_bootstrap", stdout=output)
    assert "Seeded demo meters api_calls, active_users with 2880 usage events" in output.getvalue()
    assert set(Meter.objects.values_list("api_name", flat=True)) == {"api_calls", "active_users"}
    acme = Tenant.objects.get(name="acme")
    assert acme.prices == [{"id": "price_demo_api_calls", "metricName": "api_calls"}]
    assert UsageEvent.objects.count() == 2880

    # the usage is readable the way billing reads it: 30 days of hourly windows for acme
    from django.utils import timezone

    end = timezone.now().replace(minute=0, second=0, microsecond=0)
    windows = usage_window_totals(
        meter_api_name="api_calls", tenant_id=acme.pk, start=end - timezone.timedelta(days=31), end=end
    )
    assert len(windows) == 30 * 24
    assert all(window.value > 0 for window in windows)

    again = StringIO()
    call_command("demo_bootstrap", stdout=again)
    assert "Seeded" not in again.getvalue()
    assert UsageEvent.objects.count() == 2880 and Meter.objects.count() == 2
