"""Every output surface against one shared table of hostile values and secrets (tests/hostile.py).

Surfaces: the trace (``dispatch.kwargs``, ``repr(trace.dispatches)``, ``to_dict()``), the
debug-toolbar panel rendered back from the toolbar's store, OpenTelemetry spans with
``OTEL_RECORD_KWARGS``, the pytest report and ``-v`` failure text, the loop message and
the signal graph. On each: no secret marker, no raw markup where HTML is made, bounded
output, no SQL (queries counted around recording and every reading), and no hostile
code run (the probes record it). The controls at the top prove the table is hostile
for real, so the zero counts below can fail.
"""

from __future__ import annotations

import gc
import html
import json
import re
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import nullcontext
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from debug_toolbar.store import get_store
from debug_toolbar.toolbar import DebugToolbar
from django.core.management import call_command
from django.db import connection
from django.db.models.signals import post_save
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

import signaltrace
from signaltrace.conf import REDACTED, sensitive_pattern
from signaltrace.core import is_sensitive
from signaltrace.graph import FORMATS, build_map, render
from tests import hostile
from tests.hostile import TABLE, Hostile
from tests.spans import Spans
from tests.testapp import hostile_views

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
#: MAX_REPR_LENGTH by default: no rendered kwarg is longer, whatever its value.
MAX_REPR_LENGTH = 200
#: Upper bounds of whole outputs made from megabytes of input.
MAX_TRACE_JSON = 100_000
MAX_PAGE = 250_000
#: Generous: the point is "not proportional to a megabyte or 5,000 levels", not speed.
MAX_SECONDS = 3.0
PANEL = "SignalTracePanel"


@pytest.fixture(autouse=True)
def _probes() -> Iterator[None]:
    """Each test starts with no hostile code run; none left for the next one."""
    hostile.PROBE_CALLS.clear()
    hostile_views.last_kwargs.clear()
    yield
    hostile.PROBE_CALLS.clear()
    hostile_views.last_kwargs.clear()


@pytest.fixture
def table_receivers() -> Iterator[None]:
    with hostile.connected():
        yield


def by_id(entries: tuple[Hostile, ...] = TABLE) -> dict[str, Any]:
    return {"argvalues": entries, "ids": [entry.id for entry in entries]}


def assert_no_leak(**outputs: str) -> None:
    found = {name: hostile.leaked(text) for name, text in outputs.items()}
    assert {name: markers for name, markers in found.items() if markers} == {}


def assert_kwargs_shown_safely(kwargs: dict[str, str], entries: tuple[Hostile, ...] = TABLE) -> None:
    """Rendered kwargs: every entry there, bounded, redacted or visible as the table says."""
    assert set(kwargs) == {entry.name for entry in entries}
    too_long = {name: len(text) for name, text in kwargs.items() if len(text) > MAX_REPR_LENGTH}
    assert too_long == {}
    for entry in entries:
        if entry.redacted:
            assert kwargs[entry.name] == REDACTED, entry.id
        if entry.visible is not None:
            assert entry.visible in kwargs[entry.name], entry.id


# ------------------------------------------------------------------ controls: the table is hostile


def test_the_table_holds_what_the_issue_lists() -> None:
    names = [entry.name for entry in TABLE]
    assert len(set(names)) == len(names)
    assert set(hostile.SECRET_NAMES) <= set(names)
    assert len(set(hostile.SECRETS)) == len(hostile.SECRETS) == 21
    pattern = sensitive_pattern()
    for entry in TABLE + hostile.KNOWN_LEAKS:
        # Secrets under innocent names test the value checks, not the name check.
        assert is_sensitive(entry.name, pattern) is (entry.name in hostile.SECRET_NAMES), entry.id
        if entry.secret is None:
            continue
        value = entry.make()
        # The marker is really in the value: a leaked value would be found.
        shown = repr(value._setupfunc()) if type(value).__name__ == "SimpleLazyObject" else repr(value)
        assert entry.secret in shown, entry.id
    assert hostile.leaked(f"x {hostile.secret(7)} y") == [hostile.secret(7)]


