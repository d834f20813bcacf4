"""The panel's "Hazards" box, transaction badges, and ``on_commit`` / bypassed-write rows.

Real requests through the real toolbar (the toolbar's own test approach: a
``DebugToolbar`` runs the panel's hooks around a view, then the panel is loaded back
from the toolbar's store), real transactions on SQLite committed and rolled back
(``transaction=True``), real mail through Django's locmem backend.
"""

from __future__ import annotations

import html
import inspect
import json
import re
import time
from typing import Any

import pytest
from debug_toolbar.toolbar import DebugToolbar
from django.core import mail
from django.db import transaction
from django.db.models.signals import post_save
from django.template.loader import render_to_string
from django.test import RequestFactory

from signaltrace.panels import SignalTracePanel
from signaltrace.panels.axes import AXIS_UNITS
from signaltrace.panels.effect_rows import OWNERS_KEY
from signaltrace.panels.view import build_context
from tests.locations import where
from tests.testapp.models import Item

pytestmark = pytest.mark.django_db(transaction=True)

PANEL = "SignalTracePanel"
HOSTILE = "<script>alert(1)</script>"  # no quotes: a subject is shown as its repr
ME = __name__


def _panel_for(view: Any) -> SignalTracePanel:
    """Run the panel's hooks around ``view`` in a real toolbar; the panel read back from its store."""
    request = RequestFactory().get("/panel/transactions/")
    toolbar = DebugToolbar(request, view)
    panel = toolbar.get_panel_by_id(PANEL)
    panel.enable_instrumentation()
    try:
        response = panel.process_request(request)
    finally:
        panel.disable_instrumentation()
    panel.generate_stats(request, response)
    toolbar.stats = {}
    panel.load_stats_from_store(toolbar.store.panel(toolbar.request_id, PANEL))
    return panel


def _line_of(function: Any, text: str) -> str:
    """``path.py:line`` of the first line of ``function``'s source containing ``text``."""
    lines, first = inspect.getsourcelines(function)
    offset = next(number for number, line in enumerate(lines) if text in line)
    return f"{where(function).rsplit(':', 1)[0]}:{first + offset}"


def _rows(content: str) -> list[str]:
    """The tree's rows in order: ``C1``/``B1`` for callbacks and writes, the id for a dispatch."""
    return [
        effect or number
        for effect, number in re.findall(
            r'<details class="st-(?:effect[^"]*" [^>]*data-st-effect="(\w+)"|'
            r'dispatch[^"]*" [^>]*data-st-id="(\d+)")',
            content,
        )
    ]


def _row(content: str, marker: str) -> str:
    """The HTML of one effect row (``C1``, ``B1``)."""
    start = content.index(f'data-st-effect="{marker}"')
    return content[start : content.index("</details>", start)]


def _dispatch_row(content: str, number: int) -> str:
    start = content.index(f'data-st-id="{number}"')
    return content[start : content.index("</summary>", start)]


def _saves(stats: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in stats["trace"]["dispatches"] if d["signal"].endswith("post_save")]


# ------------------------------------------------------------------- the hazards box


