"""The panel in a real browser: Debian's chromium, headless, driven by Playwright.

A live server (pytest-django's ``live_server``) serves the test project on
127.0.0.1; the page ``/panel/signals/`` sends nested signals, a slow receiver, a
swallowed and a raised exception, a loop and an empty send. The test opens the
toolbar's panel, checks its rows, the filter box and escaping, and saves the
screenshot docs/panel.md shows: with ``SIGNALTRACE_UPDATE_SCREENSHOT=1`` it is
written to docs/img/panel.png, otherwise to the test's temporary directory (so a
test run leaves the checkout clean).

Skips only where no chromium is installed (tests/scripts/browser.sh installs it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import django
import pytest

from tests.chromium import CHROMIUM, LAUNCH_ARGS

DOCS_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "img" / "panel.png"
INCIDENTAL = ("connection_created", "template_rendered")

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no chromium at {CHROMIUM}: run tests/scripts/browser.sh (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")


@pytest.fixture
def browser_page():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            yield page
        finally:
            browser.close()


@pytest.mark.django_db(transaction=True)
def test_panel_in_chromium(live_server, browser_page, tmp_path):
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{live_server.url}/panel/signals/")
    page.locator("#djDebugPanelList a.SignalTracePanel").click()
    panel = page.locator("#SignalTracePanel")
    rows = panel.locator("details.st-dispatch")
    rows.first.wait_for()

    # Our subtitle in the toolbar's side bar. Besides the page's 12 dispatches, Django
    # may send connection_created, and on 4.2 template_rendered (see test_panels.py).
    nav = page.locator("#djDebugPanelList a.SignalTracePanel").inner_text()
    counted = re.search(r"(\d+) dispatches · (\d+) receivers · [\d.]+ ms", nav)
    assert counted is not None, nav
    total = int(counted.group(1))
    assert rows.count() == total
    page_rows = [row for row in rows.all() if not row.get_attribute("data-st-filter").startswith(INCIDENTAL)]
    assert len(page_rows) == 12

    # The dispatch tree, in order, indented by depth.
    signals = [row.locator(".st-signal").inner_text() for row in page_rows]
    assert signals[2].startswith("tests.testapp.panel_views.order_placed")
    assert signals[3].startswith("tests.testapp.panel_views.stock_checked")
    assert "st-depth-1" in page_rows[3].locator(".st-signal").get_attribute("class")
    assert "via tests.testapp.panel_views.reserve_stock" in signals[3]

    # The loop, in red at the top, with its cycle.
    loops = panel.locator(".st-loops")
    assert loops.is_visible()
    assert "stopped: SignalLoopError raised" in loops.inner_text()
    assert loops.locator(".st-cycle li").count() == 2  # echo -> echo, one turn of the cycle
    assert loops.evaluate("element => getComputedStyle(element).color") == "rgb(198, 40, 40)"

    # The slow receiver is highlighted before any row is opened, by its bar.
    slow_row = page_rows[2]
    assert "st-has-slow" in slow_row.get_attribute("class")
    # One highlighted bar per slow receiver: the one that sleeps, and on a loaded machine
    # maybe another (compared with the receiver rows below, which follow the same durations).
    slow_bars = slow_row.locator("summary rect.st-bar-slow")
    slow_bar_count = slow_bars.count()
    assert slow_bar_count >= 1
    assert slow_bars.first.evaluate("element => getComputedStyle(element).fill") == "rgb(230, 81, 0)"

    # Zero-receiver dispatches are greyed.
    assert "st-empty" in page_rows[0].get_attribute("class")

    # Expanding a row shows its receivers.
    slow_row.locator("summary").click()
    calls = slow_row.locator("tr.st-call")
    assert calls.count() == (3 if django.VERSION >= (5, 0) else 2)  # + an async receiver
    assert "orders.reserve_stock" in calls.nth(0).inner_text()
    assert "st-slow" in calls.nth(1).get_attribute("class")
    assert slow_row.locator("tr.st-call.st-slow").count() == slow_bar_count
    assert "********************" in slow_row.locator(".st-kwargs").inner_text()
    assert "hunter2" not in panel.inner_html()

    # Exceptions: swallowed by send_robust and raised; hostile text shown as text.
    exceptions = panel.locator(".st-exceptions")
    text = exceptions.inner_text()
    assert "swallowed by send_robust" in text
    assert "raised" in text
    assert "<script>alert('signaltrace')</script>" in text
    assert panel.locator(".st-panel script").count() == 0

    # The filter box.
    page.locator("#SignalTracePanel .st-filter").fill("audit_logged")
    assert page.locator("#SignalTracePanel details.st-dispatch:visible").count() == 2
    assert panel.locator("[data-st-shown]").inner_text() == f"2 of {total} dispatches"
    page.locator("#SignalTracePanel .st-filter").fill("")
    assert page.locator("#SignalTracePanel details.st-dispatch:visible").count() == total

    assert dialogs == [], "markup from a trace was executed"
    assert errors == []

    update_docs = os.environ.get("SIGNALTRACE_UPDATE_SCREENSHOT") == "1"
    screenshot = DOCS_SCREENSHOT if update_docs else tmp_path / "panel.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 10_000