def test_the_probes_really_run_sql_and_break_repr() -> None:
    """What every "0 queries" and "no probe call" below would catch."""
    values = hostile.build()
    for name, look in [
        ("item", str),  # Item.__str__ counts rows
        ("item", repr),  # Model.__repr__ calls __str__
        ("probe", repr),
        ("probe", lambda value: value == 1),
        ("probe", lambda value: isinstance(value, int)),
        ("user", bool),  # evaluates the lazy object
        ("items", list),
    ]:
        with CaptureQueriesContext(connection) as queries:
            look(values[name])
        assert len(queries) >= 1, name
    assert hostile.untouched_failures(values) == ["lazy-object", "lazy-queryset"]
    assert "QueryingObject.__class__" in hostile.PROBE_CALLS
    with pytest.raises(RuntimeError):
        repr(values["broken"])
    assert len(repr(values["verbose"])) > hostile.MB
    try:
        tree = repr(values["tree"])
    except RecursionError:  # before Python 3.12
        tree = None
    assert tree is None or len(tree) == 2 * 5001  # "[[[...]]]": breaks repr, or is 10 kB of it
    with pytest.raises(ValueError, match="Circular reference"):
        json.dumps(values["graph"])
    next(values["stream"])
    assert hostile.untouched_failures(values) == ["lazy-object", "lazy-queryset", "generator"]


# ------------------------------------------------------------------ the trace


@pytest.mark.parametrize("repr_objects", [False, True], ids=["default", "REPR_OBJECTS"])
@pytest.mark.parametrize("entry", **by_id())
def test_trace_kwargs_repr_and_to_dict(entry: Hostile, repr_objects: bool, table_receivers: None) -> None:
    value = entry.make()
    settings = {"ENABLED": True, "REPR_OBJECTS": repr_objects}
    started = time.perf_counter()
    with override_settings(SIGNALTRACE=settings), CaptureQueriesContext(connection) as queries:
        with signaltrace.record() as trace:
            hostile.table_sent.send(sender=hostile.SCRIPT, **{entry.name: value})
        [dispatch] = trace.dispatches
        rendered = dispatch.kwargs
        shown = repr(trace.dispatches)
        data = trace.to_dict()
        text = json.dumps(data)
    elapsed = time.perf_counter() - started

    assert_kwargs_shown_safely(rendered, (entry,))
    assert data["dispatches"][0]["kwargs"] == rendered
    assert json.loads(text) == data
    assert_no_leak(kwargs=json.dumps(rendered), repr=shown, to_dict=text)
    assert len(shown) < 5_000 and len(text) < 5_000
    assert elapsed < MAX_SECONDS
    assert hostile.untouched_failures({entry.name: value}, (entry,)) == []
    # REPR_OBJECTS opts in to the user's own __repr__, once, when recorded; nothing else runs.
    allowed_calls = [f"{type(value).__name__}.__repr__"] if repr_objects and entry.user_repr else []
    assert hostile.PROBE_CALLS in ([], allowed_calls)
    assert len(queries) <= (entry.repr_queries if repr_objects else 0), queries.captured_queries


