"""Screenshot of the KPI page for docs/img/kpi-dashboard.png, from the running demo stack.

    make demo && .venv/bin/python docs/tools/kpi_screenshot.py

Creates a kpis:read token, opens /dashboard in Debian's Chromium (Playwright drives it) and
saves a full-page screenshot once the page says it has loaded.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from playwright.sync_api import sync_playwright  # noqa: E402

from oms import tokens  # noqa: E402
from oms.settings import get_settings  # noqa: E402
from oms.warehouse import connect  # noqa: E402


def main(out: Path = REPO / "docs" / "img" / "kpi-dashboard.png") -> None:
    settings = get_settings()
    with connect(settings.warehouse_dsn) as conn:
        token = tokens.create_token(conn, "docs-screenshot", ["kpis:read"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{settings.api_url}/dashboard#token={token}")
        page.wait_for_selector("#status[data-state=loaded]", timeout=60_000)
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    with connect(settings.warehouse_dsn) as conn:
        conn.execute("UPDATE oms.api_token SET revoked_at = now() WHERE name = 'docs-screenshot' AND revoked_at IS NULL")
    print(out)


if __name__ == "__main__":
    main()
