"""Screenshots of the console for the docs (docs/console/*.png), taken in Chromium through
Playwright against a running control plane with the demo data of ``./sbt run``:

    ./sbt run                                    # in one terminal: demo operator, tenants, usage
    .venv/bin/python -m sbt_site.console.screenshots --url http://127.0.0.1:8000 \\
        --password "$(cat var/demo-admin-password)"

Only reads pages; it logs in as the demo operator (``admin``). Chromium is Debian's (or
``SBT_TEST_CHROMIUM``), as for the browser tests, which fill the console's forms with the same
steps (``console_log_in``, ``usage_explorer_show``).
"""

import argparse
import os
import shutil
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

VIEWPORT = {"width": 1366, "height": 900}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--tenant", default="acme", help="the tenant whose page is shot")
    parser.add_argument("--out", default="docs/console", type=Path)
    args = parser.parse_args()
    chromium = os.environ.get("SBT_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("Chromium not found: apt-get install chromium, or set SBT_TEST_CHROMIUM", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    url = args.url.rstrip("/")
    today = datetime.now(UTC).date()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}/admin/login/")
        console_log_in(page, username=args.username, password=args.password)
        shoot(page, args.out / "dashboard.png")

        page.goto(f"{url}/admin/tenants/tenant/?q={args.tenant}")
        page.locator("#result_list tbody tr th a", has_text=args.tenant).first.click()
        page.wait_for_selector("#tenant-page")
        page.wait_for_timeout(500)  # the charts draw after DOMContentLoaded
        shoot(page, args.out / "tenant.png")  # the console's panels open the page, buttons first

        page.goto(f"{url}/admin/console/usage/")
        usage_explorer_show(
            page, meter="api_calls", start=today - timedelta(days=13), end=today, time_zone="Europe/Paris",
            group_by="region",
        )  # fmt: skip
        page.wait_for_timeout(500)
        shoot(page, args.out / "usage-explorer.png")
        browser.close()
    return 0


def console_log_in(page, *, username: str, password: str) -> None:
    """Log in on the console's login page, which ``page`` shows, and wait for the overview."""
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#card-tenants")


def usage_explorer_show(
    page,
    *,
    meter: str,
    start: date,
    end: date,
    time_zone: str,
    tenant: str | None = None,
    granularity: str | None = None,
    group_by: str = "",
) -> None:
    """Ask the usage explorer's form, which ``page`` shows, for a meter's usage and wait for the
    answer's table. The meter and the tenant are named as the form lists them (api name, tenant
    name); the tenant and the granularity are left at the form's default (all, DAY) unless given."""
    page.select_option("#id_meter", label=meter)
    if tenant is not None:
        page.select_option("#id_tenant", label=tenant)
    page.fill("#id_start", start.isoformat())
    page.fill("#id_end", end.isoformat())
    if granularity is not None:
        page.select_option("#id_granularity", granularity)
    page.fill("#id_time_zone", time_zone)
    page.fill("#id_group_by", group_by)
    page.click("#usage-form button[type=submit]")
    page.wait_for_selector("#usage-table")


def shoot(page, path: Path) -> None:
    page.screenshot(path=str(path))
    print(f"{path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    sys.exit(main())
