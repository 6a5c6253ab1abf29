"""Screenshots of the console for the docs (docs/console/*.png), taken in Chromium through
Playwright against a running control plane with the demo data of ``./sbt run``:

    ./sbt run                                    # in one terminal: demo operator, tenants, usage
    .venv/bin/python -m sbt_site.console.screenshots --url http://127.0.0.1:8000 \\
        --password "$(cat var/demo-admin-password)"

Only reads pages; it logs in as the demo operator (``admin``). Chromium is Debian's (or
``SBT_TEST_CHROMIUM``), as for the browser tests.
"""

import argparse
import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
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
        page.fill("#id_username", args.username)
        page.fill("#id_password", args.password)
        page.click("input[type=submit]")
        page.wait_for_selector("#card-tenants")
        shoot(page, args.out / "dashboard.png")

        page.goto(f"{url}/admin/tenants/tenant/?q={args.tenant}")
        page.locator("#result_list tbody tr th a", has_text=args.tenant).first.click()
        page.wait_for_selector("#tenant-page")
        page.wait_for_timeout(500)  # the charts draw after DOMContentLoaded
        shoot(page, args.out / "tenant.png")  # the console's panels open the page, buttons first

        page.goto(f"{url}/admin/console/usage/")
        page.select_option("#id_meter", label="api_calls")
        page.fill("#id_start", (today - timedelta(days=13)).isoformat())
        page.fill("#id_end", today.isoformat())
        page.fill("#id_time_zone", "Europe/Paris")
        page.fill("#id_group_by", "region")
        page.click("#usage-form button[type=submit]")
        page.wait_for_selector("#usage-table")
        page.wait_for_timeout(500)
        shoot(page, args.out / "usage-explorer.png")
        browser.close()
    return 0


def shoot(page, path: Path) -> None:
    page.screenshot(path=str(path))
    print(f"{path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    sys.exit(main())
