"""SignalTracePanel with the real django-debug-toolbar, the way the toolbar tests its panels.

Requests go through the toolbar's middleware (Django's test client for WSGI, its
AsyncClient for ASGI); the panel is then loaded back from the toolbar's store, as
the toolbar does when a panel is opened, and its content is checked.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import threading
import time
from typing import Any

import pytest
from debug_toolbar.store import get_store
from debug_toolbar.toolbar import DebugToolbar
from django.core.checks import Error
from django.db import connection
from django.db.models.signals import post_delete
from django.dispatch import Signal
from django.template.loader import render_to_string
from django.test import AsyncClient, Client, RequestFactory, modify_settings, override_settings

import signaltrace
from signaltrace.checks import check_settings
from signaltrace.core.naming import short_path
from signaltrace.panels import SignalTracePanel
from signaltrace.panels.axes import AXIS_UNITS, GAP_UNITS, MIN_BAR_UNITS, SignalsAxis, default_axis
from signaltrace.panels.exceptions import exception_groups
from signaltrace.panels.view import build_context, format_ms, subtitle, summarize
from tests.markers import needs_asend
from tests.testapp import panel_views
from tests.testapp.models import Node

pytestmark = pytest.mark.django_db

PANEL = "SignalTracePanel"


@pytest.fixture
def created_toolbars():
    """The toolbars the middleware creates, via the toolbar's own test signal."""
    toolbars: list[DebugToolbar] = []
    lock = threading.Lock()

    def keep(sender: Any, toolbar: DebugToolbar, **kwargs: Any) -> None:
        with lock:
            toolbars.append(toolbar)

    DebugToolbar._created.connect(keep, weak=False)
    yield toolbars
    DebugToolbar._created.disconnect(keep)


def stored_panel(toolbar: DebugToolbar) -> SignalTracePanel:
    """The panel as the toolbar's render_panel view builds it: from the store only."""
    stored = DebugToolbar.fetch(toolbar.request_id, PANEL)
    assert stored is not None
    return stored.get_panel_by_id(PANEL)


def stored_stats(toolbar: DebugToolbar) -> dict[str, Any]:
    return get_store().panel(toolbar.request_id, PANEL)


def senders(stats: dict[str, Any]) -> list[str]:
    return [dispatch["sender"] for dispatch in stats["trace"]["dispatches"]]


#: Django's own signals that a request may also send, depending on its version: a
#: worker thread opening a connection; on 4.2, the error email that logging the
#: send_robust failure renders (mail_admins, DEBUG off) sends template_rendered.
INCIDENTAL = {"connection_created", "template_rendered"}


def signals(stats: dict[str, Any]) -> list[str]:
    """Short names of the dispatches the page itself sent, in order."""
    names = [dispatch["signal"].rsplit(".", 1)[-1] for dispatch in stats["trace"]["dispatches"]]
    return [name for name in names if name not in INCIDENTAL]


def counts(stats: dict[str, Any]) -> tuple[int, int]:
    """All dispatches and receiver calls recorded."""
    dispatches = stats["trace"]["dispatches"]
    return len(dispatches), sum(len(dispatch["calls"]) for dispatch in dispatches)


def page_dispatches(stats: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in stats["trace"]["dispatches"] if d["signal"].rsplit(".", 1)[-1] not in INCIDENTAL]


def test_sync_request_recorded_and_rendered_from_the_store(created_toolbars):
    response = Client().get("/panel/signals/")
    assert response.status_code == 200
    [toolbar] = created_toolbars
    stats = stored_stats(toolbar)

    # Only JSON types: a plain json round trip changes nothing.
    assert json.loads(json.dumps(stats)) == stats
    assert signals(stats) == [
        "pre_save",
        "post_save",
        "order_placed",
        "stock_checked",
        "pre_save",
        "post_save",
        "audit_logged",
        "audit_logged",
        "cache_cleared",
        "echo",
        "echo",
        "echo",
    ]
    assert [d["depth"] for d in page_dispatches(stats)] == [0, 0, 0, 1, 2, 2, 0, 0, 0, 0, 1, 2]
    dispatches, receivers = counts(stats)

    panel = stored_panel(toolbar)
    assert panel.from_store and panel.enabled
    assert re.fullmatch(rf"{dispatches} dispatches · {receivers} receivers · \d+\.\d ms", panel.nav_subtitle)
    content = panel.content
    assert content.count('class="st-dispatch') == dispatches
    assert "tests.testapp.panel_views.reserve_stock" in content
    assert "orders.reserve_stock" in content  # dispatch_uid
    assert "tests/testapp/panel_views.py:" in content  # file:line
    assert "via tests.testapp.panel_views.reserve_stock" in content  # the nested dispatch's parent
    assert 'class="st-signal st-depth-2"' in content


