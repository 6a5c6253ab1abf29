"""The operator console in a real browser (Debian's Chromium driven by Playwright), against a
live server: the overview's figures lead to the rows they count, usage sent through the API shows
in the explorer for a chosen range and time zone, a failing webhook is watched and resent from
its attempt log, and the tenant page shows one customer's data. Each test asserts what the page
shows. Chromium as in test_admin_browser (a missing browser fails, it is not skipped)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from accounts.models import User
from billing.models import BillingCustomer
from events.tests.conftest import receiver  # noqa: F401  (the loopback webhook receiver fixture)
from metering.interface import MeterSpec
from metering.services import meter_create, usage_events_ingest
from provisioning.services import provisioning_job_create
from provisioning.tests.conftest import job_values
from sbt_site.console.screenshots import console_log_in, usage_explorer_show
from sbt_site.tests.test_admin_browser import CHROMIUM_ARGS, chromium_path
from tenants.services import tenant_registration_apply_job_output
from tenants.tests.factories import tenant_registration_onboard

PASSWORD = "operator-password-1234"
pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def browser_page(live_server):
    """``open_page() -> page`` logged in as an operator, failing the test on any 5xx answer. The
    database is prepared before the first call: Django refuses ORM calls from a thread running
    Playwright's event loop."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    get_user_model().objects.create_superuser(username="operator", email="op@example.com", password=PASSWORD)
    problems: list[str] = []
    state = {}

    def open_page():
        state["playwright"] = sync_playwright().start()
        state["browser"] = state["playwright"].chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = state["browser"].new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(30_000)
        page.on("response", lambda response: response.status >= 500 and problems.append(response.url))
        page.goto(live_server.url + "/admin/")
        console_log_in(page, username="operator", password=PASSWORD)
        return page

    yield open_page
    if "browser" in state:
        state["browser"].close()
        state["playwright"].stop()
    assert problems == [], f"5xx answers: {problems}"


def figure(page, card: str, label: str):
    return page.locator(f"#card-{card} .console-figure", has=page.locator("dt", has_text=label)).locator("dd a")


def follow(page, link) -> None:
    with page.expect_navigation():
        link.click()


def listed_names(page) -> list[str]:
    """The first column of the admin list on the page."""
    page.wait_for_selector("#result_list")
    return [cell.inner_text() for cell in page.query_selector_all("#result_list tbody tr th")]