def test_whole_table_in_every_dispatch_of_one_trace(table_receivers: None) -> None:
    kwargs = hostile.build()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        with signaltrace.record() as trace:
            error = hostile.send_table(kwargs)
        dispatches = trace.dispatches
        shown = repr(dispatches)
        data = trace.to_dict()
        text = json.dumps(data)
    elapsed = time.perf_counter() - started

    assert queries.captured_queries == []
    assert hostile.PROBE_CALLS == []
    assert hostile.untouched_failures(kwargs) == []
    # 3 sends, then the loop: 2 entries and the dispatch stopped on the third.
    assert [d.signal_name.rsplit(".", 1)[-1] for d in dispatches] == ["table_sent"] * 3 + ["looped"] * 3
    assert [d.sender_name for d in dispatches[:3]] == [repr(sender) for sender in hostile.SENDERS]
    for dispatch in dispatches:
        assert_kwargs_shown_safely(dispatch.kwargs)
    assert json.loads(text) == data
    assert [loop["message"] for loop in data["loops"]] == [str(error)]
    assert_no_leak(repr=shown, to_dict=text, loop=str(error))
    assert len(text) < MAX_TRACE_JSON and len(shown) < MAX_TRACE_JSON
    assert elapsed < MAX_SECONDS


# ------------------------------------------------------------------ the loop message


@pytest.mark.parametrize("as_instance", [False, True], ids=["kwarg", "instance"])
@pytest.mark.parametrize("entry", **by_id())
def test_loop_message(entry: Hostile, as_instance: bool, table_receivers: None) -> None:
    """A receiver re-sends the same kwargs; as ``instance=`` the value is also the loop's key."""
    value = entry.make()
    kwargs = {"instance": value} if as_instance else {entry.name: value}
    with CaptureQueriesContext(connection) as queries:
        with pytest.raises(signaltrace.SignalLoopError) as raised:
            hostile.looped.send(sender=hostile.IMG, **kwargs)
        message = str(raised.value)
        details = json.dumps(raised.value.loop.to_dict()) + repr(raised.value) + repr(raised.value.cycle)

    assert message == raised.value.loop.message
    assert message.startswith("Signal loop detected: tests.hostile.looped(")
    # One turn of the cycle: the looped dispatch, its receiver, the same dispatch again.
    assert message.count(" -> ") == 2 and message.count("tests.hostile.resend (tests/hostile.py:") == 1
    assert len(message) < 1_000
    assert_no_leak(message=message, details=details)
    if as_instance and entry.id == "model-str-queries":
        assert "tests.hostile.looped(testapp.Item #42)" in message  # by its pk, never its __str__
    assert queries.captured_queries == []
    assert hostile.PROBE_CALLS == []
    assert hostile.untouched_failures({entry.name: value}, (entry,)) == []


# ------------------------------------------------------------------ the panel, through the store


@pytest.fixture
def created_toolbars() -> Iterator[list[DebugToolbar]]:
    """The toolbars the middleware creates, via the toolbar's own test signal."""
    toolbars: list[DebugToolbar] = []

    def keep(sender: Any, toolbar: DebugToolbar, **kwargs: Any) -> None:
        toolbars.append(toolbar)

    DebugToolbar._created.connect(keep, weak=False)
    yield toolbars
    DebugToolbar._created.disconnect(keep)


@override_settings(ROOT_URLCONF="tests.hostile_urls")
def test_panel_rendered_from_the_toolbar_store(created_toolbars: list[DebugToolbar]) -> None:
    client = Client()
    # The page itself runs no SQL (its Item is unsaved, its lazy values never evaluated),
    # so every query here would be signaltrace's: recording, storing, or rendering.
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/panel/hostile/")
        [toolbar] = created_toolbars
        stats = get_store().panel(toolbar.request_id, PANEL)
        rendered = client.get(
            "/__debug__/render_panel/", {"request_id": toolbar.request_id, "panel_id": PANEL}
        )
    assert page.status_code == 200 and rendered.status_code == 200
    page_html = page.content.decode()
    content = rendered.json()["content"]
    stored = json.dumps(stats)

    assert queries.captured_queries == []
    assert hostile.PROBE_CALLS == []
    assert hostile.untouched_failures(hostile_views.last_kwargs) == []
    assert_no_leak(page=page_html, panel=content, store=stored)
    for markup in hostile.RAW_MARKUP:
        assert markup not in page_html and markup not in content
    # Shown, escaped: the markup and the control did reach the panel.
    assert html.escape(hostile.SCRIPT) in content
    assert html.escape(hostile.IMG) in content
    assert f"<dd><code>{html.escape(repr(hostile.TEMPLATE))}</code></dd>" in content  # text, not evaluated
    assert f"<dd><code>{html.escape(repr(hostile.VISIBLE))}</code></dd>" in content
    assert f"<dt>password</dt><dd><code>{REDACTED}</code></dd>" in content
    assert "stopped: SignalLoopError raised" in content
    # The page's own: 3 sends, the loop's 2 entries and the dispatch it stopped.
    dispatches = [d for d in stats["trace"]["dispatches"] if d["signal"].startswith("tests.hostile.")]
    assert len(dispatches) == 6
    for dispatch in dispatches:
        assert_kwargs_shown_safely(dispatch["kwargs"])
    assert len(content) < MAX_PAGE and len(stored) < MAX_PAGE


