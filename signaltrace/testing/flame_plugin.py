"""pytest side of the flame view: ``--signaltrace-trace=PATH`` writes the run as Chrome trace-event JSON.

Each test is recorded from its set-up to the end of its teardown in one ``record()``
block (nested blocks, such as the report's per-phase ones, see the same dispatches).
Its events (:mod:`signaltrace.testing.chrome_trace`) are built when its teardown
report is made and ride on that report, which pytest-xdist sends to the controller;
the process that owns the run's output (the controller, or the only process) writes
the file when the session ends. Nothing here runs unless the option is given.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest  # noqa: TID251 - a pytest plugin module

from signaltrace.core import record
from signaltrace.safety import report_internal_error
from signaltrace.testing.chrome_trace import MAIN_TRACK, test_events, wall_ns, write_chrome_trace

_PATH = pytest.StashKey[str]()
_TRACE = pytest.StashKey[tuple[Any, int]]()  # the open Trace and its start on the wall clock
_PHASES = pytest.StashKey[list[tuple[str, int, int]]]()
_OUTCOME = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("signaltrace", "signaltrace: Django signal recording")
    group.addoption(
        "--signaltrace-trace",
        metavar="PATH",
        dest="signaltrace_trace",
        default=None,
        help="Record every test and write the run as Chrome trace-event JSON to PATH "
        "(a flame view for Perfetto UI or speedscope).",
    )


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("signaltrace_trace")
    if not path:
        return
    config.stash[_PATH] = str(config.invocation_params.dir / path)
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(_TraceWriter(config.stash[_PATH]), "signaltrace-trace-writer")


def _tracing(item: pytest.Item) -> bool:
    return _PATH in item.config.stash


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """Keep one ``record()`` block open around the test's three phases."""
    if not _tracing(item):
        return (yield)
    with ExitStack() as stack:
        try:
            trace = stack.enter_context(record())
            # The trace's own origin: a clock read here could come a preemption later.
            item.stash[_TRACE] = (trace, wall_ns(trace.origin_perf_ns))
        except Exception:  # noqa: BLE001 - the flame view must never break the run
            report_internal_error("flame record")
        try:
            return (yield)
        finally:
            if _TRACE in item.stash:
                del item.stash[_TRACE]  # items live until the session ends, traces need not


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    return (yield from _timed(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _timed(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    return (yield from _timed(item, "teardown"))


def _timed(item: pytest.Item, phase: str) -> Iterator[None]:
    if not _tracing(item):
        return (yield)
    start = time.perf_counter_ns()
    try:
        return (yield)
    finally:
        item.stash.setdefault(_PHASES, []).append((phase, wall_ns(start), wall_ns()))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    if not _tracing(item):
        return report
    if call.when == "call" or report.failed or (report.skipped and call.when == "setup"):
        item.stash[_OUTCOME] = "error" if report.failed and call.when != "call" else report.outcome
    if call.when == "teardown":
        try:
            trace, start = item.stash.get(_TRACE, (None, 0))
            workerinput = getattr(item.config, "workerinput", None)
            track = workerinput["workerid"] if workerinput else MAIN_TRACK
            phases = item.stash.get(_PHASES, [])
            outcome = item.stash.get(_OUTCOME, "passed")
            report.signaltrace_flame = test_events(  # type: ignore[attr-defined]
                item.nodeid, track, phases, trace, start, outcome
            )
        except Exception:  # noqa: BLE001
            report_internal_error("flame events")
        item.stash[_PHASES] = []
    return report


class _TraceWriter:
    """Collects the events of every test (local or from xdist workers) and writes the file at the end."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.events: list[dict[str, Any]] = []
        self.tests = 0
        self.written: int | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        events = getattr(report, "signaltrace_flame", None)
        if isinstance(events, list) and events:
            self.events.extend(events)
            self.tests += 1

    def pytest_sessionfinish(self) -> None:
        try:
            self.written = write_chrome_trace(self.path, self.events)
        except Exception:  # noqa: BLE001
            report_internal_error("flame write")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.written is not None:
            summary = f"flame view of {self.tests} tests ({self.written} events)"
            terminalreporter.write_line(f"signaltrace: {summary} written to {self.path}")
