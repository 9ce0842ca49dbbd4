"""Screenshots of a running demo's Dagster UI (asset graph, state-sensor ticks) with headless Chromium.

Run `scripts/screenshots` while `scripts/demo` runs; needs Debian's chromium and the `playwright` package
(the browser is the system one: nothing is downloaded).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

UI = os.environ.get("DAGSTER_UI", "http://127.0.0.1:3000")
OUT = Path(__file__).resolve().parent
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    """Open each page, dismiss the community prompt, wait for the content, and save a PNG."""
    browser_path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{UI}/asset-groups", wait_until="networkidle")
        dismiss_prompt(page)
        page.wait_for_timeout(3000)
        page.screenshot(path=OUT / "asset-graph.png")
        print(f"wrote {OUT / 'asset-graph.png'}")
        page.set_viewport_size({"width": 1440, "height": 1500})  # the cursor is long; the ticks are below it
        page.goto(f"{UI}/locations/roughy/sensors/roughy_asset_state_sensor", wait_until="networkidle")
        dismiss_prompt(page)
        page.wait_for_timeout(2000)
        page.screenshot(path=OUT / "sensor-ticks.png", full_page=False)
        print(f"wrote {OUT / 'sensor-ticks.png'}")
        browser.close()


def dismiss_prompt(page: Page) -> None:
    """Close Dagster's 'Join the community' dialog when it shows."""
    page.wait_for_timeout(1500)
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.first.click()
        page.wait_for_timeout(500)


if __name__ == "__main__":
    sys.exit(main())
