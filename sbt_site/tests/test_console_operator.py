"""Issue 15's operator walk, end to end in a real browser (Chromium driven by Playwright),
through the console only, one operator task after the other on one tenant: onboard it, record its
provisioning result, see it on the dashboard, create a meter and be refused an invalid one with
the API's message, send usage through the API and see it in the explorer for a chosen range and
time zone, subscribe a webhook, send a test, watch the failing delivery and resend it, cancel
usage events (after a confirmation page), run a usage push now (the local billing provider, after
a confirmation page that says what will be sent), deactivate (after a confirmation page),
reactivate and offboard (after a confirmation page). Each step asserts what the page shows.
Chromium as in test_admin_browser.py (not skipped).
"""

from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model

from billing.models import UsagePush
from events.tests.conftest import receiver  # noqa: F401  (the loopback webhook receiver fixture)
from metering.models import UsageEvent
from sbt_site.tests.test_admin_browser import CHROMIUM_ARGS, PASSWORD, chromium_path
from sbt_site.tests.test_console_browser import figure, follow, listed_names, watch_a_failing_webhook_and_resend_it
from tenants.models import Tenant


def test_an_operator_runs_the_saas_from_the_console(live_server, transactional_db, make_token, receiver):  # noqa: F811
    # The database is prepared before Playwright's event loop runs (Django refuses ORM calls from
    # a thread with a running loop) and checked after it stopped; the walk itself is all pages.
    get_user_model().objects.create_superuser(username="operator", email="op@example.com", password=PASSWORD)
    usage_token = make_token(scopes="usage/usage_write")
    receiver.default = 500

    _in_browser(
        live_server.url,
        _onboard_and_record_provisioning,
        _see_it_on_the_dashboard,
        _create_meters,
        lambda page, url: _send_usage_and_explore_it(page, url, usage_token),
        lambda page, url: watch_a_failing_webhook_and_resend_it(page, receiver),
        _cancel_usage,
        _push_usage_now,
        _deactivate_reactivate_offboard,
    )

    tenant = Tenant.objects.get(name="initech")
    assert not tenant.active and tenant.registration.status == "deleting"
    assert UsageEvent.objects.filter(cancelled_at__isnull=False).count() == 2
    push = UsagePush.objects.get(customer__tenant=tenant)
    assert (push.status, push.value, push.customer.provider) == (UsagePush.Status.SENT, 31, "local")


def _in_browser(url: str, *steps) -> None:
    """Log in as the operator and run ``steps(page, url)``; no page may answer 5xx."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = _logged_in(browser, url)
            page.on("response", lambda response: response.status >= 500 and problems.append(response.url))
            for step in steps:
                step(page, url)
        finally:
            browser.close()
    assert problems == [], f"5xx answers: {problems}"


def _logged_in(browser, url: str):
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(url + "/")  # the site's root leads to the console
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def _messages(page) -> list[str]:
    return [item.inner_text() for item in page.query_selector_all("ul.messagelist li")]


def _onboard_and_record_provisioning(page, url: str) -> None:
    page.goto(url + "/admin/tenants/tenant/")
    page.click(".object-tools a.addlink")
    page.fill("#id_tenant_name", "initech")
    page.fill("#id_email", "ops@initech.test")
    page.fill("#id_tier", "gold")
    page.fill("#id_prices", '[{"id": "price_seats", "metricName": "seats_used"}]')
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    assert any("Tenant initech onboarded" in message for message in _messages(page))
    assert "In progress" in page.inner_text("#content-main")

    page.click("text=Record provisioning result")
    page.check("input[name=outcome][value=failed]")
    page.click("input[type=submit]")
    assert "Say why provisioning failed" in page.inner_text("#content-main"), "a failure needs its reason"
    page.check("input[name=outcome][value=created]")
    page.fill("#id_tenant_config", '{"url": "https://initech.test"}')
    page.click("input[type=submit]")
    page.wait_for_selector("ul.messagelist")
    assert "Registration of initech is now 'created'." in _messages(page)
    content = page.inner_text("#content-main")
    assert "created" in content and "https://initech.test" in content
    assert "Record provisioning result" not in content, "a created registration has nothing to record"


def _create_meters(page, url: str) -> None:
    page.goto(url + "/admin/metering/meter/add/")
    page.fill("#id_api_name", "Seats Used")
    page.fill("#id_label", "Seats")
    page.select_option("#id_aggregation", "SUM")
    page.click("input[name=_save]")
    errors = page.inner_text(".errorlist")
    assert "meterApiName must start with a letter or digit" in errors, errors

    page.fill("#id_api_name", "seats_used")
    page.select_option("#id_aggregation", "UNIQUE_COUNT")
    page.click("input[name=_save]")
    assert "uniqueProperty is required for UNIQUE_COUNT" in page.inner_text(".errorlist")

    page.select_option("#id_aggregation", "SUM")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    assert "seats_used" in page.inner_text("#result_list")


def _see_it_on_the_dashboard(page, url: str) -> None:
    page.goto(url + "/admin/")
    assert figure(page, "tenants", "created").inner_text() == "1"
    assert "onboardingRequest" in page.inner_text("#card-recent-events")
    follow(page, figure(page, "tenants", "created"))
    assert listed_names(page) == ["initech"]


def _send_usage_and_explore_it(page, url: str, token: str) -> None:
    """Three events of 31 seats, one, two and three hours ago (closed hours, which the usage push
    sends), through POST /api/v1/usage; then the explorer's total for them in Tokyo time."""
    page.goto(url + "/admin/tenants/tenant/?q=initech")
    page.click("#result_list a:text('initech')")
    tenant_id = page.inner_text(".field-id .readonly").strip()
    now = datetime.now(UTC)
    events = [
        {"eventId": f"seat-{hours - 1}", "meterApiName": "seats_used", "tenantId": tenant_id, "meterValue": 31,
         "timestamp": (now - timedelta(hours=hours)).isoformat()}
        for hours in (1, 2, 3)
    ]  # fmt: skip
    answer = page.request.post(
        url + "/api/v1/usage", headers={"Authorization": f"Bearer {token}"}, data={"events": events}
    )
    assert answer.status == 201, answer.text()
    assert answer.json()["data"] == {"accepted": 3, "duplicates": 0}

    page.goto(url + "/admin/console/usage/")
    page.select_option("#id_meter", label="seats_used")
    page.select_option("#id_tenant", label="initech")
    today = now.date()  # Tokyo is 9 hours ahead: its days around these hours are within the range
    page.fill("#id_start", (today - timedelta(days=1)).isoformat())
    page.fill("#id_end", (today + timedelta(days=1)).isoformat())
    page.select_option("#id_granularity", "DAY")
    page.fill("#id_time_zone", "Asia/Tokyo")
    follow(page, page.locator("#usage-form button[type=submit]"))
    assert page.inner_text("#usage-total") == "93"
    assert "Asia/Tokyo" in page.inner_text("#content-main h2")
    assert all("initech" in row.inner_text() for row in page.locator("#usage-table tbody tr").all())


