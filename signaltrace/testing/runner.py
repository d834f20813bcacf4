"""A Django test runner that records signals: the ``manage.py test`` face of the pytest plugin.

Usage, in settings::

    TEST_RUNNER = "signaltrace.testing.runner.SignalTraceRunner"

then::

    python manage.py test --signaltrace-report=signals.json
    python manage.py test --signaltrace          # fail tests with a stopped loop or a swallowed error
    python manage.py test --signaltrace-hazards=fail  # fail tests with a task or mail before commit ...

Options (``manage.py test --help``), the same as the pytest plugin's:

* ``--signaltrace``: record every test; a test in which the loop guard stopped a loop
  or ``send_robust`` swallowed a receiver's error fails (checked after the test
  method returned, as the plugin checks the call phase).
* ``--signaltrace-hazards=fail|warn|off``: record every test; a test whose method had
  hazards (``Trace.hazards``) fails (``fail``), or its hazards are listed after the
  run (``warn``: printed lines, never a Python warning). Default ``off``.
* ``--signaltrace-report=PATH``: record every part of every test and write the JSON
  report (:mod:`signaltrace.testing.report`, schema in docs/report.md); a few summary
  lines end the output.
* ``--signaltrace-report-detail=summary|full``.

Parts: ``class_setup`` (``setUpClass`` with ``setUpTestData``, recorded around
unittest's class set-up and kept in the class's first test), ``setup`` (Django's
``_pre_setup``, ``setUp``), ``call`` (the test method), ``teardown`` (``tearDown``,
cleanups, ``_post_teardown``) and ``class_teardown`` (kept in the class's last test).
Each is recorded by wrapping that method on the test *instance* (the class is left
alone) and by a test suite whose class set-up and teardown steps are recorded.

Recording needs one process: with a report, ``--parallel`` is set back to 1 (a note
says so). Without any option the runner is Django's ``DiscoverRunner``, unchanged.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import unittest
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.test.runner import DiscoverRunner
from django.test.utils import iter_test_cases

from signaltrace.core import record
from signaltrace.safety import report_internal_error
from signaltrace.testing.assertions import (
    HAZARD_MODES,
    Expectation,
    NoHazards,
    SignalAssertionError,
    failure_message,
    hazard_listing,
    hazards_listed_lines,
    limits,
)
from signaltrace.testing.ignored import IgnoredCounter
from signaltrace.testing.parts import Part, recorded_part
from signaltrace.testing.report import DETAILS, entry_of_test, merge_parts, text_summary, write_report

__all__ = ["SignalTraceRunner"]

#: The hint ending a short failure message of ``--signaltrace``.
MORE_HINT = "run with -v 2 to show kwargs, locations and timings"

#: Methods of a test instance recorded, with the part they belong to (the test method is ``call``).
WRAPPED = (("_pre_setup", "setup"), ("setUp", "setup"), ("tearDown", "teardown"), ("doCleanups", "teardown"))
WRAPPED_LAST = (("_post_teardown", "teardown"),)


class RunRecorder:
    """The parts recorded in one run, by test id and part; outcomes from the result hooks."""

    def __init__(self, *, reporting: bool, enforce: bool, verbose: bool, hazards: str = "off") -> None:
        self.reporting = reporting
        self.enforce = enforce
        self.verbose = verbose
        self.hazards = hazards
        #: ``warn``: the hazard lines of each test that had any, in the order they ran.
        self.listed: list[tuple[str, int, list[str]]] = []
        self.counter = IgnoredCounter() if reporting else None
        self.parts: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.outcomes: dict[str, str] = {}
        self.order: list[str] = []
        self.last_test_id: str | None = None

    def _seen(self, test_id: str) -> dict[str, list[dict[str, Any]]]:
        if test_id not in self.parts:
            self.parts[test_id] = {}
            self.order.append(test_id)
        return self.parts[test_id]

    @contextmanager
    def part(self, test_id: str, phase: str) -> Iterator[Any]:
        """Record a block as (part of) ``phase`` of the test ``test_id``."""
        if not self.reporting:  # --signaltrace alone: the trace is checked, never summarized
            with record() as trace:
                yield Part(trace)
            return
        part = None
        try:
            with recorded_part(self.counter) as part:
                yield part
        finally:
            if part is not None and part.summary is not None:
                self._seen(test_id).setdefault(phase, []).append(part.summary)

    def set_outcome(self, test: Any, outcome: str) -> None:
        test_id = _test_id(test)
        self._seen(test_id)
        previous = self.outcomes.get(test_id)
        if previous is None or previous == "passed":
            self.outcomes[test_id] = outcome
        self.last_test_id = test_id

    def instrument(self, test: unittest.TestCase) -> None:
        """Wrap the recorded methods of one test instance (only those it has)."""
        test_id = _test_id(test)
        if self.reporting:
            for name, phase in WRAPPED + WRAPPED_LAST:
                method = getattr(test, name, None)
                if callable(method):
                    setattr(test, name, self._wrapped(method, test_id, phase))
        name = getattr(test, "_testMethodName", None)
        method = getattr(test, name, None) if name else None
        if callable(method):
            setattr(test, name, self._wrapped(method, test_id, "call"))

    def _wrapped(self, method: Callable[..., Any], test_id: str, phase: str) -> Callable[..., Any]:
        check = (self.enforce or self.hazards != "off") and phase == "call"
        if inspect.iscoroutinefunction(method):

            @functools.wraps(method)
            async def recorded_async(*args: Any, **kwargs: Any) -> Any:
                with self.part(test_id, phase) as part:
                    result = await method(*args, **kwargs)
                if check:
                    self._check(test_id, part.trace)
                return result

            return recorded_async

        @functools.wraps(method)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            with self.part(test_id, phase) as part:
                result = method(*args, **kwargs)
            if check:
                self._check(test_id, part.trace)
            return result

        return recorded

    def _check(self, test_id: str, trace: Any) -> None:
        """Fail the test on a stopped loop or a swallowed receiver error (``--signaltrace``), on a
        hazard (``--signaltrace-hazards=fail``); keep its hazards to list them (``warn``)."""
        expectations: list[Expectation] = limits(swallowed_errors_only=True) if self.enforce else []
        if self.hazards == "fail":
            expectations.append(NoHazards())
        elif self.hazards == "warn":
            count, listed = hazard_listing(trace)
            if listed:
                self.listed.append((test_id, count, listed))
        message = failure_message(trace, expectations, verbose=self.verbose, more_hint=MORE_HINT)
        if message is not None:
            raise SignalAssertionError(f"signaltrace: {message}")

    def entries(self) -> list[dict[str, Any]]:
        """One report entry per test, in the order the tests ran."""
        entries = []
        for test_id in self.order:
            phases = {phase: merge_parts(parts) for phase, parts in self.parts[test_id].items()}
            entries.append(entry_of_test(test_id, self.outcomes.get(test_id, "passed"), None, phases))
        return entries

    def hazard_lines(self) -> list[str]:
        """``warn``: the lines listing each test's hazards after the run (none without any)."""
        if not self.listed:
            return []
        return hazards_listed_lines(self.listed, "signaltrace: hazards in {}")