def mail_receipt(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """Sends mail from inside the transaction: the mail-before-commit hazard."""
    mail.send_mail(f"Receipt for {instance.name}", "Thanks", None, ["ada@example.com"])


def _mail_then_bulk(request: Any) -> None:
    with transaction.atomic():
        Item.objects.create(name="order")
    Item.objects.bulk_create([Item(name="a"), Item(name="b")])  # skips mail_receipt
    return None


def test_hazards_box_badges_and_a_bypassed_write_row(connect):
    connect(post_save, mail_receipt, sender=Item)
    panel = _panel_for(_mail_then_bulk)
    stats = panel.get_stats()
    assert json.loads(json.dumps(stats)) == stats  # stored as JSON, rendered from the store
    assert len(mail.outbox) == 1
    trace = stats["trace"]
    assert [hazard["kind"] for hazard in trace["hazards"]] == ["mail_before_commit", "bypassed_write"]
    assert stats["summary"]["hazards"] == 2

    content = panel.content
    box = content.split('<section class="st-hazards"', 1)[1].split("</section>", 1)[0]
    assert content.index("st-hazards") < content.index("st-tree")  # at the top
    entries = re.findall(r'<li class="st-hazard">(.*?)</li>', box, re.S)
    assert len(entries) == 2
    mail_entry, bulk_entry = entries
    assert mail_entry.startswith('<span class="st-badge st-hazard-badge">mail before commit</span>')
    assert html.escape(trace["hazards"][0]["message"]) in mail_entry
    assert "an e-mail to 1 recipient" in mail_entry and "transaction.on_commit" in mail_entry
    assert "Receipt for order" not in mail_entry  # a subject may name a person: not in hazards
    assert f">{_line_of(mail_receipt, 'send_mail')}</span>" in mail_entry  # its place: the send_mail line
    assert bulk_entry.startswith('<span class="st-badge st-hazard-badge">bypassed write</span>')
    assert f">{_line_of(_mail_then_bulk, 'bulk_create')}</span>" in bulk_entry  # the caller

    # Badges: the save inside atomic() is "in transaction", with the summary as tooltip;
    # none is rolled back; the autocommit saves of the bulk write send nothing at all.
    [save] = _saves(stats)
    row = _dispatch_row(content, save["id"])
    summary = "atomic block (depth 1) on &#x27;default&#x27;, committed"
    assert f'<span class="st-badge st-tx-badge" title="{summary}">in transaction</span>' in row
    in_atomic = [d for d in trace["dispatches"] if (d["transaction"] or {}).get("in_atomic")]
    assert content.count(">in transaction</span>") == len(in_atomic) >= 1
    assert "rolled back</span>" not in content

    # The bulk write is a row of the tree, at the top level after the save, with what did not run.
    order = _rows(content)
    assert order.index("B1") > order.index(str(save["id"]))
    bypass = _row(content, "B1")
    assert '<details class="st-effect st-bypass"' in content
    assert "<code>bulk_create of 2 testapp.Item rows: 1 post_save receiver did not run</code>" in bypass
    assert "st-effect-summary st-depth-0" in bypass
    assert f"called at {_line_of(_mail_then_bulk, 'bulk_create')}" in bypass
    assert f"<td><code>{ME}.mail_receipt</code></td><td>post_save</td><td>testapp.Item</td>" in bypass
    assert f">{where(mail_receipt)}</td>" in bypass
    assert bypass.count('<rect class="st-bar-bypass"') == 2  # on both time axes
    assert "1 write that skipped save receivers (rows B1)" in content


def test_no_hazards_no_box(connect):
    panel = _panel_for(lambda request: Item.objects.create(name="plain") and None)
    assert panel.get_stats()["summary"]["hazards"] == 0
    content = panel.content
    assert "st-hazards" not in content and "st-effect" not in content
    assert ">in transaction</span>" not in content  # autocommit: no badge


# --------------------------------------------------------------- on_commit callbacks


def notify_warehouse() -> None:
    time.sleep(0.05)  # a slow callback, so its run shows on the waterfall


def ping_once() -> None:
    """Registered outside any transaction: Django runs it at once."""


def register_notify(sender: Any, instance: Any, **kwargs: Any) -> None:
    transaction.on_commit(notify_warehouse)


def _commit_then_rollback(request: Any) -> None:
    transaction.on_commit(ping_once)
    with transaction.atomic():
        Item.objects.create(name="kept")
    try:
        with transaction.atomic():
            Item.objects.create(name="undone")
            raise ValueError("roll it back")
    except ValueError:
        pass
    return None


def test_on_commit_rows_ran_and_discarded_under_their_receivers(connect):
    connect(post_save, register_notify, sender=Item)
    panel = _panel_for(_commit_then_rollback)
    stats = panel.get_stats()
    assert json.loads(json.dumps(stats)) == stats
    callbacks = stats["trace"]["on_commit_callbacks"]
    assert [callback["fate"] for callback in callbacks] == ["ran at once", "ran", "discarded"]
    kept, undone = _saves(stats)
    assert stats[OWNERS_KEY]["on_commit_callbacks"] == [None, [kept["id"], 0], [undone["id"], 0]]

    content = panel.content
    assert "3 on_commit callbacks (rows C1 to C3)" in content
    # Each row right under the dispatch whose receiver registered it, one level deeper.
    order = _rows(content)
    assert order[order.index(str(kept["id"])) + 1] == "C2"
    assert order[order.index(str(undone["id"])) + 1] == "C3"
    assert order.index("C1") < order.index(str(kept["id"]))  # at the top level, where it happened

    at_once = _row(content, "C1")
    assert "st-effect-summary st-depth-0" in at_once
    assert '<span class="st-badge st-fate-at-once">ran at once</span>' in at_once
    assert "outside any receiver" in at_once
    assert "<dt>Transaction</dt><dd>none</dd>" in at_once

    ran = _row(content, "C2")
    assert f"<code>{ME}.notify_warehouse</code>" in ran
    assert '<span class="st-badge st-fate-ran">ran after commit</span>' in ran
    assert f"by {ME}.register_notify in #{kept['id']}" in ran
    assert f"st-effect-summary st-depth-{kept['depth'] + 1}" in ran
    assert f">{where(notify_warehouse)}</span>" in ran
    assert f">{where(register_notify)}</span>" in ran
    assert "atomic block (depth 1) on &#x27;default&#x27;, committed" in ran
    duration = re.search(r'<span class="st-num">([\d.]+) ms</span><svg', ran)
    assert duration is not None and float(duration.group(1)) >= 50
    # Registered, waited for the commit, ran: on both axes, the run after the registration.
    assert ran.count('class="st-bar-registered"') == ran.count('class="st-bar-commit"') == 2
    assert ran.count('class="st-bar-wait"') == 2
    request_axis, signals_axis = (
        re.search(rf'<g class="st-ax-{name}">(.*?)</g>', ran).group(1) for name in ("request", "signals")
    )
    for bars in (request_axis, signals_axis):
        mark = float(re.search(r'st-bar-registered" x="([\d.]+)"', bars).group(1))
        run = float(re.search(r'st-bar-commit" x="([\d.]+)"', bars).group(1))
        assert run >= mark
    # The signals-only axis spans the callback's run: its 50 ms take most of the axis
    # (clamped at the axis end, it would be a sliver).
    run_width = float(re.search(r'st-bar-commit" x="[\d.]+" width="([\d.]+)"', signals_axis).group(1))
    assert run_width > AXIS_UNITS * 0.3

    discarded = _row(content, "C3")
    assert '<span class="st-badge st-fate-discarded">discarded by rollback</span>' in discarded
    assert "never ran: its transaction was rolled back." in discarded
    assert f"by {ME}.register_notify in #{undone['id']}" in discarded
    assert "st-bar-commit" not in discarded and "st-bar-wait" not in discarded
    assert discarded.count('class="st-bar-registered"') == 2

    # The rolled-back save is badged; the committed one is not.
    assert ">rolled back</span>" in _dispatch_row(content, undone["id"])
    assert "st-rolled-back" in content.split(f'data-st-id="{undone["id"]}"', 1)[0].rsplit("<details", 1)[1]
    assert ">rolled back</span>" not in _dispatch_row(content, kept["id"])
    assert ">in transaction</span>" in _dispatch_row(content, kept["id"])


@pytest.mark.django_db  # TestCase style: the test's transaction never commits
def test_a_callback_left_pending(connect):
    connect(post_save, register_notify, sender=Item)

    def save_in_a_block(request: Any) -> None:
        with transaction.atomic():
            Item.objects.create(name="waits")

    content = _panel_for(save_in_a_block).content
    pending = _row(content, "C1")
    assert '<span class="st-badge st-fate-pending">pending</span>' in pending
    assert "st-bar-commit" not in pending
    assert "captureOnCommitCallbacks(execute=True)" in pending


def test_without_owner_indexes_rows_go_to_the_top_level(connect):
    """Stats stored without the owners (or with junk in them) still place every row."""
    connect(post_save, register_notify, sender=Item)
    stats = _panel_for(_commit_then_rollback).get_stats()
    for owners in (None, {"on_commit_callbacks": [[999, 0], "x", [0, 99]]}):
        stats[OWNERS_KEY] = owners
        content = render_to_string("signaltrace/panel.html", build_context(stats))
        assert content.count('<details class="st-effect st-commit') == 3
        ran = _row(content, "C2")
        assert "st-effect-summary st-depth-0" in ran
        assert f"by {ME}.register_notify</span>" in ran  # the stored name, without a dispatch


def test_stats_from_before_transactions_still_render(connect):
    connect(post_save, register_notify, sender=Item)
    stats = _panel_for(_commit_then_rollback).get_stats()
    trace = stats["trace"]
    for key in ("on_commit_callbacks", "side_effects", "bypassed_writes", "hazards"):
        del trace[key]
    for dispatch in trace["dispatches"]:
        del dispatch["transaction"]
    del stats[OWNERS_KEY], stats["summary"]["hazards"]
    content = render_to_string("signaltrace/panel.html", build_context(stats))
    assert 'class="st-dispatch' in content
    assert "st-effect" not in content and "st-hazards" not in content and "in transaction" not in content


# ------------------------------------------------------------------------- escaping


def test_hostile_subject_and_receiver_names_are_escaped(connect):
    def hostile_receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        mail.send_mail(HOSTILE, "body", None, ["ada@example.com"])
        transaction.on_commit(hostile_callback)

    def hostile_callback() -> None:
        pass

    hostile_receiver.__qualname__ = HOSTILE
    hostile_callback.__qualname__ = HOSTILE
    connect(post_save, hostile_receiver, sender=Item)

    def view(request: Any) -> None:
        with transaction.atomic():
            Item.objects.create(name="x")
        Item.objects.bulk_create([Item(name="y")])

    panel = _panel_for(view)
    trace = panel.get_stats()["trace"]
    assert {hazard["kind"] for hazard in trace["hazards"]} == {"mail_before_commit", "bypassed_write"}
    content = panel.content
    assert HOSTILE not in content
    escaped = html.escape(HOSTILE)
    box = content.split('<section class="st-hazards"', 1)[1].split("</section>", 1)[0]
    assert box.count(escaped) >= 2  # the receiver in both messages (a mail's subject stays out of hazards)
    assert escaped in _row(content, "C1") and escaped in _row(content, "B1")


def test_every_stored_transaction_string_is_escaped():
    """Markup in any string of the stored transaction data (as a store could hold) renders as text."""
    evil = '<img src=x onerror="alert(1)">'
    tx = {
        "alias": evil,
        "in_atomic": True,
        "depth": 1,
        "durable": False,
        "outcome": "rolled back",
        "rollback_scope": evil,
    }
    dispatch = {
        "id": 0,
        "signal": "post_save",
        "sender": "x",
        "method": "send",
        "depth": 0,
        "start_ns": 10,
        "duration_ns": 50,
        "kwargs": {},
        "parent": None,
        "loop": None,
        "transaction": tx,
        "calls": [
            {
                "receiver": evil,
                "file": evil,
                "line": 3,
                "dispatch_uid": None,
                "is_async": False,
                "start_ns": 12,
                "duration_ns": 40,
                "exception": None,
                "dispatches": [],
            }
        ],
    }
    by = {"receiver": evil, "file": evil, "line": evil}
    callback = {
        "callback": evil,
        "file": evil,
        "line": evil,
        "alias": evil,
        "robust": False,
        "registered_ns": 20,
        "transaction": tx,
        "fate": evil,
        "ran_ns": 70,
        "duration_ns": 5,
        "exception": evil,
        "registered_by": by,
    }
    found = {"signal": evil, "sender": evil, "receiver": evil, "file": evil, "line": evil}
    write = {
        "model": evil,
        "operation": evil,
        "rows": 2,
        "receivers": [found, "junk"],
        "file": evil,
        "line": evil,
        "start_ns": 80,
        "duration_ns": 5,
        "summary": evil,
        "receiver": by,
    }
    hazard = {"kind": evil, "message": evil, "place": evil, "start_ns": 0}
    trace = {
        "duration_ns": 100,
        "dispatches": [dispatch],
        "on_commit_callbacks": [callback, "junk"],
        "bypassed_writes": [write, 7],
        "hazards": [hazard, None],
    }
    stats = {"trace": trace, OWNERS_KEY: {"on_commit_callbacks": [[0, 0]], "bypassed_writes": "junk"}}
    content = render_to_string("signaltrace/panel.html", build_context(stats))
    assert "<img" not in content
    assert content.count(html.escape(evil)) >= 25
    assert content.count('<li class="st-hazard">') == 1
    assert content.count('<details class="st-effect') == 2
    assert ">rolled back</span>" in content
    # Without the stored summary, the rebuilt one is escaped too.
    del write["summary"]
    content = render_to_string("signaltrace/panel.html", build_context(stats))
    assert "<img" not in content and "of 2 &lt;img" in content
