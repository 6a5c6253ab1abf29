"""'Run a usage push now' on the usage pushes list: a confirmation that says what will be sent
(a dry run of the service the periodic task calls), then the push; failures are messages."""

import pytest
from django.utils.html import escape

from billing.models import UsagePush
from billing.tests.test_admin_and_config import operator  # noqa: F401  (the logged-in operator fixture)
from billing.tests.test_push import METER, billed_tenant, ingest  # noqa: F401  (billed_tenant is a fixture)

pytestmark = pytest.mark.django_db
PUSH_NOW = "/admin/billing/usagepush/push-now/"


def test_the_list_offers_it_and_the_confirmation_says_what_will_be_sent(operator, stripe_billing, billed_tenant):  # noqa: F811
    ingest(billed_tenant, 2, [3, 4])
    assert f'href="{PUSH_NOW}"' in operator.get("/admin/billing/usagepush/").content.decode()

    page = operator.get(PUSH_NOW).content.decode()
    assert "Run a usage push now?" in page
    assert f"{billed_tenant.name} / {METER}: 1 new window(s), 0 correction(s), 0 resend(s), value 7" in page
    assert "(stripe)" in page and "Yes, push now" in page
    assert UsagePush.objects.count() == 0, "the confirmation sends nothing"

    done = operator.post(PUSH_NOW, {"post": "yes"}, follow=True).content.decode()
    assert "Usage push: 1 sent, 0 failed, value 7." in done
    assert list(stripe_billing.meter_events) == [UsagePush.objects.get().identifier]
    assert "Nothing new to send" in operator.get(PUSH_NOW).content.decode()


def test_a_failing_provider_is_reported_as_messages(operator, stripe_billing, billed_tenant):  # noqa: F811
    ingest(billed_tenant, 2, [5])
    stripe_billing.fail_next(4)  # every attempt of the push

    response = operator.post(PUSH_NOW, {"post": "yes"}, follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Usage push: 0 sent, 1 failed, value 0." in page
    assert f"Not sent for {billed_tenant.name} / {METER}: " in page and escape(UsagePush.objects.get().error) in page


def test_a_misconfigured_provider_is_a_message_not_a_500(operator, settings):  # noqa: F811
    settings.SBT_PROVIDERS = {"billing": {"BACKEND": "billing.providers.stripe.StripeBillingProvider"}}

    for response in (operator.get(PUSH_NOW, follow=True), operator.post(PUSH_NOW, {"post": "yes"}, follow=True)):
        assert response.status_code == 200
        assert "Usage push not run:" in response.content.decode()
