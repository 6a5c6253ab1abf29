"""Admin smoke test in a real browser (Chromium driven by Playwright).

An operator logs in, finds a tenant, deactivates and activates it with the admin actions, and
opens the event the action published. ``./sbt test`` installs Chromium (Debian's ``chromium``
package) when it runs as root; elsewhere, install it or point ``SBT_TEST_CHROMIUM`` at one.
A missing browser fails this test: it is not skipped.
"""

import os
import shutil

import pytest
from django.contrib.auth import get_user_model

from events.models import Event
from tenants.models import TenantRegistration
from tenants.services import tenant_registration_create

PASSWORD = "operator-password-1234"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    path = os.environ.get("SBT_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "Chromium not found: apt-get install chromium (./sbt test does it as root) or set SBT_TEST_CHROMIUM",
            pytrace=False,
        )
    return path


def test_operator_logs_in_and_deactivates_and_activates_a_tenant(live_server, transactional_db):
    from playwright.sync_api import sync_playwright

    # The database is prepared before Playwright's event loop runs in this thread (Django
    # refuses ORM calls from a thread with a running loop) and checked after it stopped.
    executable = chromium_path()
    get_user_model().objects.create_superuser(username="operator", email="op@example.com", password=PASSWORD)
    registration = tenant_registration_create(
        tenant_data={"tenantName": "globex", "email": "ops@globex.test", "tier": "basic"}, registration_data=None
    )

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            problems = operate(browser, live_server.url, registration.tenant_id)
        finally:
            browser.close()

    assert problems == [], f"5xx answers: {problems}"
    registration = TenantRegistration.objects.select_related("tenant").get(pk=registration.pk)
    assert registration.active and registration.tenant.active
    assert set(Event.objects.values_list("detail_type", flat=True)) >= {"deactivateRequest", "activateRequest"}


def operate(browser, url: str, tenant_id) -> list[str]:
    """The operator's clicks; returns the URLs that answered 5xx."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(30_000)
    problems = []
    page.on("response", lambda response: response.status >= 500 and problems.append(response.url))

    page.goto(url + "/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    assert "SBT control plane" in page.inner_text("#site-name")

    page.click("#content-main a[href='/admin/tenants/tenant/']")
    row = page.locator("#result_list tbody tr", has_text="globex")
    assert "In progress" in row.inner_text()

    def run_action(action: str) -> list[str]:
        page.locator("#result_list tbody tr", has_text="globex").locator("input.action-select").check()
        page.select_option("select[name=action]", action)
        page.click("button[name=index]")
        if action == "deactivate":  # a destructive action asks first (test_console_operator.py)
            page.click("input[type=submit][value='Yes, deactivate']")
        page.wait_for_selector("ul.messagelist li")
        return [message.inner_text() for message in page.query_selector_all("ul.messagelist li")]

    assert run_action("deactivate") == ["Deactivated: 1 tenant(s)."]
    errors = run_action("deactivate")
    assert len(errors) == 1 and errors[0].startswith("Skipped globex: ") and "already deactivated" in errors[0]
    assert run_action("activate") == ["Activated: 1 tenant(s)."]

    page.click("#nav-sidebar a[href='/admin/events/event/']")
    page.locator("#result_list a", has_text="activateRequest").first.click()
    page.wait_for_selector("text=Detail")
    assert "globex" in page.inner_text("#content-main")
    page.click(f"a[href='/admin/tenants/tenant/{tenant_id}/change/']")
    assert "globex" in page.inner_text("#content-main")
    page.close()
    return problems