def test_dashboard_figures_link_to_the_filtered_lists(browser_page):
    for name in ("waiting", "pending", "broken", "done"):
        tenant_registration_onboard(name)
    broken = tenant_registration_onboard("broken-too")
    tenant_registration_apply_job_output(registration_id=broken.pk, outcome="provisionFailure", reason="no room")
    BillingCustomer.objects.filter(tenant__name="pending").update(status=BillingCustomer.Status.PAST_DUE)

    page = browser_page()
    assert figure(page, "tenants", "In progress").inner_text() == "4"
    assert figure(page, "tenants", "failed").inner_text() == "1"
    assert figure(page, "needs-attention", "billing customers past due").inner_text() == "1"

    follow(page, figure(page, "tenants", "failed"))
    page.wait_for_selector("#result_list")
    assert listed_names(page) == ["broken-too"]
    page.go_back()
    follow(page, figure(page, "needs-attention", "registrations failed"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and "broken-too" in rows.inner_text()
    page.go_back()
    follow(page, figure(page, "needs-attention", "billing customers past due"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and "pending" in rows.inner_text()
    page.go_back()
    follow(page, figure(page, "tenants", "In progress"))
    assert sorted(listed_names(page)) == ["broken", "done", "pending", "waiting"]


def test_usage_sent_through_the_api_shows_in_the_explorer_for_a_range_and_time_zone(
    browser_page, live_server, make_token
):
    meter = meter_create(spec=MeterSpec(api_name="calls", label="Calls", aggregation="SUM", unit="calls"))
    acme = tenant_registration_onboard("acme").tenant
    tenant_registration_onboard("globex")
    token = make_token(scopes="usage/usage_write")
    # a day three days ago; New York is 5 hours behind UTC in winter, 4 in summer: times are
    # chosen so that the local day is the same either way
    day = (datetime.now(UTC) - timedelta(days=3)).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    sent = [
        (midnight + timedelta(hours=2), 5),  # the day before in New York (21:00 or 22:00)
        (midnight + timedelta(hours=15), 7),  # the day itself (10:00 or 11:00)
        (
            midnight + timedelta(hours=27, minutes=30),
            11,
        ),  # the next UTC day, still the day itself in New York (22:30 or 23:30)
    ]
    events = [
        {"eventId": f"api-{index}", "meterApiName": "calls", "tenantId": str(acme.pk), "meterValue": value,
         "timestamp": moment.isoformat()}
        for index, (moment, value) in enumerate(sent)
    ]  # fmt: skip

    page = browser_page()
    answer = page.request.post(
        live_server.url + "/api/v1/usage",
        headers={"Authorization": f"Bearer {token}"},
        data={"events": events},
    )
    assert answer.status == 201, answer.text()
    assert answer.json()["data"] == {"accepted": 3, "duplicates": 0}

    page.click("#nav-sidebar a:text-is('Usage explorer')")
    usage_explorer_show(
        page, meter="calls", tenant="acme", start=day - timedelta(days=1), end=day, granularity="DAY",
        time_zone="America/New_York",
    )  # fmt: skip

    rows = [
        [cell.inner_text() for cell in row.query_selector_all("td")]
        for row in page.query_selector_all("#usage-table tbody tr")
    ]
    assert [(row[0], row[2], row[3], row[4]) for row in rows] == [
        (f"{day - timedelta(days=1)} 00:00", "acme", "5", "1"),
        (f"{day} 00:00", "acme", "18", "2"),
    ]
    assert page.inner_text("#usage-total") == "23"
    assert "America/New_York" in page.inner_text("#content-main h2")
    chart = page.evaluate(
        """() => { const chart = Chart.getChart(document.getElementById("usage-chart"));
                   return {labels: chart.data.labels, data: chart.data.datasets[0].data,
                           x: chart.options.scales.x.title.text, y: chart.options.scales.y.title.text,
                           tooltip: chart.options.plugins.tooltip.enabled}; }"""
    )
    assert chart == {
        "labels": [str(day - timedelta(days=1)), str(day)],
        "data": [5, 18],
        "x": "window start (day)",
        "y": "calls",
        "tooltip": True,
    }

    # a zone that does not exist is a form error, not a 500
    page.fill("#id_time_zone", "Mars/Olympus")
    follow(page, page.locator("#usage-form button[type=submit]"))
    assert "is not an IANA time zone" in page.inner_text("#errors-time_zone")

    page.goto(
        live_server.url + f"/admin/console/usage/?meter={meter.id}&tenant={acme.pk}"
        f"&start={day - timedelta(days=1)}&end={day}&granularity=DAY&time_zone=America/New_York"
    )
    with page.expect_download() as download:
        page.click("#csv-export")
    with open(download.value.path()) as exported:
        lines = exported.read().splitlines()
    assert lines[0] == "windowStart,windowEnd,tenantId,tenantName,group,value,eventCount"
    assert [line.split(",")[5] for line in lines[1:]] == ["5", "18"]


def test_a_failing_webhook_is_watched_and_resent_from_its_attempt_log(browser_page, receiver):  # noqa: F811
    receiver.default = 500
    watch_a_failing_webhook_and_resend_it(browser_page(), receiver)


def watch_a_failing_webhook_and_resend_it(page, receiver) -> None:  # noqa: F811
    """Subscribe the failing ``receiver``, send it a test event, find the failing delivery from
    the overview, read its attempt log and resend it once the receiver answers again (also a step
    of test_console_operator's walk)."""
    page.click("#nav-sidebar a[href='/admin/events/subscription/add/']")
    page.fill("#id_url", receiver.url)
    page.fill("#id_description", "application plane")
    page.check("input[name=event_types_text][value=onboardingRequest]")
    page.check("input[name=event_types_text][value=offboardingRequest]")
    follow(page, page.locator("input[name=_save]"))
    assert "Signing secret (shown only now" in page.inner_text("ul.messagelist")
    row = page.locator("#result_list tbody tr", has_text="application plane")
    assert "onboardingRequest" in row.inner_text() and "offboardingRequest" in row.inner_text()

    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "send_test_event")
    follow(page, page.locator("button[name=index]"))
    assert "Test events sent: 1" in page.inner_text("ul.messagelist")

    page.goto(page.url.split("/admin/")[0] + "/admin/")
    assert figure(page, "needs-attention", "webhook deliveries failing").inner_text() == "1"
    follow(page, figure(page, "needs-attention", "webhook deliveries failing"))
    follow(page, page.locator("#result_list tbody tr th a").first)
    log = page.locator("#attempt-log tbody tr")
    assert log.count() == 1
    first = [cell.inner_text() for cell in log.first.locator("td").all()]
    assert (first[0], first[2]) == ("1", "500")
    assert "HTTP 500: receiver is unhappy" in first[4]

    receiver.default = 200
    follow(page, page.locator("#resend-delivery"))
    assert "Resending now" in page.inner_text("ul.messagelist")
    page.reload()
    rows = [
        [cell.inner_text() for cell in row.locator("td").all()] for row in page.locator("#attempt-log tbody tr").all()
    ]
    assert [(row[0], row[2], row[4]) for row in rows] == [
        ("1", "200", "ok"),
        ("1", "500", "HTTP 500: receiver is unhappy"),
    ]
    assert page.locator("#resend-delivery").count() == 0  # delivered: nothing to resend
    assert len(receiver.requests) == 2

    follow(page, page.locator("#content-main .field-subscription a").first)
    assert page.inner_text("#success-rate") == "50 %"
    assert "500" in page.inner_text("#last-failure")


def test_the_tenant_page_shows_one_customers_data(browser_page, make_oauth_client):
    meter_create(spec=MeterSpec(api_name="calls", label="Calls", aggregation="SUM", unit="calls"))
    provisioning_job_create(values=job_values())  # onboarding runs it: the registration is then created
    tenant = tenant_registration_onboard("acme").tenant
    tenant_registration_onboard("globex")
    User.objects.create_user(username="alice", email="alice@acme.test", tenant=tenant, role="TenantAdmin")
    make_oauth_client(scopes="usage/usage_write", tenant=tenant, name="acme integration")
    now = datetime.now(UTC)
    usage_events_ingest(
        events=[
            {"eventId": f"u-{hours}", "meterApiName": "calls", "tenantId": str(tenant.pk), "meterValue": 4,
             "timestamp": (now - timedelta(hours=hours)).isoformat()}
            for hours in (1, 30, 50)
        ]
    )  # fmt: skip
    customer = BillingCustomer.objects.get(tenant=tenant)

    page = browser_page()
    page.click("#nav-sidebar a[href='/admin/tenants/tenant/']")
    page.locator("#result_list tbody tr th a", has_text="acme").click()
    page.wait_for_selector("#tenant-page")

    status = page.inner_text("#tenant-status")
    assert "acme" in status and "active" in status and "registration: created" in status
    assert [button.inner_text() for button in page.locator("#tenant-actions a.button").all()] == [
        "Deactivate…",
        "Offboard…",
    ]
    assert page.inner_text("[data-usage-total=calls]") == "12"
    bars = page.evaluate("() => Chart.getChart(document.getElementById('usage-calls')).data.datasets[0].data")
    assert len(bars) == 30 and sum(bars) == 12
    assert "alice" in page.inner_text("#tenant-users") and "TenantAdmin" in page.inner_text("#tenant-users")
    assert "acme integration" in page.inner_text("#tenant-clients")
    assert customer.provider in page.inner_text("#tenant-billing")
    assert customer.status in page.inner_text("#tenant-billing")
    events = page.inner_text("#tenant-events")
    assert "onboardingRequest" in events and "globex" not in events

    run = [cell.inner_text() for cell in page.locator("#tenant-runs tbody tr").first.locator("td").all()]
    assert run[1:5] == ["onboard", "onboardingRequest", "1", "succeeded"]
    assert all(":" in moment for moment in run[5:7]), f"started and finished are times: {run}"

    follow(page, page.locator("#tenant-actions a", has_text="Deactivate…"))
    assert "Every token of its users and OAuth clients is revoked" in page.inner_text(".consequences")
    page.fill("#id_reason", "trial over")
    follow(page, page.locator("input[type=submit][value='Yes, deactivate']"))
    assert "Deactivated tenant acme." in page.inner_text("ul.messagelist")
    assert "inactive" in page.inner_text("#tenant-status")
    assert [button.inner_text() for button in page.locator("#tenant-actions a.button").all()] == [
        "Activate…",
        "Offboard…",
    ]
    assert "deactivateRequest" in page.inner_text("#tenant-events")
    assert "Deactivated (admin): trial over" in page.inner_text("#tenant-history")

    follow(page, page.locator("#tenant-runs tbody tr a").first)
    assert "succeeded" in page.inner_text("#content-main") and "tenantConfig" in page.inner_text("#content-main")