def _test_id(test: Any) -> str:
    try:
        return str(test.id())
    except Exception:  # noqa: BLE001 - a test that cannot name itself is still counted
        return repr(type(test))


class _OutcomeHooks:
    """Mixed into the result class: tells the run recorder each test's outcome."""

    signaltrace_run: RunRecorder

    def addSuccess(self, test: Any) -> None:
        super().addSuccess(test)  # type: ignore[misc]
        self.signaltrace_run.set_outcome(test, "passed")

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)  # type: ignore[misc]
        self.signaltrace_run.set_outcome(test, "failed")

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)  # type: ignore[misc]
        if isinstance(test, unittest.TestCase):  # not a class or module fixture's error
            self.signaltrace_run.set_outcome(test, "error")

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)  # type: ignore[misc]
        if isinstance(test, unittest.TestCase):
            self.signaltrace_run.set_outcome(test, "skipped")

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)  # type: ignore[misc]
        self.signaltrace_run.set_outcome(test, "xfailed")

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)  # type: ignore[misc]
        self.signaltrace_run.set_outcome(test, "failed")


class _RecordingSuite(unittest.TestSuite):
    """Records unittest's class set-up and teardown steps (``setUpClass``, ``setUpTestData``).

    A test class's set-up is kept in its first test's entry, its teardown in its last one's.
    """

    signaltrace_run: RunRecorder

    def _handleClassSetUp(self, test: Any, result: Any) -> None:
        if test.__class__ == getattr(result, "_previousTestClass", None):
            return super()._handleClassSetUp(test, result)  # type: ignore[misc]
        with self.signaltrace_run.part(_test_id(test), "class_setup"):
            return super()._handleClassSetUp(test, result)  # type: ignore[misc]

    def _tearDownPreviousClass(self, test: Any, result: Any) -> None:
        previous = getattr(result, "_previousTestClass", None)
        last = self.signaltrace_run.last_test_id
        if previous is None or test.__class__ == previous or last is None:
            return super()._tearDownPreviousClass(test, result)  # type: ignore[misc]
        with self.signaltrace_run.part(last, "class_teardown"):
            return super()._tearDownPreviousClass(test, result)  # type: ignore[misc]


