"""The panel's hazards box and transaction rows in a real browser (Debian's chromium, headless).

A live server (pytest-django's ``live_server``) serves one page of this module's own
URLconf: it sends mail from a receiver inside ``atomic()``, has a receiver register an
``on_commit`` callback in a committed and in a rolled-back block, and makes a
``bulk_create`` that skips the save receivers. The test opens the toolbar's panel and
checks the box, the badges, the rows, the filter and that the hostile subject stayed
text. Skips only where no chromium is installed (tests/scripts/browser.sh installs it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.db.models.signals import post_save
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import include, path

from tests.chromium import CHROMIUM, LAUNCH_ARGS
from tests.testapp.models import Item

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no chromium at {CHROMIUM}: run tests/scripts/browser.sh (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

HOSTILE_SUBJECT = "<script>alert(1)</script>"


def mail_receipt(sender: Any, instance: Any, **kwargs: Any) -> None:
    mail.send_mail(f"Receipt {HOSTILE_SUBJECT}", "Thanks", None, ["ada@example.com"])


def notify_warehouse() -> None:
    time.sleep(0.02)


def register_notify(sender: Any, instance: Any, **kwargs: Any) -> None:
    transaction.on_commit(notify_warehouse)


def hazards_page(request: HttpRequest) -> HttpResponse:
    with transaction.atomic():
        Item.objects.create(name="kept")
    try:
        with transaction.atomic():
            Item.objects.create(name="undone")
            raise ValueError("roll it back")
    except ValueError:
        pass
    Item.objects.bulk_create([Item(name="a"), Item(name="b")])
    return HttpResponse("<!doctype html><html><head><title>tx</title></head><body><p>done</p></body></html>")


urlpatterns = [
    path("panel/transactions/", hazards_page),
    path("__debug__/", include("debug_toolbar.urls")),
]


@pytest.fixture
def browser_page():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1440, "height": 1000})
        finally:
            browser.close()


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF=__name__)
def test_hazards_and_transaction_rows_in_chromium(live_server, browser_page, connect, tmp_path):
    connect(post_save, mail_receipt, sender=Item)
    connect(post_save, register_notify, sender=Item)
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{live_server.url}/panel/transactions/")
    page.locator("#djDebugPanelList a.SignalTracePanel").click()
    panel = page.locator("#SignalTracePanel")
    panel.locator("details.st-dispatch").first.wait_for()

    # The hazards box at the top, orange like a slow receiver: two mails, one bulk write.
    box = panel.locator(".st-hazards")
    assert box.is_visible()
    assert box.evaluate("element => getComputedStyle(element).borderTopColor") == "rgb(230, 81, 0)"
    labels = box.locator(".st-hazard-badge").all_inner_texts()
    assert labels == ["mail before commit", "mail before commit", "bypassed write"]
    assert "an e-mail to 1 recipient" in box.inner_text()
    assert "Receipt" not in box.inner_text()  # a subject may name a person: never in a hazard
    assert "rolled back (transaction)" in box.locator(".st-hazard").nth(1).inner_text()

    # Badges: both saves (pre_save and post_save each) in a transaction, the second one's
    # rolled back, in red.
    rolled_back = panel.locator(".st-rollback-badge")
    assert rolled_back.count() == 2
    assert rolled_back.first.evaluate("element => getComputedStyle(element).backgroundColor") == (
        "rgb(198, 40, 40)"
    )
    assert panel.locator(".st-tx-badge").count() == 4
    assert "rolled back (transaction)" in rolled_back.first.get_attribute("title")

    # The rows: C1 ran after the commit, C2 discarded, B1 the bulk write; C1 opens.
    commits = panel.locator("details.st-commit")
    assert commits.count() == 2
    assert "ran after commit" in commits.nth(0).locator("summary").inner_text()
    assert "discarded by rollback" in commits.nth(1).locator("summary").inner_text()
    axis = panel.locator("[data-st-panel]").get_attribute("data-st-axis")
    assert commits.nth(0).locator(f"summary g.st-ax-{axis} rect.st-bar-commit").is_visible()
    commits.nth(0).locator("summary").click()
    assert "ran after its transaction committed" in commits.nth(0).locator(".st-body").inner_text()
    bypass = panel.locator("details.st-bypass")
    assert bypass.count() == 1 and bypass.locator("summary").is_visible()
    assert "bulk_create of 2 testapp.Item rows" in bypass.locator("summary").inner_text()

    # The filter keeps the rows whose words match (a row names the receiver that made it).
    panel.locator(".st-filter").fill("register_notify")
    assert panel.locator("details.st-commit:visible").count() == 2
    assert panel.locator("details.st-bypass:visible").count() == 1  # it skipped register_notify
    panel.locator(".st-filter").fill("notify_warehouse")
    assert panel.locator("details.st-commit:visible").count() == 2
    assert panel.locator("details.st-bypass:visible").count() == 0
    panel.locator(".st-filter").fill("")

    assert dialogs == [], "markup from a trace was executed"
    assert errors == []
    page.screenshot(path=str(tmp_path / "panel-transactions.png"), full_page=True)