# ------------------------------------------------------------------ OpenTelemetry spans


@override_settings(SIGNALTRACE={"ENABLED": True, "OTEL_RECORD_KWARGS": True})
@pytest.mark.parametrize("recording", [False, True], ids=["spans-only", "inside-record"])
def test_spans_with_record_kwargs(spans: Spans, recording: bool, table_receivers: None) -> None:
    kwargs = hostile.build()
    with CaptureQueriesContext(connection) as queries:
        with signaltrace.record() if recording else nullcontext():
            hostile.send_table(kwargs)
        finished = list(spans.exporter.get_finished_spans())
        exported = [span.to_json() for span in finished]
    spans_json = list(zip(finished, exported, strict=True))

    assert queries.captured_queries == []
    assert hostile.PROBE_CALLS == []
    assert hostile.untouched_failures(kwargs) == []
    assert_no_leak(**{f"span {number} {span.name}": text for number, (span, text) in enumerate(spans_json)})
    dispatch_spans = [span for span in finished if span.name.startswith("send tests.hostile.")]
    assert len(dispatch_spans) == 6
    for span in dispatch_spans:
        prefix = "signaltrace.kwargs."
        shown = {
            key[len(prefix) :]: value for key, value in span.attributes.items() if key.startswith(prefix)
        }
        assert_kwargs_shown_safely(shown)
    [stopped] = [span for span in dispatch_spans if span.events]
    assert stopped.events[0].attributes["exception.type"] == "signaltrace.errors.SignalLoopError"
    assert sum(len(text) for text in exported) < MAX_PAGE


# ------------------------------------------------------------------ the pytest report and failure text

INNER_INI = """
[pytest]
DJANGO_SETTINGS_MODULE = tests.settings
pythonpath = {root}
asyncio_default_fixture_loop_scope = function
"""

INNER_CONFTEST = """
import pytest
from django.db import connection

from tests import hostile


@pytest.fixture(autouse=True)
def _no_sql_and_no_hostile_code():
    # Torn down after the plugin recorded the test, summarized it and pytest formatted
    # its failure: a query or a probe call anywhere in there errors the test.
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    hostile.PROBE_CALLS.clear()
    with connection.execute_wrapper(count):
        yield
    assert queries == []
    assert hostile.PROBE_CALLS == []
"""

INNER_TESTS = """
import pytest

from signaltrace import SignalLoopError
from tests import hostile

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _receivers():
    with hostile.connected():
        yield


def test_sends_the_table():
    kwargs = hostile.build()
    assert isinstance(hostile.send_table(kwargs), SignalLoopError)
    assert hostile.untouched_failures(kwargs) == []


def test_control_a_query_is_seen():
    str(hostile.build()["item"])  # Item.__str__ counts rows: this test errors at teardown


def test_lists_the_table_when_it_fails(django_assert_signals):
    kwargs = hostile.build()
    with django_assert_signals.sent(hostile.table_sent, times=2):
        for sender in hostile.SENDERS:
            hostile.table_sent.send(sender=sender, **kwargs)
"""