def test_server_timing_entry(created_toolbars):
    response = Client().get("/panel/signals/")
    timing = response.headers["Server-Timing"]
    dispatches, receivers = counts(stored_stats(created_toolbars[0]))
    desc = f"Signals: {dispatches} dispatches, {receivers} receivers"
    entry = rf'SignalTracePanel_signals;dur=([\d.]+);desc="{desc}"'
    match = re.search(entry, timing)
    assert match is not None
    assert float(match.group(1)) >= 60  # send_receipt sleeps 60 ms inside a top-level dispatch


def test_loops_exceptions_empty_and_slow(created_toolbars):
    Client().get("/panel/signals/")
    stats = stored_stats(created_toolbars[0])
    content = stored_panel(created_toolbars[0]).content

    loops = content.split('<section class="st-loops"', 1)[1].split("</section>", 1)[0]
    assert "stopped: SignalLoopError raised" in loops
    [loop] = stats["trace"]["loops"]
    assert len(loop["cycle"]) >= 2  # echo -> echo: one turn of the cycle
    assert loops.count("<li>") == len(loop["cycle"])
    assert content.index("st-loops") < content.index("st-tree")  # at the top

    assert "swallowed by send_robust" in content
    assert 'st-raised">raised</span>' in content
    assert "builtins.ValueError" in content
    assert "Traceback (most recent call last)" in content

    rows = {
        int(number): classes
        for classes, number in re.findall(
            r'<details class="st-dispatch ([^"]*)" [^>]*data-st-id="(\d+)"', content
        )
    }
    page = page_dispatches(stats)
    assert rows[page[0]["id"]].split() == ["st-empty"]  # pre_save of Item: nobody listens
    assert "st-has-slow" in rows[page[2]["id"]]  # order_placed: send_receipt sleeps 60 ms
    # Every call recorded at or over the threshold is marked slow, and only those: on a
    # loaded machine another receiver may pass 50 ms too.
    slow_ns = stats["slow_ms"] * 1_000_000
    slow_calls = [
        call["receiver"]
        for dispatch in stats["trace"]["dispatches"]
        for call in dispatch["calls"]
        if call["duration_ns"] >= slow_ns
    ]
    assert "tests.testapp.panel_views.send_receipt" in slow_calls
    assert content.count('<tr class="st-call st-slow">') == len(slow_calls)
    assert "st-has-loop" in rows[page[11]["id"]]


@override_settings(SIGNALTRACE={"ENABLED": True, "PANEL_SLOW_RECEIVER_MS": 10_000})
def test_slow_threshold_is_a_setting(created_toolbars):
    Client().get("/panel/signals/")
    stats = stored_stats(created_toolbars[0])
    assert stats["slow_ms"] == 10_000
    content = stored_panel(created_toolbars[0]).content
    assert "st-has-slow" not in content
    assert "st-bar-slow" not in content


@override_settings(SIGNALTRACE={"ENABLED": True, "MAX_DISPATCHES": 3})
def test_dropped_dispatches_noted(created_toolbars):
    Client().get("/panel/signals/")
    content = stored_panel(created_toolbars[0]).content
    assert content.count('class="st-dispatch') == 3
    dropped = re.search(r"(\d+) later dispatches not recorded", content)
    assert dropped is not None and int(dropped.group(1)) >= 9  # the page sends 12
    assert "(3)" in content


