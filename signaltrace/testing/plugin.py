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

Options (also ini keys ``signaltrace = true``, ``signaltrace_hazards``,
``signaltrace_report = PATH`` and ``signaltrace_report_detail``):

* ``--signaltrace``: record every test; fail a test in which the loop guard stopped
  a loop or ``send_robust`` swallowed a receiver's error.
* ``--signaltrace-hazards=fail|warn|off``: record every test; fail a test (``fail``)
  whose call phase had hazards (``Trace.hazards``: a task or an e-mail sent by a
  receiver inside a transaction, a bulk write that skipped save receivers), or list
  them after the run without failing (``warn``: a terminal section, never a Python
  warning, so ``-W error`` changes nothing). Default ``off``.
* ``--signaltrace-report=PATH``: record every phase of every test (set-up, call,
  teardown) and write the JSON report (:mod:`signaltrace.testing.report`, schema in
  docs/report.md); merged on the controller under pytest-xdist. A few summary lines
  end the terminal output.
* ``--signaltrace-report-detail=summary|full``: per-test counts and the top few
  (default), or every tally of every phase.

Marker ``@pytest.mark.signaltrace(max_depth=..., max_dispatches=..., allow_loops=False,
allow_receiver_errors=False, hazards=None, enabled=True)``: record this test and enforce
these limits, with or without ``--signaltrace``; ``hazards="fail"|"warn"|"off"`` overrides
``--signaltrace-hazards`` for this test; ``enabled=False`` opts a test out of everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from signaltrace.core import record
from signaltrace.safety import report_internal_error
from signaltrace.testing import DjangoAssertSignals, SignalAssertions
from signaltrace.testing.assertions import (
    HAZARD_MODES,
    NoHazards,
    failure_message,
    hazard_listing,
    hazards_listed_lines,
    limits,
)
from signaltrace.testing.ignored import IgnoredCounter
from signaltrace.testing.parts import recorded_part
from signaltrace.testing.report import DETAILS, entry_of_test, text_summary, write_report

if TYPE_CHECKING:
    from signaltrace.core import Trace
    from signaltrace.testing.assertions import Expectation

__all__ = ["DjangoAssertSignals", "django_assert_signals", "signal_trace"]

# Snapshots (``signal_snapshot``, ``--signaltrace-snapshot-update``) and the flame view
# (``--signaltrace-trace``) are plugins of their own, loaded with this one.
pytest_plugins = ["signaltrace.testing.snapshot_plugin", "signaltrace.testing.flame_plugin"]

MORE_HINT = "add -v option to show kwargs, locations and timings"
MARKER_ARGUMENTS = frozenset(
    {"max_depth", "max_dispatches", "allow_loops", "allow_receiver_errors", "hazards", "enabled"}
)


@dataclass(frozen=True)
class _Options:
    enabled: bool
    report_path: str | None
    detail: str
    hazards: str = "off"


@dataclass(frozen=True)
class _Checks:
    """What a recorded test is held to after its call phase."""

    expectations: list[Expectation]
    #: List its hazards after the run (``--signaltrace-hazards=warn``).
    list_hazards: bool = False