def test_pytest_report_and_verbose_failure(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    pytester.makeini(INNER_INI.format(root=ROOT))
    pytester.makeconftest(textwrap.dedent(INNER_CONFTEST))
    pytester.makepyfile(test_inner=textwrap.dedent(INNER_TESTS))
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:faker",
        "-p",
        "no:randomly",
        "-v",
        "--signaltrace-report=report.json",
        "--signaltrace-report-detail=full",
    )
    output = result.stdout.str() + result.stderr.str()
    report_text = (pytester.path / "report.json").read_text(encoding="utf-8")
    report = json.loads(report_text)

    # Only the control errors (its query seen at teardown): any other error would be SQL or hostile
    # code run while recording, summarizing or formatting the failure.
    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(["ERROR test_inner.py::test_control_a_query_is_seen - *"])
    result.stdout.fnmatch_lines(
        ["E       *Expected tests.hostile.table_sent to be sent 2 times, but it was sent 3 times."]
    )
    # Counted in the traceback ("E " lines) only: on CI (the CI variable set) pytest also repeats the
    # whole message in its short summary.
    kwargs_lines = [
        line
        for line in output.splitlines()
        if line.startswith("E ") and line.lstrip("E ").startswith("kwargs: ")
    ]
    assert len(kwargs_lines) == 3
    for line in kwargs_lines:
        assert f"remark={hostile.VISIBLE!r}" in line  # the listing does show kwargs
        assert f"password={REDACTED}" in line
    assert_no_leak(output=output, report=report_text)
    assert len(output) < MAX_PAGE
    assert report["totals"]["tests"] == 3
    [sending] = [test for test in report["tests"] if test["nodeid"].endswith("test_sends_the_table")]
    call = sending["phases"]["call"]
    assert call["dispatches"] == 6 and len(sending["loops"]) == 1
    assert {entry["sender"] for entry in call["signals"]} == {repr(sender) for sender in hostile.SENDERS}


# ------------------------------------------------------------------ the signal graph


def test_graph_from_the_saved_trace(tmp_path: Path) -> None:
    kwargs = hostile.build()
    with hostile.connected(), signaltrace.record() as trace:
        hostile.send_table(kwargs)
    data = trace.to_dict()
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(data), encoding="utf-8")

    outputs: dict[str, str] = {}
    with CaptureQueriesContext(connection) as queries:
        signal_map = build_map(data)
        for output_format in FORMATS:
            outputs[f"build_map {output_format}"] = render(signal_map, output_format, str(path))
            out = StringIO()
            call_command(
                "signaltrace",
                "graph",
                "--from-trace",
                str(path),
                "--signal",
                "tests.hostile.*",
                "--format",
                output_format,
                stdout=out,
            )
            outputs[output_format] = out.getvalue()

    assert queries.captured_queries == []
    assert hostile.PROBE_CALLS == []
    assert_no_leak(**outputs)
    calls = {(signal, sender) for signal, sender, receiver in signal_map.observed_calls}
    assert calls >= {("tests.hostile.table_sent", repr(sender)) for sender in hostile.SENDERS}
    assert f"tests.hostile.looped({hostile.SCRIPT!r}) -> tests.hostile.resend" in outputs["text"]  # the cycle
    observed = json.loads(outputs["json"])["observed"]["calls"]
    assert {call["sender"] for call in observed} == {repr(sender) for sender in hostile.SENDERS}
    # Mermaid labels are HTML: the markup is escaped there.
    for markup in ("<script", "<img"):
        assert markup not in outputs["mermaid"] and markup not in outputs["build_map mermaid"]
    # DOT: every node label is one well-formed quoted string, whatever quotes the sender had.
    node = re.compile(r'  n\d+ \[label="(?:[^"\\]|\\.)*", shape=(?:ellipse|box)\];')
    for name in ("dot", "build_map dot"):
        lines = [line for line in outputs[name].splitlines() if "[label=" in line and "style=" not in line]
        assert lines and [line for line in lines if not node.fullmatch(line)] == []
    assert max(len(text) for text in outputs.values()) < MAX_PAGE