def test_markup_is_escaped_and_secrets_redacted(created_toolbars):
    Client().get("/panel/signals/")
    toolbar = created_toolbars[0]
    content = stored_panel(toolbar).content
    # The hostile string is a sender, a kwarg, a dispatch_uid and an exception message.
    assert "<script>" not in content
    escaped = "&lt;script&gt;alert(&#x27;signaltrace&#x27;)&lt;/script&gt;"
    assert content.count(escaped) >= 4
    assert f"<code>{escaped}</code>" in content  # the dispatch_uid
    # A kwarg named like a secret never reaches the store or the page.
    assert "hunter2" not in json.dumps(stored_stats(toolbar))
    assert "hunter2" not in content
    assert "<dt>password</dt><dd><code>********************</code></dd>" in content


@needs_asend
@pytest.mark.django_db(transaction=True)  # other threads write through their own connections: flushed after
async def test_async_view_under_asgi(created_toolbars):
    response = await AsyncClient().get("/panel/async/")
    assert response.status_code == 200
    [toolbar] = created_toolbars
    assert toolbar.get_panel_by_id(PANEL).enabled  # ASGI: the toolbar disables sync-only panels
    stats = stored_stats(toolbar)
    names = signals(stats)
    assert names[:3] == ["pre_save", "post_save", "order_placed"]
    [order] = [d for d in stats["trace"]["dispatches"] if d["signal"].endswith("order_placed")]
    assert order["method"] == "asend"
    assert {call["receiver"].rsplit(".", 1)[-1] for call in order["calls"]} == {
        "reserve_stock",
        "send_receipt",
        "notify_async",
    }
    assert any(call["is_async"] for call in order["calls"])
    assert "stock_checked" in names  # sent by a sync receiver run from asend
    robust = page_dispatches(stats)[-1]
    assert robust["method"] == "asend_robust"
    assert robust["calls"][0]["exception"]["swallowed"] is True
    content = stored_panel(toolbar).content
    assert "swallowed by send_robust" in content


@pytest.mark.django_db(transaction=True)  # other threads write through their own connections: flushed after
async def test_sync_view_under_asgi(created_toolbars):
    response = await AsyncClient().get("/panel/signals/")
    assert response.status_code == 200
    stats = stored_stats(created_toolbars[0])
    names = signals(stats)
    assert len(names) == 12
    assert names[2] == "order_placed"


