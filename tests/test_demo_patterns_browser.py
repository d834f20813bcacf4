"""The loop lab's cascade and delete-cost pages in a real browser (Debian's chromium, headless).

The demo is served by ``manage.py runserver`` over a throwaway SQLite file (its lab
media goes beside it). Screenshots go to the test's temporary directory, or to
docs/img/ with ``SIGNALTRACE_UPDATE_SCREENSHOT=1``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chromium import CHROMIUM, LAUNCH_ARGS

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo_project"
DOCS_IMAGES = ROOT / "docs" / "img"

if not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium at {CHROMIUM}: run tests/scripts/browser.sh", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_served(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the demo server exited: {server.stderr.read() if server.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the demo server did not answer {url} in {timeout} s")


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory) -> Iterator[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(
        DJANGO_SETTINGS_MODULE="demo_site.settings",
        DEMO_DATABASE=str(tmp_path_factory.mktemp("demo-patterns") / "db.sqlite3"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    manage = [sys.executable, str(DEMO / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, timeout=180)
    port = _free_port()
    server = subprocess.Popen(
        [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_served(f"{url}/lab/", server)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stderr:
            server.stderr.close()


@pytest.fixture
def page():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1440, "height": 1000})
        finally:
            browser.close()


def screenshot(page, name: str, tmp_path: Path) -> None:
    update_docs = os.environ.get("SIGNALTRACE_UPDATE_SCREENSHOT") == "1"
    path = (DOCS_IMAGES if update_docs else tmp_path) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000


def run_scenario(page, site: str, slug: str) -> None:
    page.goto(f"{site}/lab/")
    page.locator(f"form[action$='/lab/{slug}/'] button").click()
    page.wait_for_load_state()


def test_cascade_page_groups_the_delete_and_the_panel_shows_its_signals(demo_site, page, tmp_path):
    run_scenario(page, demo_site, "user-cascade")
    deletes = page.locator("ul.slow-deletes > li")
    assert deletes.count() == 1
    text = deletes.inner_text()
    assert "delete of auth.User #" in text and "1 accounts.Profile, 2 looplab.Post; 8 signals" in text
    assert "looplab.receivers.log_profile_deletion" in text and "looplab.receivers.log_post_deletion" in text
    assert deletes.is_visible()

    panel = page.locator("#SignalTracePanel")  # the lab's result pages open it by themselves
    panel.locator("details.st-dispatch").first.wait_for(timeout=15_000)
    assert panel.is_visible()
    panel_text = panel.inner_text()
    assert "post_delete" in panel_text and "looplab.receivers.log_post_deletion" in panel_text
    screenshot(page, "pattern-user-cascade.png", tmp_path)


def test_delete_cost_page_shows_queries_time_and_the_slow_delete(demo_site, page, tmp_path):
    run_scenario(page, demo_site, "delete-cost")
    outcome = page.locator("main ul, body ul").first.inner_text()
    assert "looplab.PlainRow (no receiver): 1000 rows deleted in" in outcome
    assert "looplab.WatchedRow (one post_delete receiver that does nothing): 1000 rows deleted in" in outcome
    assert "2000 signals sent." in outcome
    slow = page.locator("ul.slow-deletes > li")
    assert slow.count() == 1
    assert "delete of looplab.WatchedRow: 1000 looplab.WatchedRow; 2000 signals" in slow.inner_text()
    assert slow.is_visible()
    panel = page.locator("#SignalTracePanel")
    panel.locator("details.st-dispatch").first.wait_for(timeout=30_000)
    assert "post_delete" in panel.inner_text()
    screenshot(page, "pattern-delete-cost.png", tmp_path)