# ----------------------------------------- regressions: a secret primary key, a huge kwarg name


class KnownBug(AssertionError):
    """The failure these tests look for: the leak they guard against, found again."""


def known_bug_if(condition: bool, message: str) -> None:
    if condition:
        raise KnownBug(message)


SESSION_KEY_LEAK = (
    "A model instance is shown by its primary key, and a Session's primary key is its session key: "
    "signaltrace/core/rendering.py (snapshot (MODEL_MARK, label, pk), rendered by _render as "
    "<sessions.Session pk='...'>) puts the live session key in the 'instance' kwarg of every "
    "pre_save/post_save of Session.save() (trace, to_dict, panel, spans with OTEL_RECORD_KWARGS, "
    "pytest -v listing); signaltrace/core/loops.py _instance_label puts it in the loop message "
    "('sessions.Session #<session key>')"
)


def test_session_save_shows_no_session_key_in_the_trace() -> None:
    [row] = hostile.KNOWN_LEAKS
    session = row.make()
    with signaltrace.record() as trace:
        session.save()  # Django's own pre_save and post_save, instance=session
    assert [dispatch.signal_name for dispatch in trace.dispatches] == ["pre_save", "post_save"]
    text = repr(trace.dispatches) + json.dumps(trace.to_dict())
    known_bug_if(bool(hostile.leaked(text)), f"session key in the trace: {trace.dispatches[1].kwargs}")


@override_settings(SIGNALTRACE={"ENABLED": True, "OTEL_RECORD_KWARGS": True})
def test_session_save_shows_no_session_key_in_spans(spans: Spans, connect: Any) -> None:
    [row] = hostile.KNOWN_LEAKS
    session = row.make()
    connect(post_save, hostile.listen, sender=type(session))  # spans are made for dispatches with receivers
    session.save()
    finished = list(spans.exporter.get_finished_spans())
    [saved] = [span for span in finished if span.name == "send post_save"]
    assert saved.attributes["signaltrace.kwargs.created"] == "True"  # kwargs are recorded
    known_bug_if(bool(hostile.leaked(saved.to_json())), f"session key in a span: {dict(saved.attributes)}")


def test_a_session_loop_message_shows_no_session_key(table_receivers: None) -> None:
    [row] = hostile.KNOWN_LEAKS
    with pytest.raises(signaltrace.SignalLoopError) as raised:
        hostile.looped.send(sender=type(row.make()), instance=row.make())
    message = str(raised.value)
    assert message.startswith("Signal loop detected: tests.hostile.looped(sessions.Session #")
    known_bug_if(bool(hostile.leaked(message)), message)


HUGE_NAME_KEPT = (
    "signaltrace/core/rendering.py snapshot_kwargs caches the tuple of kwarg names in the process-wide "
    "_redaction_plans (up to MAX_CACHED = 1000 tuples) whatever the names' length, so a kwarg name of any "
    "size stays alive after its trace is gone (1,000 dispatches with distinct 1 MB names keep 1 GB), "
    "although is_sensitive() deliberately caches no name longer than MAX_NAME_LENGTH"
)


def test_a_huge_kwarg_name_is_not_kept_after_its_trace(table_receivers: None) -> None:
    name = "".join(["huge_name_", "x" * 10_000])  # a new object, longer than MAX_NAME_LENGTH
    before = sys.getrefcount(name)
    with signaltrace.record() as trace:
        hostile.table_sent.send(sender=None, **{name: 1})
    assert list(trace.dispatches[0].kwargs) == [name]
    del trace
    gc.collect()
    kept = sys.getrefcount(name) - before
    known_bug_if(kept > 0, f"{kept} reference(s) to the name kept after the trace is gone")