class SignalTraceRunner(DiscoverRunner):
    """Django's ``DiscoverRunner`` with ``--signaltrace``, ``--signaltrace-hazards``,
    ``--signaltrace-report`` and its detail."""

    def __init__(
        self,
        *args: Any,
        signaltrace: bool = False,
        signaltrace_hazards: str | None = None,
        signaltrace_report: str | None = None,
        signaltrace_report_detail: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        detail = signaltrace_report_detail or "summary"
        if detail not in DETAILS:
            raise ValueError(f"signaltrace_report_detail must be one of {', '.join(DETAILS)}, not {detail!r}")
        hazards = signaltrace_hazards or "off"
        if hazards not in HAZARD_MODES:
            raise ValueError(f"signaltrace_hazards must be one of {', '.join(HAZARD_MODES)}, not {hazards!r}")
        self.signaltrace_report = signaltrace_report
        self.signaltrace_report_detail = detail
        self.signaltrace_run: RunRecorder | None = None
        if signaltrace or signaltrace_report or hazards != "off":
            self.signaltrace_run = RunRecorder(
                reporting=bool(signaltrace_report),
                enforce=signaltrace,
                verbose=self.verbosity >= 2,
                hazards=hazards,
            )
        if self.signaltrace_run is not None and self.parallel > 1:
            self.log("signaltrace: recording needs one process; running with --parallel=1")
            self.parallel = 1
        if signaltrace_report:
            self.test_suite = type(
                "SignalTraceSuite", (_RecordingSuite,), {"signaltrace_run": self.signaltrace_run}
            )

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--signaltrace",
            action="store_true",
            help="Record the signals of every test; fail tests in which a loop was stopped "
            "or send_robust swallowed a receiver error.",
        )
        parser.add_argument(
            "--signaltrace-hazards",
            choices=HAZARD_MODES,
            help="Record the signals of every test; fail tests whose receivers sent a Celery task or an "
            "e-mail inside a transaction or whose bulk writes skipped save receivers (fail), list them "
            "after the run (warn), or not (off, the default).",
        )
        parser.add_argument(
            "--signaltrace-report",
            metavar="PATH",
            help="Record every part of every test and write a JSON report of their signals to PATH.",
        )
        parser.add_argument(
            "--signaltrace-report-detail",
            choices=DETAILS,
            help="Per-test counts and the top few (summary, the default), or every tally (full).",
        )

    def build_suite(self, *args: Any, **kwargs: Any) -> Any:
        suite = super().build_suite(*args, **kwargs)
        if self.signaltrace_run is not None:
            for test in iter_test_cases(suite):
                self.signaltrace_run.instrument(test)
        return suite

    def get_resultclass(self) -> Any:
        base = super().get_resultclass()
        if self.signaltrace_run is None or not self.signaltrace_run.reporting:
            return base
        return type(
            "SignalTraceResult",
            (_OutcomeHooks, base or unittest.TextTestResult),
            {"signaltrace_run": self.signaltrace_run},
        )

    def run_suite(self, suite: Any, **kwargs: Any) -> Any:
        run = self.signaltrace_run
        if run is None:
            return super().run_suite(suite, **kwargs)
        if run.counter is None:
            try:
                return super().run_suite(suite, **kwargs)
            finally:
                self._list_hazards(run)
        run.counter.install()
        try:
            return super().run_suite(suite, **kwargs)
        finally:
            self._list_hazards(run)
            self._write_report(run)
            run.counter.uninstall()

    def _list_hazards(self, run: RunRecorder) -> None:
        """``--signaltrace-hazards=warn``: print each test's hazards after the run, on standard
        error, whatever the verbosity (asked for, they are the point of the run)."""
        lines = run.hazard_lines()
        if not lines:
            return
        if self.logger is not None:
            for line in lines:
                self.log(line, logging.WARNING)
            return
        sys.stderr.write("".join(f"{line}\n" for line in lines))

    def _write_report(self, run: RunRecorder) -> None:
        path = self.signaltrace_report
        if path is None or run.counter is None:
            return
        try:
            report = write_report(
                path, run.entries(), self.signaltrace_report_detail, run.counter.hidden_receivers()
            )
            for line in text_summary(report, path):
                self.log(line)
        except Exception:  # noqa: BLE001 - the report must never break the run
            report_internal_error("SignalTraceRunner report")