_OPTIONS = pytest.StashKey[_Options]()
_COUNTER = pytest.StashKey[IgnoredCounter]()
#: The summaries of the phases of a test recorded so far, by phase.
_PHASES = pytest.StashKey[dict[str, Any]]()
#: The test's outcome as its phase reports say so far.
_OUTCOME = pytest.StashKey[str]()
#: The hazards of a test's call phase under ``warn``, until its call report carries them.
_LISTED = pytest.StashKey[tuple[int, list[str]]]()


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
        "--signaltrace-hazards",
        choices=HAZARD_MODES,
        dest="signaltrace_hazards",
        default=None,
        help="Record the signals of every test; fail tests whose receivers sent a Celery task or an "
        "e-mail inside a transaction or whose bulk writes skipped save receivers (fail), list them "
        "after the run (warn), or not (off, the default).",
    )
    group.addoption(
        "--signaltrace-report",
        metavar="PATH",
        dest="signaltrace_report",
        default=None,
        help="Record every phase of every test and write a JSON report of their signals to PATH.",
    )
    group.addoption(
        "--signaltrace-report-detail",
        choices=DETAILS,
        dest="signaltrace_report_detail",
        default=None,
        help="Per-test counts and the top few (summary, the default), or every tally (full).",
    )
    parser.addini("signaltrace", type="bool", default=False, help="Same as --signaltrace.")
    parser.addini("signaltrace_hazards", default="", help="Same as --signaltrace-hazards.")
    parser.addini("signaltrace_report", default="", help="Same as --signaltrace-report=PATH.")
    parser.addini("signaltrace_report_detail", default="", help="Same as --signaltrace-report-detail.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "signaltrace(max_depth=None, max_dispatches=None, allow_loops=False, allow_receiver_errors=False, "
        "hazards=None, enabled=True): record this test's signals and fail it past these limits "
        "(hazards: fail, warn or off, overriding --signaltrace-hazards).",
    )
    enabled = config.getoption("signaltrace")
    if enabled is None:
        enabled = bool(config.getini("signaltrace"))
    report = config.getoption("signaltrace_report") or config.getini("signaltrace_report") or None
    if report is not None:
        report = str(config.invocation_params.dir / report)
    detail = config.getoption("signaltrace_report_detail") or config.getini("signaltrace_report_detail")
    if detail and detail not in DETAILS:
        raise pytest.UsageError(
            f"signaltrace_report_detail must be one of {', '.join(DETAILS)}, not {detail!r}"
        )
    hazards = config.getoption("signaltrace_hazards") or config.getini("signaltrace_hazards") or "off"
    if hazards not in HAZARD_MODES:
        raise pytest.UsageError(
            f"signaltrace_hazards must be one of {', '.join(HAZARD_MODES)}, not {hazards!r}"
        )
    config.stash[_OPTIONS] = _Options(
        enabled=bool(enabled), report_path=report, detail=detail or "summary", hazards=hazards
    )
    if not hasattr(config, "workerinput"):
        # Always: a marker can ask for the list in a run without the option.
        config.pluginmanager.register(_HazardList(), "signaltrace-hazards")
    if report is not None:
        config.stash[_COUNTER] = IgnoredCounter()
        if not hasattr(config, "workerinput"):
            config.pluginmanager.register(_ReportWriter(report, detail or "summary"), "signaltrace-report")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _COUNTER in config.stash:
        config.stash[_COUNTER].uninstall()


def _checks(item: pytest.Item) -> _Checks | None:
    """What ``item`` is held to: None when the plugin does not record it, no expectation
    to only record it.

    Limits are checked before the test runs, so a bad marker fails at once.
    """
    options = item.config.stash[_OPTIONS]
    marker = item.get_closest_marker("signaltrace")
    arguments: dict[str, Any] = {}
    if marker is not None:
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
    hazards = arguments.get("hazards")
    if hazards is None:
        hazards = options.hazards
    elif hazards not in HAZARD_MODES:
        pytest.fail(
            f"@pytest.mark.signaltrace: hazards must be one of {', '.join(HAZARD_MODES)}, not {hazards!r}",
            pytrace=False,
        )
    # A marker that only sets the hazard mode holds the test to no limits of its own.
    limited = options.enabled or (marker is not None and set(arguments) != {"hazards"})
    if not limited:
        if hazards == "off" and not options.report_path:
            return None
        expectations: list[Expectation] = []
    else:
        problem = None
        try:
            names = ("enabled", "hazards")
            limit_arguments = {name: value for name, value in arguments.items() if name not in names}
            # An error that was not swallowed reached the test already, which decided about it.
            expectations = limits(**limit_arguments, swallowed_errors_only=True)
        except ValueError as error:
            problem = str(error)
        if problem is not None:
            # Outside the except block: no chained ValueError in the report.
            pytest.fail(f"@pytest.mark.signaltrace: {problem}", pytrace=False)
    if hazards == "fail":
        expectations.append(NoHazards())
    return _Checks(expectations, list_hazards=hazards == "warn")


def _verbose(config: pytest.Config) -> bool:
    return (config.getoption("verbose") or 0) > 0


def _reporting(item: pytest.Item) -> bool:
    """Whether the report records this test (not when its marker opts it out)."""
    if item.config.stash[_OPTIONS].report_path is None:
        return False
    marker = item.get_closest_marker("signaltrace")
    return marker is None or bool(marker.kwargs.get("enabled", True))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """Record the set-up (fixtures, including class- and module-scoped ones set up for this test)."""
    return (yield from _phase(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Record the teardown (fixture finalizers)."""
    return (yield from _phase(item, "teardown"))


def _phase(item: pytest.Item, phase: str) -> Iterator[None]:
    if not _reporting(item):
        return (yield)
    counter = item.config.stash[_COUNTER]
    counter.install()  # idempotent; at the first set-up Django is configured
    part = None
    try:
        with recorded_part(counter) as part:
            return (yield)
    finally:
        _keep(item, phase, part)


def _keep(item: pytest.Item, phase: str, part: Any) -> None:
    if part is not None and part.summary is not None:
        item.stash.setdefault(_PHASES, {})[phase] = part.summary


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Record the test's call phase when asked to; enforce limits only if the test itself passed.

    The ``record()`` block opens and closes around the test in this same context, and
    asyncio tasks copy the context when they are created, so async tests record too.
    """
    checks = _checks(item)
    if checks is None:
        return (yield)
    if _reporting(item):
        part = None
        try:
            with recorded_part(item.config.stash[_COUNTER]) as part:
                result = yield
        finally:
            _keep(item, "call", part)
        trace = part.trace
    else:
        with record() as trace:
            result = yield
    if checks.list_hazards:
        count, listed = hazard_listing(trace)
        if listed:  # the call report carries them (pytest_runtest_makereport)
            item.stash[_LISTED] = (count, listed)
    message = failure_message(trace, checks.expectations, verbose=_verbose(item.config), more_hint=MORE_HINT)
    if message is not None:
        pytest.fail(f"signaltrace: {message}", pytrace=False)
    return result


def _outcome(previous: str | None, report: pytest.TestReport) -> str:
    """The test's outcome as pytest's short summary names it, from its phase reports so far."""
    if report.when == "call":
        return report.outcome
    if report.failed:
        return "error" if previous in (None, "passed") else previous
    if report.skipped and report.when == "setup":
        return "skipped"
    return previous or "passed"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Attach the test's entry to its teardown report, which xdist sends to the controller as JSON.

    The phase summaries are dropped from the item here: items live until the session ends.
    """
    report = yield
    if call.when == "call" and _LISTED in item.stash:
        count, listed = item.stash[_LISTED]
        report.signaltrace_hazards = listed  # type: ignore[attr-defined]
        report.signaltrace_hazard_count = count  # type: ignore[attr-defined]
        del item.stash[_LISTED]
    if not _reporting(item):
        return report
    item.stash[_OUTCOME] = _outcome(item.stash.get(_OUTCOME, None), report)
    if call.when == "teardown":
        try:
            workerinput = getattr(item.config, "workerinput", None)
            phases = item.stash.get(_PHASES, {})
            report.signaltrace = entry_of_test(  # type: ignore[attr-defined]
                item.nodeid, item.stash[_OUTCOME], workerinput["workerid"] if workerinput else None, phases
            )
        except Exception:  # noqa: BLE001 - the report must never break the run
            report_internal_error("entry_of_test")
        item.stash[_PHASES] = {}
    return report


class _ReportWriter:
    """Collects test entries from teardown reports (local or from xdist workers) and writes the report.

    Registered only in the process that owns the session's output: the xdist controller,
    or the single process of a run without xdist.
    """

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        self.entries: list[dict[str, Any]] = []
        self.report: dict[str, Any] | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = getattr(report, "signaltrace", None)
        if isinstance(entry, dict):
            self.entries.append(entry)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        counter = session.config.stash[_COUNTER]
        try:
            hidden = counter.hidden_receivers()
        except Exception:  # noqa: BLE001 - Django may not be configured in this process
            hidden = {}
        self.report = write_report(self.path, self.entries, self.detail, hidden)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.report is None:
            return
        for line in text_summary(self.report, self.path):
            terminalreporter.write_line(line)


class _HazardList:
    """Lists after the run the hazards of tests run with ``--signaltrace-hazards=warn``.

    They come with the call reports (from xdist workers too); a terminal section shows
    them, because a Python warning would fail runs that turn warnings into errors.
    """

    def __init__(self) -> None:
        self.tests: list[tuple[str, int, list[str]]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        found = getattr(report, "signaltrace_hazards", None)
        if report.when == "call" and isinstance(found, list) and found:
            count = getattr(report, "signaltrace_hazard_count", None)
            self.tests.append((report.nodeid, count if type(count) is int else len(found), found))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.tests:
            return
        terminalreporter.write_sep("-", "signaltrace hazards")
        for line in hazards_listed_lines(sorted(self.tests, key=lambda test: test[0])):
            terminalreporter.write_line(line)


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
