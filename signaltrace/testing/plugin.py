"""The pytest plugin: signal fixtures, ``--signaltrace``, ``--signaltrace-report`` and a marker.

Registered through the ``pytest11`` entry point, so it loads in every pytest run of
an environment where signaltrace is installed, Django project or not. It therefore
never configures Django or reads its settings at import (importing the package loads
``django.dispatch`` and nothing that needs settings), and does nothing per test
unless a fixture, an option or the marker asks.

Fixtures:

* ``signal_trace``: the :class:`~signaltrace.Trace` of the test, recorded from the
  fixture's setup to the end of the test.
* ``django_assert_signals``: a :class:`~signaltrace.testing.DjangoAssertSignals`
  whose context managers assert on the signals of a block, with details under ``-v``.

Options (also ini keys ``signaltrace = true`` and ``signaltrace_report = PATH``):

* ``--signaltrace``: record every test; fail a test in which the loop guard stopped
  a loop or ``send_robust`` swallowed a receiver's error.
* ``--signaltrace-report=PATH``: record every test and write a JSON summary of each
  (see :mod:`signaltrace.testing.report`); merged on the controller under pytest-xdist.

Marker ``@pytest.mark.signaltrace(max_depth=..., max_dispatches=..., allow_loops=False,
allow_receiver_errors=False, enabled=True)``: record this test and enforce these
limits, with or without ``--signaltrace``; ``enabled=False`` opts a test out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from signaltrace.core import record
from signaltrace.testing import DjangoAssertSignals, SignalAssertions
from signaltrace.testing.assertions import failure_message, limits
from signaltrace.testing.report import summarize, write_report

if TYPE_CHECKING:
    from signaltrace.core import Trace
    from signaltrace.testing.assertions import Expectation

__all__ = ["DjangoAssertSignals", "django_assert_signals", "signal_trace"]

MORE_HINT = "add -v option to show kwargs, locations and timings"
MARKER_ARGUMENTS = frozenset(
    {"max_depth", "max_dispatches", "allow_loops", "allow_receiver_errors", "enabled"}
)


@dataclass(frozen=True)
class _Options:
    enabled: bool
    report_path: str | None


_OPTIONS = pytest.StashKey[_Options]()
_TRACE = pytest.StashKey["Trace"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("signaltrace", "signaltrace: Django signal recording")
    group.addoption(
        "--signaltrace",
        action="store_true",
        dest="signaltrace",
        default=None,
        help="Record the signals of every test; fail tests in which a loop was stopped "
        "or send_robust swallowed a receiver error.",
    )
    group.addoption(
        "--signaltrace-report",
        metavar="PATH",
        dest="signaltrace_report",
        default=None,
        help="Record every test and write a JSON report of their signals to PATH.",
    )
    parser.addini("signaltrace", type="bool", default=False, help="Same as --signaltrace.")
    parser.addini("signaltrace_report", default="", help="Same as --signaltrace-report=PATH.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "signaltrace(max_depth=None, max_dispatches=None, allow_loops=False, allow_receiver_errors=False, "
        "enabled=True): record this test's signals and fail it past these limits.",
    )
    enabled = config.getoption("signaltrace")
    if enabled is None:
        enabled = bool(config.getini("signaltrace"))
    report = config.getoption("signaltrace_report") or config.getini("signaltrace_report") or None
    if report is not None:
        report = str(config.invocation_params.dir / report)
    config.stash[_OPTIONS] = _Options(enabled=bool(enabled), report_path=report)
    if report is not None and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_ReportWriter(report), "signaltrace-report")


def _expectations(item: pytest.Item) -> list[Expectation] | None:
    """What ``item`` is held to: None when the plugin does not record it, [] to only record it.

    Limits are checked before the test runs, so a bad marker fails at once.
    """
    options = item.config.stash[_OPTIONS]
    marker = item.get_closest_marker("signaltrace")
    arguments: dict[str, Any] = {}
    if marker is None:
        if not options.enabled:
            return [] if options.report_path else None
    else:
        unknown = set(marker.kwargs) - MARKER_ARGUMENTS
        if marker.args or unknown:
            names = ", ".join(sorted(unknown)) or "positional arguments"
            pytest.fail(
                f"@pytest.mark.signaltrace takes only keyword arguments among "
                f"{', '.join(sorted(MARKER_ARGUMENTS))}; got {names}",
                pytrace=False,
            )
        arguments = marker.kwargs
        if not arguments.get("enabled", True):
            return None
    problem = None
    try:
        limit_arguments = {name: value for name, value in arguments.items() if name != "enabled"}
        # An error that was not swallowed reached the test already, which decided about it.
        return limits(**limit_arguments, swallowed_errors_only=True)
    except ValueError as error:
        problem = str(error)
    # Outside the except block: no chained ValueError in the report.
    pytest.fail(f"@pytest.mark.signaltrace: {problem}", pytrace=False)


def _verbose(config: pytest.Config) -> bool:
    return (config.getoption("verbose") or 0) > 0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Record the test's call phase when asked to; enforce limits only if the test itself passed.

    The ``record()`` block opens and closes around the test in this same context, and
    asyncio tasks copy the context when they are created, so async tests record too.
    """
    expectations = _expectations(item)
    if expectations is None:
        return (yield)
    reporting = item.config.stash[_OPTIONS].report_path is not None
    with record() as trace:
        try:
            result = yield
        finally:
            if reporting:
                item.stash[_TRACE] = trace
    message = failure_message(trace, expectations, verbose=_verbose(item.config), more_hint=MORE_HINT)
    if message is not None:
        pytest.fail(f"signaltrace: {message}", pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Attach the test's summary to its call report, which xdist sends to the controller as JSON.

    The trace is dropped here: items live until the session ends, traces need not.
    """
    report = yield
    if call.when == "call" and _TRACE in item.stash:
        trace = item.stash[_TRACE]
        del item.stash[_TRACE]
        workerinput = getattr(item.config, "workerinput", None)
        summary = summarize(trace)
        summary["worker"] = workerinput["workerid"] if workerinput else None
        report.signaltrace = summary  # type: ignore[attr-defined]
    return report


class _ReportWriter:
    """Collects summaries from call reports (local or from xdist workers) and writes the report.

    Registered only in the process that owns the session's output: the xdist controller,
    or the single process of a run without xdist.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.summaries: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        summary = getattr(report, "signaltrace", None)
        if isinstance(summary, dict):
            self.summaries.append({"nodeid": report.nodeid, "outcome": report.outcome, **summary})

    def pytest_sessionfinish(self) -> None:
        write_report(self.path, self.summaries)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(
            f"signaltrace: report of {len(self.summaries)} tests written to {self.path}"
        )


@pytest.fixture
def signal_trace() -> Iterator[Trace]:
    """The Trace of this test, from this fixture's setup to the end of the test."""
    with record() as trace:
        yield trace


@pytest.fixture
def django_assert_signals(pytestconfig: pytest.Config) -> DjangoAssertSignals:
    """Context managers asserting on the signals of a block; details under ``-v``.

    Usage::

        def test_signup(django_assert_signals):
            with django_assert_signals.sent("post_save", sender=User, times=1, created=True):
                User.objects.create(username="ada")
    """
    verbose = _verbose(pytestconfig)
    return SignalAssertions(verbose=verbose, more_hint=None if verbose else MORE_HINT)
