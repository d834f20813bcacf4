"""The flame view in a real viewer: speedscope (from the npm registry) in headless chromium.

A ``--signaltrace-trace`` file of a real pytest run (tests/test_flame.py's project) and
the speedscope app are served from one localhost server; the app loads the file from
``#profileURL=``. The test checks that speedscope imports it as a trace-event profile
without an error, names the track, and lists the run's tests, phases, dispatches and
receivers in its sandwich view (a DOM table; the flame chart itself is a canvas).

The time-order screenshot, fitted to the test whose receivers loop, goes to
docs/img/flame-speedscope.png with ``SIGNALTRACE_UPDATE_SCREENSHOT=1``, else to the
test's temporary directory.

Skips, saying why, without chromium, Playwright, or speedscope (installed by
tests/scripts/speedscope.sh, which this test runs when npm is there).
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chromium import CHROMIUM, LAUNCH_ARGS
from tests.test_flame import FLAME_TESTS, project, run_traced

__all__ = ["project"]

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / ".cache" / "speedscope" / "node_modules" / "speedscope" / "dist" / "release"

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no chromium at {CHROMIUM}: run tests/scripts/browser.sh (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")


@pytest.fixture(scope="module")
def speedscope() -> Path:
    """speedscope's static app: ``SIGNALTRACE_SPEEDSCOPE`` (its dist/release folder), or installed."""
    configured = os.environ.get("SIGNALTRACE_SPEEDSCOPE")
    release = Path(configured) if configured else RELEASE
    if not (release / "index.html").exists() and not configured:
        script = subprocess.run(
            ["bash", str(ROOT / "tests" / "scripts" / "speedscope.sh")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        print(script.stdout + script.stderr)
        if not (release / "index.html").exists():
            pytest.skip(f"speedscope is not installed: {script.stdout.strip() or script.stderr.strip()}")
    if not (release / "index.html").exists():
        pytest.skip(f"no speedscope app at {release} (SIGNALTRACE_SPEEDSCOPE)")
    return release


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path, speedscope: Path) -> Iterator[tuple[str, Path]]:
    """A localhost server of a folder holding the app (``/speedscope/``); yields its URL and the folder."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "speedscope").symlink_to(speedscope, target_is_directory=True)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_speedscope_shows_the_runs_flame_view(
    project: pytest.Pytester, served: tuple[str, Path], tmp_path: Path
) -> None:
    project.makepyfile(test_shop=FLAME_TESTS)
    result, content = run_traced(project)
    result.assert_outcomes(passed=6, failed=1)
    url, root = served
    (root / "run.json").write_bytes((project.path / "out" / "run.json").read_bytes())

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            errors: list[str] = []
            console: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda message: console.append(message.text))
            page.on("dialog", lambda dialog: (errors.append(dialog.message), dialog.dismiss()))
            page.goto(f"{url}/speedscope/index.html#profileURL={url}/run.json")
            page.get_by_text("pytest (pid 1), main (tid 1)").wait_for(timeout=30_000)
            assert "Importing as Trace Event Format profile" in console
            assert not errors, errors
            body = page.inner_text("body")
            assert "Something went wrong" not in body and "Unrecognized format" not in body

            zoom_into_the_loop_test(page, content)
            save_screenshot(page, tmp_path)

            page.get_by_text("Sandwich").click()
            page.get_by_text("shop.receivers.create_receipt").first.wait_for(timeout=10_000)
            table = page.inner_text("body")
            for name in (
                "test_shop.py::test_orders[1]",
                "test_shop.py::test_fails [failed]",
                "setup",
                "call",
                "teardown",
                "post_save (shop.Order)",
                "shop.signals.order_paid (shop.Order) send_robust",
                "shop.receivers.create_receipt",
                "shop.receivers.touch_order",
            ):
                assert name in table, name
            assert not errors, errors
        finally:
            browser.close()


def zoom_into_the_loop_test(page, content: dict) -> None:
    """Double-click the slice of the test whose receivers loop: speedscope fits the view to it."""
    slices = [event for event in content["traceEvents"] if event["ph"] == "X"]
    total = max(event["ts"] + event["dur"] for event in slices)
    test = next(event for event in slices if event["name"] == "test_shop.py::test_loop_swallowed")
    stack_view = page.locator("canvas").last.bounding_box()  # below the minimap
    assert stack_view is not None
    x = stack_view["x"] + stack_view["width"] * (test["ts"] + test["dur"] / 2) / total
    page.mouse.dblclick(x, stack_view["y"] + 31)  # the first row: the tests
    page.mouse.move(stack_view["width"] / 2, stack_view["y"] + stack_view["height"] - 250)  # no tooltip
    page.wait_for_timeout(500)


def save_screenshot(page, tmp_path: Path) -> None:
    update_docs = os.environ.get("SIGNALTRACE_UPDATE_SCREENSHOT") == "1"
    path = (ROOT / "docs" / "img" if update_docs else tmp_path) / "flame-speedscope.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