def _cancel_usage(page, url: str) -> None:
    page.goto(url + "/admin/metering/usageevent/?q=initech")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 3
    assert "initech" in rows.first.inner_text() and "31" in rows.first.inner_text()
    assert "31.000000000" not in page.inner_text("#result_list")
    for event_id in ("seat-0", "seat-1"):
        page.locator("#result_list tbody tr", has_text=event_id).locator("input.action-select").check()
    page.select_option("select[name=action]", "cancel_events")
    page.click("button[name=index]")
    page.wait_for_selector(".consequences")
    assert "The events stop counting" in page.inner_text(".consequences")
    page.click("input[type=submit][value='Yes, cancel them']")
    page.wait_for_selector("ul.messagelist")
    assert "Cancelled 2 events; rollups adjusted." in _messages(page)


def _push_usage_now(page, url: str) -> None:
    page.goto(url + "/admin/billing/usagepush/")
    page.click("#push-now")
    page.wait_for_selector(".consequences")
    # seat-0 and seat-1 were cancelled: only the hour of seat-2 is left to bill
    assert "initech / seats_used: 1 new window(s), 0 correction(s), 0 resend(s), value 31" in page.inner_text(
        ".confirmation-objects"
    )
    assert "billing provider (local)" in page.inner_text(".consequences")
    page.click("input[type=submit][value='Yes, push now']")
    page.wait_for_selector("ul.messagelist")
    assert "Usage push: 1 sent, 0 failed, value 31." in _messages(page)
    row = page.locator("#result_list tbody tr", has_text="initech")
    assert row.count() == 1 and "seats_used" in row.inner_text() and "Sent" in row.inner_text()


def _deactivate_reactivate_offboard(page, url: str) -> None:
    page.goto(url + "/admin/tenants/tenant/?q=initech")
    page.click("#result_list a:text('initech')")

    page.click("a.lifecycle-button:text('Deactivate…')")
    consequences = page.inner_text(".consequences")
    assert "Every token of its users and OAuth clients is revoked" in consequences
    assert "deactivateRequest is sent to the application plane." in consequences
    page.fill("#id_reason", "invoice 42 unpaid")
    page.click("input[type=submit][value='Yes, deactivate']")
    page.wait_for_selector("ul.messagelist")
    assert "Deactivated tenant initech." in _messages(page)

    page.click("a.lifecycle-button:text('Activate…')")
    assert "activateRequest is sent" in page.inner_text(".consequences")
    page.click("input[type=submit][value='Yes, activate']")
    page.wait_for_selector("ul.messagelist")
    assert "Activated tenant initech." in _messages(page)

    page.click("a.lifecycle-button:text('Offboard…')")
    consequences = page.inner_text(".consequences")
    assert "Its billing is cancelled" in consequences and "This cannot be undone." in consequences
    page.click("input[type=submit][value='Yes, offboard']")
    page.wait_for_selector("ul.messagelist")
    assert "Offboarded tenant initech." in _messages(page)
    assert "deleting" in page.inner_text("#content-main")
    assert page.locator("a.lifecycle-button").count() == 0, "an offboarded tenant has no lifecycle buttons"

    page.goto(url + "/admin/auditlog/logentry/?q=initech")
    log = page.inner_text("#result_list")
    assert "operator operator" in log and "invoice 42 unpaid" in log

    # The lists an operator works in fit a 1366 px screen (no sideways scrolling).
    for changelist in ("tenants/tenant", "tenants/tenantregistration", "metering/usageevent", "metering/meter",
                       "events/event", "billing/billingcustomer", "auditlog/logentry"):  # fmt: skip
        page.goto(f"{url}/admin/{changelist}/")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1366, f"{changelist} is {width} px wide"
