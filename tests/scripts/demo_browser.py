"""The demo site in a real browser: the README's `make demo`, seen as a visitor sees it.

Run by tests/scripts/demo-smoke.sh once `make demo` serves the site:

    python tests/scripts/demo_browser.py PORT

Drives Debian's chromium headless with Playwright: signs a user up (the Profile
appears by the seeds' post_save receivers), opens the toolbar's Signal trace panel
and checks the post_save row of auth.User with both receivers; then runs the loop
lab's ping-pong and checks the loop, in red, at the top of the panel. Saves a
screenshot of each page (docs/img/ with SIGNALTRACE_UPDATE_SCREENSHOT=1, else a
temporary folder). Exits 0 with "SKIP: <reason>" where no browser is installed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's tests package

from tests.chromium import CHROMIUM, LAUNCH_ARGS  # noqa: E402

DOCS_IMAGES = ROOT / "docs" / "img"


def open_panel(page) -> object:
    page.locator("#djDebugPanelList a.SignalTracePanel").click()
    return shown_panel(page)


def shown_panel(page) -> object:
    panel = page.locator("#SignalTracePanel")
    panel.locator("details.st-dispatch").first.wait_for()
    return panel


def main(port: int) -> int:
    if not Path(CHROMIUM).exists():
        print(f"SKIP: no chromium at {CHROMIUM} (tests/scripts/browser.sh installs it)")
        return 0
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("SKIP: Playwright for Python is not installed in this environment")
        return 0
    base = f"http://127.0.0.1:{port}"
    update_docs = os.environ.get("SIGNALTRACE_UPDATE_SCREENSHOT") == "1"
    images = DOCS_IMAGES if update_docs else Path(tempfile.mkdtemp())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

        page.goto(f"{base}/signup/")
        username = f"visitor{os.getpid()}"
        page.fill("input[name=username]", username)
        page.fill("input[name=password1]", "a-long-demo-passphrase-42")
        page.fill("input[name=password2]", "a-long-demo-passphrase-42")
        page.fill("textarea[name=bio], input[name=bio]", "Likes <script>alert(1)</script> signals")
        page.locator("form button[type=submit], form input[type=submit]").first.click()
        page.wait_for_load_state()
        assert f"Welcome, {username}" in page.content(), "the sign-up did not go through"

        panel = open_panel(page)
        rows = panel.locator("details.st-dispatch")
        user_saves = [
            row
            for row in rows.all()
            if row.locator(".st-signal").inner_text().startswith("post_save")
            and row.locator(".st-sender").inner_text() == "auth.User"
        ]
        assert len(user_saves) == 1, f"{len(user_saves)} post_save rows for auth.User"
        user_saves[0].locator("summary").click()
        receivers = user_saves[0].locator("tr.st-call").all_inner_texts()
        assert any("accounts.signals.create_user_profile" in text for text in receivers), receivers
        assert any("accounts.signals.save_user_profile" in text for text in receivers), receivers
        assert "a-long-demo-passphrase-42" not in panel.inner_html()
        page.screenshot(path=str(images / "demo-signup-panel.png"))

        page.goto(f"{base}/lab/")
        page.locator("form[action$='/lab/ping-pong/'] button").click()
        page.wait_for_load_state()
        panel = shown_panel(page)  # a loop-lab result opens the panel by itself
        loops = panel.locator(".st-loops")
        assert loops.is_visible() and "SignalLoopError" in loops.inner_text()
        assert loops.evaluate("element => getComputedStyle(element).color") == "rgb(198, 40, 40)"
        assert "post_save" in loops.locator(".st-cycle").inner_text()
        page.screenshot(path=str(images / "demo-loop-panel.png"))

        assert dialogs == [], f"markup from the page was executed: {dialogs}"
        browser.close()
    print(f"demo browser test passed: sign-up and ping-pong panels checked (screenshots in {images})")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
