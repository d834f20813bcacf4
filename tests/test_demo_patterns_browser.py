"""The loop lab's pattern pages in a real browser (Debian's chromium, headless).

The demo is served by ``manage.py runserver`` over a throwaway SQLite file (its lab
media goes beside it). Each test runs one scenario of docs/patterns.md, checks what
its page and the signal trace panel (opened by the lab's result page) show (a
transaction hazard's page: the panel's Hazards box first), narrows the panel with its
filter box, opens the rows the docs talk about and saves a screenshot of the panel:
to the test's temporary directory, or to
docs/img/pattern-<slug>.png with ``SIGNALTRACE_UPDATE_SCREENSHOT=1`` (``make screenshot``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chromium import CHROMIUM, LAUNCH_ARGS
from tests.demo_launcher import served_demo

ROOT = Path(__file__).resolve().parent.parent
DOCS_IMAGES = ROOT / "docs" / "img"

if not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium at {CHROMIUM}: run tests/scripts/browser.sh", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory) -> Iterator[str]:
    """The demo, migrated into a throwaway database, served by runserver; its base URL."""
    with served_demo(tmp_path_factory.mktemp("demo-patterns"), "/lab/") as url:
        yield url


@pytest.fixture
def page():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 800})
        finally:
            browser.close()


def screenshot(page, name: str, tmp_path: Path) -> None:
    """The panel (not the toolbar's side bar or the page under it), saved as ``name``."""
    update_docs = os.environ.get("SIGNALTRACE_UPDATE_SCREENSHOT") == "1"
    path = (DOCS_IMAGES if update_docs else tmp_path) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    box = page.locator("#SignalTracePanel").bounding_box()
    assert box is not None and box["width"] >= 900
    page.screenshot(path=str(path), clip=box)
    assert path.stat().st_size > 10_000


def run_scenario(page, site: str, slug: str):
    """Run the scenario from the lab's index; its result page opens the panel: return it."""
    page.goto(f"{site}/lab/")
    page.locator(f"form[action$='/lab/{slug}/'] button").click()
    page.wait_for_load_state()
    panel = page.locator("#SignalTracePanel")
    panel.locator("details.st-dispatch").first.wait_for(timeout=30_000)
    assert panel.is_visible()
    return panel


def narrow(panel, words: str) -> None:
    """Type ``words`` into the panel's filter box."""
    panel.locator(".st-filter").fill(words)


def open_rows(panel, signal: str) -> int:
    """Open every visible dispatch row of ``signal`` (its short name); how many."""
    rows = panel.locator("details.st-dispatch:visible").filter(
        has=panel.page.locator(".st-signal", has_text=signal)
    )
    for row in rows.all():
        row.locator("summary").click()
    return rows.count()


def open_slow_delete(panel, summary: str):
    """The one slow-delete row, checked visible with ``summary``, opened."""
    deletes = panel.locator("details.st-delete")
    assert deletes.count() == 1
    row = deletes.first
    assert row.is_visible()
    assert summary in row.locator("summary").inner_text()
    row.locator("summary").click()
    return row


def test_file_cleanup_shows_the_receiver_and_the_slow_delete(demo_site, page, tmp_path):
    panel = run_scenario(page, demo_site, "file-cleanup")
    assert "Storage calls: storage.delete('attachments/report.txt')" in page.content()
    narrow(panel, "attachment")
    delete = open_slow_delete(panel, "delete of looplab.Attachment #")
    assert "looplab.receivers.remove_attachment_file" in delete.inner_text()
    assert "looplab/receivers.py:" in delete.inner_text()
    assert open_rows(panel, "pre_delete") == 1
    calls = panel.locator("details.st-dispatch[open] tr.st-call")
    assert "looplab.receivers.remove_attachment_file" in calls.first.inner_text()
    screenshot(page, "pattern-file-cleanup.png", tmp_path)


def test_cascade_page_groups_the_delete_and_the_panel_shows_its_signals(demo_site, page, tmp_path):
    panel = run_scenario(page, demo_site, "user-cascade")
    deletes = page.locator("ul.slow-deletes > li")
    assert deletes.count() == 1
    text = deletes.inner_text()
    assert "delete of auth.User #" in text and "1 accounts.Profile, 2 looplab.Post; 8 signals" in text
    assert "looplab.receivers.log_profile_deletion" in text and "looplab.receivers.log_post_deletion" in text
    assert deletes.is_visible()

    panel_text = panel.inner_text()
    assert "post_delete" in panel_text and "1 slow delete" in panel_text
    # The filter box hides the delete's row with the rest when neither matches...
    narrow(panel, "pre_save auth.user")
    assert panel.locator("details.st-delete").is_hidden()
    # ...and keeps it when a dispatch inside it matches: the log rows its receivers save.
    narrow(panel, "deletionlog")
    assert panel.locator("details.st-dispatch.st-in-delete:visible").count() >= 4
    assert panel.locator("details.st-delete").is_visible()
    narrow(panel, "delete")
    row = open_slow_delete(panel, "1 accounts.Profile, 2 looplab.Post; 8 signals")
    details = row.inner_text()
    assert "looplab.receivers.log_profile_deletion" in details
    assert "looplab.receivers.log_post_deletion" in details
    assert re.search(r"the \d+ dispatches below \(#\d+ to #\d+\) ran inside it", details)
    # The cascaded pre_delete and post_delete rows follow it, marked as its own.
    inside = panel.locator("details.st-dispatch.st-in-delete:visible")
    assert inside.count() == 8
    assert inside.first.locator(".st-delete-badge").inner_text() == "in D1"
    # Its bar is drawn on the axis shown.
    axis = panel.locator("[data-st-panel]").get_attribute("data-st-axis")
    assert row.locator(f"summary g.st-ax-{axis} rect.st-bar-delete").is_visible()
    screenshot(page, "pattern-user-cascade.png", tmp_path)


def test_soft_delete_records_the_save_and_no_delete(demo_site, page, tmp_path):
    panel = run_scenario(page, demo_site, "soft-delete")
    assert "looplab.receivers.log_document_deletion" in page.content()  # named on the page
    narrow(panel, "document")
    # Two documents created, then one saved with is_deleted; the update() sent nothing.
    saves = panel.locator("details.st-dispatch:visible").filter(
        has=page.locator(".st-signal", has_text="post_save")
    )
    assert saves.count() == 3
    saves.last.locator("summary").click()
    assert "frozenset({'is_deleted'})" in saves.last.locator(".st-kwargs").inner_text()
    text = panel.inner_text()
    assert "post_delete" not in text and panel.locator("details.st-delete").count() == 0
    screenshot(page, "pattern-soft-delete.png", tmp_path)


def test_soft_delete_signal_has_its_own_dispatch(demo_site, page, tmp_path):
    panel = run_scenario(page, demo_site, "soft-delete-signal")
    narrow(panel, "document")
    assert open_rows(panel, "document_soft_deleted") == 1
    calls = panel.locator("details.st-dispatch[open] tr.st-call")
    assert "looplab.receivers.log_document_soft_deletion" in calls.first.inner_text()
    screenshot(page, "pattern-soft-delete-signal.png", tmp_path)


def test_m2m_changed_kwargs_are_readable(demo_site, page, tmp_path):
    panel = run_scenario(page, demo_site, "m2m-tags")
    narrow(panel, "m2m_changed")
    rows = panel.locator("details.st-dispatch:visible")
    assert rows.count() == 6
    rows.nth(1).locator("summary").click()  # post_add
    rows.nth(5).locator("summary").click()  # post_clear
    kwargs = panel.locator("details.st-dispatch[open] .st-kwargs").all_inner_texts()
    assert len(kwargs) == 2
    assert "'post_add'" in kwargs[0] and "'post_clear'" in kwargs[1]
    assert all("pk_set" in text and "reverse" in text for text in kwargs)
    assert re.search(r"pk_set\s+None", kwargs[1])
    screenshot(page, "pattern-m2m-tags.png", tmp_path)


def test_not_idempotent_receiver_runs_on_each_save(demo_site, page, tmp_path):
    panel = run_scenario(page, demo_site, "not-idempotent")
    narrow(panel, "subscriber")
    assert open_rows(panel, "post_save") == 2
    calls = panel.locator("details.st-dispatch[open] tr.st-call").all_inner_texts()
    assert len(calls) == 2 and all("looplab.receivers.queue_welcome" in call for call in calls)
    screenshot(page, "pattern-not-idempotent.png", tmp_path)


@pytest.mark.parametrize(
    ("slug", "words", "receivers"),
    [
        ("connected-twice", "ticket", ["looplab.twice.count_ticket_save", "twice.count_ticket_save"]),
        ("dispatch-uid", "invoice", ["looplab.twice_uid.count_invoice_save"]),
    ],
)
def test_a_receiver_connected_twice_runs_twice(demo_site, page, tmp_path, slug, words, receivers):
    panel = run_scenario(page, demo_site, slug)
    narrow(panel, words)
    assert open_rows(panel, "post_save") == 1
    calls = panel.locator("details.st-dispatch[open] tr.st-call td:first-child > code").all_inner_texts()
    assert calls == receivers
    screenshot(page, f"pattern-{slug}.png", tmp_path)


def test_delete_cost_page_shows_queries_time_and_the_slow_delete(demo_site, page, tmp_path):
    panel = run_scenario(page, demo_site, "delete-cost")
    outcome = page.locator("main ul, body ul").first.inner_text()
    assert "looplab.PlainRow (no receiver): 1000 rows deleted in" in outcome
    assert "looplab.WatchedRow (one post_delete receiver that does nothing): 1000 rows deleted in" in outcome
    assert "2000 signals sent." in outcome
    slow = page.locator("ul.slow-deletes > li")
    assert slow.count() == 1
    assert "delete of looplab.WatchedRow: 1000 looplab.WatchedRow; 2000 signals" in slow.inner_text()
    assert slow.is_visible()

    assert "post_delete" in panel.inner_text()
    row = open_slow_delete(panel, "delete of looplab.WatchedRow: 1000 looplab.WatchedRow; 2000 signals")
    details = row.inner_text()
    assert "the 2000 dispatches below" in details
    assert "looplab.receivers.forget_watched_row" in details and "looplab/receivers.py:" in details
    assert "1000" in row.locator(".st-delete-rows").inner_text()
    assert panel.locator("details.st-dispatch.st-in-delete").count() == 2000
    # The delete spans most of the signals-only axis (Django's work between its sends is
    # not compressed away) and is drawn on whichever axis is shown.
    signals_bar = row.locator("summary g.st-ax-signals rect.st-bar-delete")
    assert float(signals_bar.get_attribute("width")) > 500
    axis = panel.locator("[data-st-panel]").get_attribute("data-st-axis")
    assert row.locator(f"summary g.st-ax-{axis} rect.st-bar-delete").is_visible()
    screenshot(page, "pattern-delete-cost.png", tmp_path)


# ----------------------------------------------------------------- transaction hazards


def hazard_entry(panel, label: str) -> str:
    """The text of the Hazards box's one entry, checked visible, at the top and labelled ``label``."""
    box = panel.locator(".st-hazards")
    assert box.is_visible()
    assert box.locator("h4").inner_text() == "Hazard"
    entries = box.locator(".st-hazard")
    assert entries.count() == 1
    assert entries.first.locator(".st-hazard-badge").inner_text() == label
    box_top, tree_top = box.bounding_box()["y"], panel.locator(".st-tree").bounding_box()["y"]
    assert box_top < tree_top
    return entries.first.inner_text()


def opened_post_save(panel, model_filter: str, receiver: str):
    """Narrow the panel to ``model_filter``, open its one post_save row, check it calls ``receiver``."""
    narrow(panel, model_filter)
    assert open_rows(panel, "post_save") == 1
    row = panel.locator("details.st-dispatch[open]")
    assert receiver in row.locator("tr.st-call").first.inner_text()
    return row


def test_task_before_commit_is_a_hazard_naming_receiver_task_and_fix(demo_site, page, tmp_path):
    panel = run_scenario(page, demo_site, "task-before-commit")
    assert "raised DoesNotExist: Order matching query does not exist." in page.content()
    text = hazard_entry(panel, "task before commit")
    assert "looplab.receivers.publish_order_confirmation (looplab/receivers.py:" in text
    assert "published Celery task looplab.tasks.confirm_order at looplab/receivers.py:" in text
    assert "inside a transaction: atomic block (depth 1) on 'default', committed" in text
    assert "Fix: publish it after the commit: task.delay_on_commit(...)" in text
    row = opened_post_save(panel, "looplab.order", "looplab.receivers.publish_order_confirmation")
    assert row.locator(".st-tx-badge").is_visible() and row.locator(".st-rollback-badge").count() == 0
    screenshot(page, "pattern-task-before-commit.png", tmp_path)


def test_mail_then_rollback_is_a_hazard_in_a_rolled_back_transaction(demo_site, page, tmp_path):
    panel = run_scenario(page, demo_site, "mail-then-rollback")
    assert "After the rollback the row exists: False." in page.content()
    text = hazard_entry(panel, "mail before commit")
    assert "looplab.receivers.mail_invitation (looplab/receivers.py:" in text
    assert "sent an e-mail to 1 recipient at looplab/receivers.py:" in text
    assert "atomic block (depth 1) on 'default', rolled back (transaction)" in text
    assert "Fix: send it after the commit: transaction.on_commit(lambda: send_mail(...))" in text
    assert "grace@example.com" not in text and "Your invitation" not in text
    row = opened_post_save(panel, "looplab.invitation", "looplab.receivers.mail_invitation")
    assert row.locator(".st-rollback-badge").is_visible()
    screenshot(page, "pattern-mail-then-rollback.png", tmp_path)


def test_bulk_create_skips_is_a_hazard_naming_both_receivers(demo_site, page, tmp_path):
    panel = run_scenario(page, demo_site, "bulk-create-skips")
    assert "0 search entries (index_product), 0 price history rows (record_price)" in page.content()
    text = hazard_entry(panel, "bypassed write")
    assert "bulk_create of 3 looplab.Product rows: 2 post_save receivers did not run" in text
    assert "looplab.receivers.index_product (looplab/receivers.py:" in text
    assert "looplab.receivers.record_price (looplab/receivers.py:" in text
    assert "called at looplab/hazards.py:" in text
    bypass = panel.locator("details.st-bypass")
    assert bypass.count() == 1
    summary = bypass.locator("summary")
    assert "bulk_create of 3 looplab.Product rows" in summary.inner_text()
    summary.click()
    details = bypass.inner_text()
    assert "looplab.receivers.index_product" in details and "looplab.receivers.record_price" in details
    assert panel.locator("details.st-dispatch .st-signal", has_text="post_save").count() == 0
    screenshot(page, "pattern-bulk-create-skips.png", tmp_path)