@pytest.mark.django_db(transaction=True)  # other threads write through their own connections: flushed after
def test_concurrent_threads_do_not_mix(created_toolbars):
    panel_views.barrier = threading.Barrier(2)
    responses: dict[str, int] = {}

    def fetch(tag: str) -> None:
        responses[tag] = Client().get(f"/panel/tagged/{tag}/").status_code

    try:
        threads = [threading.Thread(target=fetch, args=(tag,)) for tag in ("red", "blue")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    finally:
        panel_views.barrier = None
    assert responses == {"red": 200, "blue": 200}
    by_tag = {}
    for toolbar in created_toolbars:
        stats = stored_stats(toolbar)
        by_tag[senders(stats)[0].strip("'").split("-")[0]] = senders(stats)
    assert by_tag == {"red": ["'red-before'", "'red-after'"], "blue": ["'blue-before'", "'blue-after'"]}


@needs_asend
@pytest.mark.django_db(transaction=True)  # other threads write through their own connections: flushed after
async def test_concurrent_async_requests_do_not_mix(created_toolbars):
    panel_views.async_gate.update(arrived=0, expected=2, event=asyncio.Event())
    client = AsyncClient()
    try:
        responses = await asyncio.gather(
            client.get("/panel/async-tagged/red/"), client.get("/panel/async-tagged/blue/")
        )
    finally:
        panel_views.async_gate.clear()
    assert [response.status_code for response in responses] == [200, 200]
    found = sorted(senders(stored_stats(toolbar)) for toolbar in created_toolbars)
    assert found == [["'blue-before'", "'blue-after'"], ["'red-before'", "'red-after'"]]


def test_panel_api_directly_with_the_toolbar():
    """The toolbar's own test approach: build a toolbar, run the panel's hooks, reload stats."""
    request = RequestFactory().get("/panel/tagged/direct/")
    toolbar = DebugToolbar(request, panel_views.signals_page)
    panel = toolbar.get_panel_by_id(PANEL)
    panel.enable_instrumentation()
    panel.enable_instrumentation()  # idempotent
    try:
        response = panel.process_request(request)
    finally:
        panel.disable_instrumentation()
        panel.disable_instrumentation()
    panel_views.tagged.send(sender="after-the-request")  # not recorded
    panel.generate_stats(request, response)
    panel.generate_server_timing(request, response)
    assert "SignalTracePanel_signals" in panel.get_headers(request)["Server-Timing"]

    toolbar.stats = {}
    panel.load_stats_from_store(toolbar.store.panel(toolbar.request_id, PANEL))
    assert len(signals(panel.get_stats())) == 12
    assert "'after-the-request'" not in panel.content


def test_no_dispatch_page():
    toolbar = DebugToolbar(RequestFactory().get("/panel/x/"), lambda request: None)
    panel = toolbar.get_panel_by_id(PANEL)
    panel.enable_instrumentation()
    panel.disable_instrumentation()
    panel.generate_stats(None, None)
    assert panel.nav_subtitle.startswith("0 dispatches · 0 receivers")
    assert "No signal was sent during this request." in panel.content


def test_view_helpers():
    assert format_ms(42_000) == "0.042 ms"
    assert format_ms(4_312_000) == "4.31 ms"
    assert format_ms(12_345_678) == "12.3 ms"
    assert format_ms(1_204_000_000) == "1204 ms"
    trace = {
        "dispatches": [
            {"depth": 0, "duration_ns": 3_000_000, "calls": [{}, {"exception": {"type": "x"}}]},
            {"depth": 1, "duration_ns": 2_000_000, "calls": [{}]},
            {"depth": 0, "duration_ns": 1_300_000, "calls": []},
        ]
    }
    summary = summarize(trace)
    assert summary["exceptions"] == 1
    assert subtitle(summary) == "3 dispatches · 3 receivers · 4.3 ms"
    assert subtitle(summarize({"dispatches": [{"calls": [{}]}]})) == "1 dispatch · 1 receiver · 0.0 ms"
    assert short_path(panel_views.__file__).replace("\\", "/") == "tests/testapp/panel_views.py"


@pytest.mark.parametrize("value", [0, -5, "50", True, None])
def test_check_slow_threshold(value):
    with override_settings(SIGNALTRACE={"PANEL_SLOW_RECEIVER_MS": value}):
        errors = check_settings()
    assert [error.id for error in errors] == ["signaltrace.E010"]
    assert isinstance(errors[0], Error)


@pytest.mark.parametrize("value", [50, 12.5])
def test_check_slow_threshold_accepts_numbers(value):
    with override_settings(SIGNALTRACE={"PANEL_SLOW_RECEIVER_MS": value}):
        assert check_settings() == []


def test_run_checks_warns_without_the_app():
    assert SignalTracePanel.run_checks() == []
    with modify_settings(INSTALLED_APPS={"remove": ["signaltrace"]}):
        [warning] = SignalTracePanel.run_checks()
    assert warning.id == "signaltrace.W010"


def test_every_stored_string_is_escaped():
    """Markup in any string field of the stats (as a store could hold) renders as text."""
    evil = '<img src=x onerror="alert(1)">'
    call = {
        "receiver": evil,
        "file": evil,
        "line": 1,
        "dispatch_uid": evil,
        "is_async": False,
        "start_ns": 0,
        "duration_ns": 90_000_000,
        "exception": {"type": evil, "message": evil, "traceback": evil, "swallowed": True},
        "dispatches": [1],
    }
    step = {"signal": evil, "sender": evil, "instance": evil, "receiver": evil, "file": evil, "line": 2}
    loop = {"message": evil, "action": "warned", "swallowed": False, "cycle": [step]}
    dispatch = {
        "id": 0,
        "signal": evil,
        "sender": evil,
        "method": evil,
        "depth": 0,
        "start_ns": 0,
        "duration_ns": 100_000_000,
        "kwargs": {evil: evil},
        "parent": None,
        "loop": loop,
        "calls": [call],
    }
    nested = {**dispatch, "id": 1, "depth": 1, "parent": {"dispatch": 0, "call": 0}, "calls": []}
    trace = {
        "version": 1,
        "duration_ns": 200_000_000,
        "dropped": 0,
        "loops": [loop],
        "dispatches": [dispatch, nested],
    }
    content = render_to_string("signaltrace/panel.html", build_context({"trace": trace, "slow_ms": 50}))
    assert "<img" not in content
    assert content.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;") >= 15

    # The same, with the exception grouped over two levels (receiver names in its levels).
    nested["calls"] = [call]
    groups = [[[0, 0], [1, 0]]]
    stats = {"trace": trace, "slow_ms": 50, "exception_groups": groups}
    content = render_to_string("signaltrace/panel.html", build_context(stats))
    assert "<img" not in content
    assert "raised through 2 receivers" in content
    assert content.count('<li><span class="st-muted">') == 2


# ------------------------------------------------------- exceptions, grouped by object


def test_an_exception_through_several_receivers_is_listed_once(created_toolbars):
    Client().get("/panel/signals/")
    stats = stored_stats(created_toolbars[0])
    assert json.loads(json.dumps(stats)) == stats
    # The loop's SignalLoopError, raised by the third echo dispatch, passed up through
    # the echo_again receivers at depths 1 and 0: the same object, one group.
    loop_groups = [
        group
        for group in stats["exception_groups"]
        if stats["trace"]["dispatches"][group[0][0]]["calls"][group[0][1]]["exception"]["type"].endswith(
            "SignalLoopError"
        )
    ]
    assert len(loop_groups) == 1
    assert [stats["trace"]["dispatches"][d]["depth"] for d, _ in loop_groups[0]] == [0, 1]
    assert stats["summary"]["exceptions"] == 3  # swallowed, raised, and the loop error once

    content = stored_panel(created_toolbars[0]).content
    section = content.split('<section class="st-exceptions">', 1)[1].split("</section>", 1)[0]
    assert section.count('<details class="st-exception">') == 3
    assert section.count("<code>signaltrace.errors.SignalLoopError</code>") == 1
    assert "raised through 2 receivers" in section
    levels = re.findall(r"(from|through) depth (\d):</span> <code>([^<]+)</code>", section)
    assert levels == [
        ("from", "1", "tests.testapp.panel_views.echo_again"),
        ("through", "0", "tests.testapp.panel_views.echo_again"),
    ]
    assert "3 exceptions," in content


def _robust_twice(request):
    """Two send_robust calls from one line: two exception objects with the same text."""
    for _ in range(2):
        panel_views.audit_logged.send_robust(sender="twice")
    return None


def _panel_for(view, path: str = "/panel/direct/") -> SignalTracePanel:
    """The toolbar's own test approach: build a toolbar, run the panel's hooks on ``view``."""
    request = RequestFactory().get(path)
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


def test_equal_exceptions_from_separate_dispatches_stay_apart():
    panel = _panel_for(_robust_twice)
    stats = panel.get_stats()
    tracebacks = [
        call["exception"]["traceback"]
        for dispatch in stats["trace"]["dispatches"]
        for call in dispatch["calls"]
        if call["exception"]
    ]
    assert len(tracebacks) == 2 and tracebacks[0] == tracebacks[1]  # the same text...
    assert len(stats["exception_groups"]) == 2  # ...but two exceptions
    assert panel.content.count('<details class="st-exception">') == 2
    assert "raised through" not in panel.content


def test_stats_without_groups_list_each_call(created_toolbars):
    """Stats stored before exception_groups existed still render, one entry per call;
    malformed groups are skipped."""
    Client().get("/panel/signals/")
    stats = stored_stats(created_toolbars[0])
    groups = stats.pop("exception_groups")
    content = render_to_string("signaltrace/panel.html", build_context(stats))
    assert content.count('<details class="st-exception">') == 4
    assert "raised through" not in content

    stats["exception_groups"] = [["x"], [[999, 0]], [[[0], {}]], "junk", *groups]
    content = render_to_string("signaltrace/panel.html", build_context(stats))
    assert content.count('<details class="st-exception">') == 3


# ------------------------------------------------------------------- the time axes


def _waits_between_signals(request):
    """Signals take a sliver of this request: 40 ms pass between two dispatches."""
    panel_views.cache_cleared.send(sender="before")
    time.sleep(0.04)
    panel_views.tagged.send(sender="after")
    panel_views.cache_cleared.send(sender="last")
    return None


def slow_receiver(sender: Any, **kwargs: Any) -> None:
    time.sleep(0.02)


def test_signals_only_axis_compresses_the_gaps_of_a_recorded_trace():
    # The third dispatch takes 20 ms, so only a gap over 1 ms (5% of the time in
    # dispatches) is compressed: a scheduler hiccup between the second and the third
    # stays to scale, and the garbage collector stays out of the way.
    panel_views.cache_cleared.connect(slow_receiver, sender="third")
    gc.disable()
    try:
        with signaltrace.record() as trace:
            panel_views.cache_cleared.send(sender="first")
            time.sleep(0.3)
            panel_views.audit_logged.send_robust(sender="second")
            panel_views.cache_cleared.send(sender="third")
            time.sleep(0.01)
    finally:
        gc.enable()
        panel_views.cache_cleared.disconnect(slow_receiver, sender="third")
    data = trace.to_dict()
    first, second, third = data["dispatches"]
    axis = SignalsAxis([(d["start_ns"], d["start_ns"] + d["duration_ns"]) for d in data["dispatches"]])

    # From the start of the first dispatch to the end of the last one.
    assert axis.first_ns == first["start_ns"]
    assert axis.last_ns == third["start_ns"] + third["duration_ns"]
    assert axis.position(first["start_ns"]) == 0
    assert axis.position(axis.last_ns) == AXIS_UNITS
    # The 300 ms between the first two is one compressed gap, with its real length; the
    # microseconds between the second and the third stay to scale.
    [gap] = axis.gaps
    assert gap["duration_ns"] == second["start_ns"] - first["start_ns"] - first["duration_ns"]
    assert gap["duration_ns"] >= 300_000_000
    assert gap["width"] == GAP_UNITS
    assert axis.position(second["start_ns"]) - axis.position(first["start_ns"] + first["duration_ns"]) == (
        pytest.approx(GAP_UNITS)
    )
    # Time inside dispatches is to scale: equal durations, equal widths.
    busy = first["duration_ns"] + (axis.last_ns - second["start_ns"])
    scale = (AXIS_UNITS - GAP_UNITS) / busy
    start = axis.position(second["start_ns"])
    assert axis.position(second["start_ns"] + second["duration_ns"]) - start == pytest.approx(
        second["duration_ns"] * scale
    )
    [marker] = axis.markers()
    assert marker["label"] == format_ms(gap["duration_ns"]) and marker["labelled"]

    # The trace's time is mostly the sleeps: signals-only is the default, with the marker.
    context = build_context({"trace": data, "summary": summarize(data)})
    assert context["axis"] == "signals"
    assert context["gaps"] == [marker]
    html = str(context["tree"])
    assert html.count('<path class="st-gap" d="') == html.count('<details class="st-dispatch') == 3
    assert f'<rect class="st-bar-dispatch" x="0.00" width="{(first["duration_ns"] * scale):.2f}"' in html or (
        first["duration_ns"] * scale < MIN_BAR_UNITS
    )


def test_signals_axis_merges_overlapping_dispatches():
    """Concurrent top-level dispatches (asend in tasks) overlap: no gap between them."""
    axis = SignalsAxis([(100, 400), (300, 500), (10_000, 10_100), (10_050, 10_060)])
    assert (axis.first_ns, axis.last_ns) == (100, 10_100)
    assert [gap["duration_ns"] for gap in axis.gaps] == [9_500]
    assert axis.position(450) < axis.position(500) < axis.position(10_000) <= axis.position(10_050)
    assert SignalsAxis([]).gaps == [] and SignalsAxis([]).position(5) == AXIS_UNITS


def test_default_axis_through_the_toolbar():
    panel = _panel_for(_waits_between_signals)
    stats = panel.get_stats()
    assert stats["summary"]["signal_ns"] < stats["trace"]["duration_ns"]
    content = panel.content
    assert 'data-st-axis="signals"' in content
    assert content.count('aria-pressed="true"') == 1
    assert 'data-st-axis-choice="signals" aria-pressed="true"' in content
    # The 40 ms gap, labelled with its real length in the axis header.
    labels = re.findall(r'<text class="st-gap-label"[^>]*>// ([\d.]+) ms</text>', content)
    assert max(float(label) for label in labels) >= 40
    assert "Time axis: signals only, from the first dispatch at" in content

    # Signals for a tenth of the request or more keep the request's axis as the default.
    assert default_axis(signal_ns=9, request_ns=100) == "signals"
    assert default_axis(signal_ns=10, request_ns=100) == "request"


def test_an_exception_swallowed_up_the_chain_is_marked_where_it_stopped(connect):
    outer, inner = Signal(), Signal()

    def relay(sender: Any, **kwargs: Any) -> None:
        inner.send(sender=sender)

    def fail(sender: Any, **kwargs: Any) -> None:
        raise KeyError("gone")

    connect(outer, relay)
    connect(inner, fail)
    with signaltrace.record() as trace:
        outer.send_robust(sender="chain")
    stats = {"trace": trace.to_dict(), "exception_groups": exception_groups(trace)}
    assert stats["exception_groups"] == [[[0, 0], [1, 0]]]
    [entry] = build_context(stats)["exceptions"]
    assert entry["through"] == 2
    assert entry["swallowed"] and entry["verdict"] == "swallowed by send_robust"
    assert entry["type"] == "builtins.KeyError"
    assert [(level["depth"], level["receiver"].rsplit(".", 1)[-1]) for level in entry["levels"]] == [
        (1, "fail"),
        (0, "relay"),
    ]


# ------------------------------------------------------------------- slow deletes


def forget_node(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A post_delete receiver that does nothing: its presence turns off the fast path."""


FORGET_NODE_AT = f"{short_path(__file__.removesuffix('c'))}:{forget_node.__code__.co_firstlineno}"


def _delete_a_tree(request):
    """A signal, a node with two children deleted (a cascade), a signal."""
    panel_views.cache_cleared.send(sender="before")
    root = Node.objects.create(name="root")
    Node.objects.bulk_create([Node(name="a", parent=root), Node(name="b", parent=root)])
    _delete_a_tree.pk = root.pk
    root.delete()
    panel_views.cache_cleared.send(sender="after")
    return None


def _row_markers(content: str) -> list[str]:
    """The tree's rows in order: ``D1`` for a slow delete, the id for a dispatch."""
    return [
        f"D{delete}" if delete else number
        for delete, number in re.findall(
            r'<details class="st-(?:delete" [^>]*data-st-delete="(\d+)"|'
            r'dispatch[^"]*" [^>]*data-st-id="(\d+)")',
            content,
        )
    ]


def test_a_slow_delete_is_a_row_above_the_dispatches_it_sent(connect):
    connect(post_delete, forget_node, sender=Node)
    panel = _panel_for(_delete_a_tree)
    stats = panel.get_stats()
    assert json.loads(json.dumps(stats)) == stats  # stored as JSON, rendered from the store
    assert stats["summary"]["slow_deletes"] == 1
    [entry] = stats["trace"]["slow_deletes"]
    dispatches = stats["trace"]["dispatches"]
    members = entry["dispatches"]
    assert sorted(dispatches[number]["signal"].rsplit(".", 1)[-1] for number in members) == (
        ["post_delete"] * 3 + ["pre_delete"] * 3
    )

    content = panel.content
    summary = f"delete of testapp.Node #{_delete_a_tree.pk}: 3 testapp.Node; 6 signals"
    assert content.count('<details class="st-delete"') == 1
    assert f"<code>{summary}</code>" in content
    first, last = dispatches[members[0]]["id"], dispatches[members[-1]]["id"]
    assert f"the 6 dispatches below (#{first} to #{last}) ran inside it" in content
    # The row sits right above the first dispatch it sent; those six follow it, marked.
    order = _row_markers(content)
    at = order.index("D1")
    assert order[at + 1 : at + 7] == [str(dispatches[number]["id"]) for number in members]
    assert content.count('class="st-badge st-delete-badge">in D1</span>') == 6
    assert content.count("st-in-delete") == 6
    # Its details: rows per model, signals, duration, and the receiver with file:line.
    body = content.split('<details class="st-delete"', 1)[1].split("</details>", 1)[0]
    assert '<tr><td><code>testapp.Node</code></td><td class="st-num">3</td></tr>' in body
    assert "6 signals sent · " in body and " ms · the 6 dispatches below" in body
    assert f"<td><code>{__name__}.forget_node</code></td><td>post_delete</td><td>testapp.Node</td>" in body
    assert f">{FORGET_NODE_AT}</td>" in body
    # Its bar, on both time axes.
    assert body.count('<rect class="st-bar-delete"') == 2
    assert "1 slow delete: delete receivers kept Django off its fast path (rows D1 below)" in content


def test_without_delete_receivers_no_delete_row(connect):
    content = _panel_for(_delete_a_tree).content
    assert "st-delete" not in content
    assert "slow delete" not in content


def _sleepy_sql(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    if sql.startswith("DELETE"):
        time.sleep(0.03)  # Django's own work inside the delete, between its signals
    return execute(sql, params, many, context)


def test_the_signals_only_axis_keeps_a_slow_delete_to_scale(connect):
    """The 30 ms between a delete's pre_delete and post_delete sends is no gap between
    signals: only the 40 ms before the delete is compressed."""
    connect(post_delete, forget_node, sender=Node)
    root = Node.objects.create(name="root")
    Node.objects.create(name="leaf", parent=root)
    with signaltrace.record() as trace:
        panel_views.cache_cleared.send(sender="before")
        time.sleep(0.04)
        with connection.execute_wrapper(_sleepy_sql):
            root.delete()
    data = trace.to_dict()
    context = build_context({"trace": data, "summary": summarize(data)})
    [delete] = context["slow_deletes"]
    _request_bar, signals_bar = delete["bars"]
    start, width = float(signals_bar["x"]), float(signals_bar["width"])
    assert width > AXIS_UNITS - GAP_UNITS - 50  # all but the compressed gap and the first send
    assert start + width == pytest.approx(AXIS_UNITS)
    [gap] = context["gaps"]
    assert float(gap["label"].split()[0]) >= 40
    assert float(gap["left"]) * AXIS_UNITS / 100 + float(gap["width"]) * AXIS_UNITS / 100 <= start + 0.01
    assert context["axis"] == "signals"


def test_stats_without_slow_deletes_still_render(connect):
    """Stats stored before slow deletes existed, and malformed entries, render."""
    connect(post_delete, forget_node, sender=Node)
    stats = _panel_for(_delete_a_tree).get_stats()
    del stats["trace"]["slow_deletes"], stats["summary"]["slow_deletes"]
    content = render_to_string("signaltrace/panel.html", build_context(stats))
    assert "st-delete" not in content and 'class="st-dispatch' in content

    stats["trace"]["slow_deletes"] = [
        "junk",
        {"model": "x.Y", "rows": "junk", "receivers": [1], "dispatches": [9999, "a", -1, True]},
    ]
    context = build_context(stats)
    content = render_to_string("signaltrace/panel.html", context)
    assert "<code>delete of x.Y: ; 0 signals</code>" in content
    assert "no dispatch of it was recorded" in content
    assert _row_markers(content)[0] == "D1"  # no start time: placed where 0 ns falls, first
    assert "st-in-delete" not in content


def test_every_stored_slow_delete_string_is_escaped():
    evil = '<img src=x onerror="alert(1)">'
    dispatch = {
        "id": 0,
        "signal": "post_delete",
        "sender": "x",
        "method": "send",
        "depth": 0,
        "start_ns": 10,
        "duration_ns": 5,
        "kwargs": {},
        "parent": None,
        "loop": None,
        "calls": [],
    }
    found = {"signal": evil, "sender": evil, "receiver": evil, "file": evil, "line": evil}
    delete = {
        "model": evil,
        "instance_pk": evil,
        "rows": [{"model": evil, "count": 1}],
        "signals_sent": 2,
        "receivers": [found],
        "start_ns": 0,
        "duration_ns": 20,
        "summary": evil,
        "dispatches": [0],
    }
    trace = {"duration_ns": 100, "dispatches": [dispatch], "slow_deletes": [delete]}
    content = render_to_string("signaltrace/panel.html", build_context({"trace": trace}))
    assert "<img" not in content
    assert content.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;") >= 7
    # Without the stored summary, the rebuilt one is escaped too.
    del delete["summary"]
    content = render_to_string("signaltrace/panel.html", build_context({"trace": trace}))
    assert "<img" not in content and "delete of &lt;img" in content
