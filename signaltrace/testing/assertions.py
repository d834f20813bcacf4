"""The assertion engine behind :class:`~signaltrace.testing.SignalAssertions` and the pytest marker.

Every front end builds :class:`Expectation` objects and calls :func:`verify` on a
:class:`~signaltrace.Trace` (or wraps a block with :class:`Expecting`), so matching
rules and failure text live here only.

Matching works on what the core recorded, never on live objects kept by the
assertion: a dispatch's kwargs are the redacted strings of ``Dispatch.kwargs``,
so an expected kwarg value is turned into the same string with the core's own
``snapshot_value`` and ``render_value``. Model instances therefore match by model
label and primary key *as they were when the signal was sent* (``pre_save`` of a
new row saw ``pk=None``); other objects match by type unless ``REPR_OBJECTS`` is on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from unittest import mock

from signaltrace.conf import REDACTED, ignored_signals, sensitive_pattern, setting
from signaltrace.core import (
    BYPASSED_WRITE,
    MAIL_BEFORE_COMMIT,
    TASK_BEFORE_COMMIT,
    is_sensitive,
    receiver_info,
    record,
    render_value,
    sender_name,
    signal_name,
    snapshot_value,
    str_or_repr,
)
from signaltrace.errors import SignalTraceError
from signaltrace.safety import report_internal_error

if TYPE_CHECKING:
    from django.dispatch import Signal

    from signaltrace.core import Dispatch, Hazard, ReceiverCall, Trace

#: Model signals that ``QuerySet.update()``, ``bulk_create()`` and ``bulk_update()`` never send.
SAVE_SIGNAL_NAMES = frozenset({"pre_save", "post_save"})

#: Dispatches listed in a failure message without verbose output.
SHORT_LISTING = 40

#: Every ``Hazard.kind`` the core reports (docs/testing.md).
HAZARD_KINDS = (TASK_BEFORE_COMMIT, MAIL_BEFORE_COMMIT, BYPASSED_WRITE)
#: ``--signaltrace-hazards`` values (plugin and runner): fail the test, list its hazards, or neither.
HAZARD_MODES = ("fail", "warn", "off")


class SignalAssertionError(SignalTraceError, AssertionError):
    """A signal assertion failed. An ``AssertionError``, so every test runner reports a failure."""


def name_matches(full_name: str, given: str) -> bool:
    """A dotted name matches itself, and a name without dots matches its last part."""
    return full_name == given or ("." not in given and full_name.rsplit(".", 1)[-1] == given)


@dataclass(frozen=True)
class SignalMatcher:
    """A signal given as a ``Signal`` object or a name (``post_save``, ``shop.signals.order_paid``)."""

    label: str
    signal: Signal | None = None

    def matches(self, dispatch: Dispatch) -> bool:
        if self.signal is not None:
            return dispatch.signal is self.signal
        return name_matches(dispatch.signal_name, self.label)

    @property
    def is_save_signal(self) -> bool:
        """``pre_save`` or ``post_save``, which bulk writes never send."""
        if self.signal is None:
            return self.label in SAVE_SIGNAL_NAMES
        from django.db.models import signals

        return self.signal is signals.pre_save or self.signal is signals.post_save


def signal_matcher(signal: Signal | str) -> SignalMatcher:
    """Resolve a signal argument; dotted names that import to a ``Signal`` match by identity.

    Raises ``ValueError`` for a signal the settings never record (``IGNORE_SIGNALS``):
    asserting on it could never fail, or never pass.
    """
    from django.dispatch import Signal
    from django.utils.module_loading import import_string

    if isinstance(signal, Signal):
        matcher = SignalMatcher(signal_name(signal), signal)
    elif isinstance(signal, str) and signal:
        resolved = None
        if "." in signal:
            try:
                candidate = import_string(signal)
            except ImportError:
                candidate = None
            resolved = candidate if isinstance(candidate, Signal) else None
        matcher = SignalMatcher(signal_name(resolved) if resolved is not None else signal, resolved)
    else:
        raise TypeError(f"Expected a Signal or a signal name, got {signal!r}")
    for ignored in ignored_signals():
        same_name = matcher.signal is None and name_matches(signal_name(ignored), signal)
        if ignored is matcher.signal or same_name:
            raise ValueError(
                f"{matcher.label} is listed in SIGNALTRACE['IGNORE_SIGNALS'], so it is never recorded "
                "and cannot be asserted on; remove it from that setting first."
            )
    return matcher


@dataclass(frozen=True)
class SenderMatcher:
    """A sender given as a class (or any object) or a name (``auth.User``, ``User``)."""

    label: str
    sender: Any = None
    by_name: bool = False

    def matches(self, dispatch: Dispatch) -> bool:
        live = dispatch.sender
        if not self.by_name:
            if live is not None:
                return live is self.sender
            return dispatch.sender_name == self.label
        if isinstance(live, str) and live == self.label:
            return True
        if self.sender is not None and live is not None:
            return live is self.sender
        return name_matches(dispatch.sender_name, self.label)


def sender_matcher(sender: Any) -> SenderMatcher | None:
    """Resolve a sender argument; ``"app_label.Model"`` resolves to the model class when it exists."""
    if sender is None:
        return None
    if not isinstance(sender, str):
        return SenderMatcher(sender_name(sender), sender)
    model = None
    if sender.count(".") == 1:
        from django.apps import apps

        try:
            model = apps.get_model(sender) if apps.ready else None
        except (LookupError, ValueError):
            model = None
    label = sender_name(model) if model is not None else sender
    return SenderMatcher(label, model, by_name=True)


@dataclass(frozen=True)
class ReceiverMatcher:
    """A receiver given as a function (matched by name and source line) or a dotted name."""

    label: str
    file: str | None = None
    line: int | None = None

    def matches(self, call: ReceiverCall) -> bool:
        if self.file is not None:
            return call.receiver_name == self.label and call.file == self.file and call.line == self.line
        return name_matches(call.receiver_name, self.label)


def receiver_matcher(receiver: Any) -> ReceiverMatcher:
    """Resolve a receiver argument with the same naming the recorder used."""
    if isinstance(receiver, str) and receiver:
        return ReceiverMatcher(receiver)
    if not callable(receiver):
        raise TypeError(f"Expected a receiver function or its dotted name, got {receiver!r}")
    name, file, line = receiver_info(receiver)
    return ReceiverMatcher(name, file, line)


@dataclass(frozen=True)
class KwargsMatcher:
    """A subset of a dispatch's kwargs, each expected value rendered as the recorder renders it.

    ``unittest.mock.ANY`` matches any value of a kwarg that was sent.
    """

    expected: tuple[tuple[str, str | None], ...]  # None: mock.ANY

    def differences(self, dispatch: Dispatch) -> list[str]:
        """What differs, e.g. ``["created=False (expected True)"]``; empty when it matches."""
        found = []
        for name, expected in self.expected:
            if name not in dispatch.kwargs:
                found.append(f"{name} not sent")
            elif expected is not None and dispatch.kwargs[name] != expected:
                found.append(f"{name}={dispatch.kwargs[name]} (expected {expected})")
        return found

    def describe(self) -> list[str]:
        return [f"{name}={'ANY' if value is None else value}" for name, value in self.expected]


def kwargs_matcher(expected: Mapping[str, Any]) -> KwargsMatcher | None:
    """Render expected kwargs; refuses redacted names, whose recorded value is always hidden."""
    if not expected:
        return None
    pattern = sensitive_pattern()
    repr_objects = bool(setting("REPR_OBJECTS"))
    rendered: list[tuple[str, str | None]] = []
    for name, value in expected.items():
        if value is mock.ANY:
            rendered.append((name, None))
            continue
        if is_sensitive(name, pattern):
            raise ValueError(
                f"The kwarg {name!r} is redacted in traces (it is recorded as {REDACTED!r}), so its "
                "value cannot be matched; use unittest.mock.ANY to check that it was sent."
            )
        rendered.append((name, render_value(snapshot_value(value, repr_objects))))
    return KwargsMatcher(tuple(rendered))


@dataclass(frozen=True)
class DispatchFilter:
    """Which dispatches an expectation is about: a signal, optionally a sender and kwargs."""

    signal: SignalMatcher
    sender: SenderMatcher | None = None
    kwargs: KwargsMatcher | None = None

    def matches(self, dispatch: Dispatch) -> bool:
        return self.near(dispatch) and (self.kwargs is None or not self.kwargs.differences(dispatch))

    def near(self, dispatch: Dispatch) -> bool:
        """Same signal and sender, whatever the kwargs."""
        return self.signal.matches(dispatch) and (self.sender is None or self.sender.matches(dispatch))

    def describe(self) -> str:
        parts = [f"sender={self.sender.label}"] if self.sender is not None else []
        parts += self.kwargs.describe() if self.kwargs is not None else []
        return f"{self.signal.label}({', '.join(parts)})" if parts else self.signal.label


def dispatch_filter(
    signal: Signal | str, sender: Any = None, kwargs: Mapping[str, Any] | None = None
) -> DispatchFilter:
    return DispatchFilter(signal_matcher(signal), sender_matcher(sender), kwargs_matcher(kwargs or {}))


def receiver_scope(signal: Signal | str | None, sender: Any = None) -> DispatchFilter | None:
    """The dispatches a receiver assertion counts calls in: all of them (None), or one signal's
    (from one sender); a sender alone is refused with ``TypeError``."""
    if signal is None:
        if sender is not None:
            raise TypeError("sender= needs signal= as well")
        return None
    return dispatch_filter(signal, sender)


def times_text(times: int | None) -> str:
    return "at least once" if times is None else count_text(times)


def count_text(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def count_failure(
    subject: str, verb: str, count: int, times: int | None, negate: bool, scope: str = ""
) -> list[str] | None:
    """``Expected <subject> to be <verb><scope> <times>, but it was <verb> <count>.``, or
    None when ``count`` is as expected (``times`` None: at least once; ``negate``: never)."""
    if negate:
        if not count:
            return None
        return [f"Expected {subject} not to be {verb}{scope}, but it was {verb} {count_text(count)}."]
    if (count >= 1) if times is None else (count == times):
        return None
    return [
        f"Expected {subject} to be {verb}{scope} {times_text(times)}, but it was {verb} {count_text(count)}."
    ]


class Expectation:
    """One thing a trace must satisfy.

    ``failure`` returns the explanation's first lines, or None when satisfied;
    ``annotate`` marks a dispatch in the listing; ``hints`` adds advice after it.
    """

    def failure(self, trace: Trace) -> list[str] | None:
        raise NotImplementedError

    def annotate(self, dispatch: Dispatch) -> str | None:
        return None

    def hints(self, trace: Trace) -> list[str]:
        return []


@dataclass
class SignalSent(Expectation):
    """A signal sent ``times`` times (None: at least once), or never when ``negate``."""

    filter: DispatchFilter
    times: int | None = None
    negate: bool = False

    def __post_init__(self) -> None:
        _check_times(self.times)

    def count(self, trace: Trace) -> int:
        return sum(1 for dispatch in trace.dispatches if self.filter.matches(dispatch))

    def failure(self, trace: Trace) -> list[str] | None:
        return count_failure(self.filter.describe(), "sent", self.count(trace), self.times, self.negate)

    def annotate(self, dispatch: Dispatch) -> str | None:
        if not self.filter.near(dispatch):
            return None
        if self.filter.kwargs is not None:
            differences = self.filter.kwargs.differences(dispatch)
            if differences:
                return "kwargs differ: " + ", ".join(differences)
        return "matches"

    def hints(self, trace: Trace) -> list[str]:
        expected = 1 if self.times is None else self.times
        near = sum(1 for dispatch in trace.dispatches if self.filter.near(dispatch))
        if self.negate or not self.filter.signal.is_save_signal or near >= expected:
            return []
        return [
            "Hint: QuerySet.update(), bulk_create() and bulk_update() write rows without sending "
            "pre_save or post_save; save each instance, or assert on what the code really sends."
        ]


@dataclass
class ReceiverCalled(Expectation):
    """A receiver called ``times`` times (None: at least once), or never when ``negate``."""

    receiver: ReceiverMatcher
    filter: DispatchFilter | None = None
    times: int | None = None
    negate: bool = False

    def __post_init__(self) -> None:
        _check_times(self.times)

    def _in_scope(self, dispatch: Dispatch) -> bool:
        return self.filter is None or self.filter.matches(dispatch)

    def count(self, trace: Trace) -> int:
        return sum(
            1
            for dispatch in trace.dispatches
            if self._in_scope(dispatch)
            for call in dispatch.calls
            if self.receiver.matches(call)
        )

    def failure(self, trace: Trace) -> list[str] | None:
        scope = f" by {self.filter.describe()}" if self.filter is not None else ""
        subject = f"receiver {self.receiver.label}"
        return count_failure(subject, "called", self.count(trace), self.times, self.negate, scope)

    def annotate(self, dispatch: Dispatch) -> str | None:
        if self._in_scope(dispatch) and any(self.receiver.matches(call) for call in dispatch.calls):
            return "calls it"
        return None

    def hints(self, trace: Trace) -> list[str]:
        if self.negate or self.count(trace):
            return []
        if any(self._in_scope(d) and not d.calls for d in trace.dispatches):
            return [
                "Hint: a matching signal was sent with no receivers connected. Is the receiver's module "
                "imported (usually in AppConfig.ready()), connected for this sender, and not muted "
                "(factory_boy.mute_signals)?"
            ]
        return []


@dataclass
class MaxDepth(Expectation):
    """No dispatch nested deeper than ``depth`` (0: no signal sent from inside a receiver)."""

    depth: int

    def __post_init__(self) -> None:
        _check_times(self.depth)

    def failure(self, trace: Trace) -> list[str] | None:
        deeper = [dispatch for dispatch in trace.dispatches if dispatch.depth > self.depth]
        if not deeper:
            return None
        deepest = max(deeper, key=lambda dispatch: dispatch.depth)
        return [
            f"Expected signal dispatches at most {self.depth} deep, but {len(deeper)} went deeper; "
            f"{_dispatch_label(deepest)} reached depth {deepest.depth}."
        ]

    def annotate(self, dispatch: Dispatch) -> str | None:
        return f"deeper than {self.depth}" if dispatch.depth > self.depth else None


@dataclass
class MaxDispatches(Expectation):
    """At most ``count`` dispatches in the block, nested ones included."""

    count: int

    def __post_init__(self) -> None:
        _check_times(self.count)

    def failure(self, trace: Trace) -> list[str] | None:
        sent = len(trace.dispatches) + trace.dropped
        if sent <= self.count:
            return None
        return [f"Expected at most {self.count} signal dispatches, but {sent} were sent."]


@dataclass
class NoLoops(Expectation):
    """No loop stopped by the loop guard (raised, warned, or raised and swallowed by ``send_robust``)."""

    def failure(self, trace: Trace) -> list[str] | None:
        loops = trace.loops
        if not loops:
            return None
        lines = [f"Expected no signal loops, but {_plural(len(loops), 'loop was', 'loops were')} stopped:"]
        for loop in loops:
            what = loop.action + (", swallowed by send_robust" if loop.swallowed else "")
            lines.append(f"  {loop.message} [{what}]")
        return lines

    def annotate(self, dispatch: Dispatch) -> str | None:
        return "loop stopped here" if dispatch.loop is not None else None


@dataclass
class NoReceiverErrors(Expectation):
    """No receiver raised; with ``swallowed_only``, none whose error ``send_robust`` swallowed."""

    swallowed_only: bool = False

    def _failed(self, trace: Trace) -> list[ReceiverCall]:
        return [
            call
            for dispatch in trace.dispatches
            for call in dispatch.calls
            if call.exception is not None and (call.swallowed or not self.swallowed_only)
        ]

    def failure(self, trace: Trace) -> list[str] | None:
        failed = self._failed(trace)
        if not failed:
            return None
        which = "receiver errors swallowed by send_robust" if self.swallowed_only else "receiver errors"
        lines = [f"Expected no {which}, but {_plural(len(failed), 'receiver', 'receivers')} raised:"]
        for call in failed:
            where = f" ({call.location})" if call.location else ""
            swallowed = " [swallowed by send_robust]" if call.swallowed else ""
            dispatch = f" in {_dispatch_label(call.dispatch)}" if call.dispatch is not None else ""
            lines.append(f"  {call.receiver_name}{where} raised {_exception_text(call)}{dispatch}{swallowed}")
        return lines


def hazard_kinds(kinds: str | Iterable[str] | None) -> frozenset[str] | None:
    """The hazard kinds an argument names (None: every kind); ``ValueError`` for an unknown one."""
    if kinds is None:
        return None
    chosen = frozenset((kinds,) if isinstance(kinds, str) else kinds)
    unknown = sorted(kind for kind in chosen if kind not in HAZARD_KINDS)
    if unknown or not chosen:
        given = ", ".join(map(repr, unknown)) or "none"
        raise ValueError(f"Expected hazard kinds among {', '.join(HAZARD_KINDS)}; got {given}")
    return chosen


def hazard_line(hazard: Hazard) -> str:
    """One hazard as failures and the terminal list it: ``kind at place: message``."""
    place = f" at {hazard.place}" if hazard.place else ""
    return f"{hazard.kind}{place}: {hazard.message}"


#: At most this many lines list one test's hazards (one line per kind and place).
MAX_HAZARD_LINES = 40
#: At most this many tests are listed after a run under ``--signaltrace-hazards=warn``.
MAX_LISTED_TESTS = 100


def grouped_hazard_lines(hazards: list[Hazard], limit: int = MAX_HAZARD_LINES) -> list[str]:
    """One line per kind and place (the first hazard's message, with how many more were
    alike), at most ``limit`` lines and one saying what was left out."""
    groups: dict[tuple[str, str], list[Hazard]] = {}
    for hazard in hazards:
        groups.setdefault((hazard.kind, hazard.place), []).append(hazard)
    lines = []
    for alike in groups.values():
        more = len(alike) - 1
        lines.append(hazard_line(alike[0]) + (f" (and {_plural(more, 'more', 'more')} here)" if more else ""))
    if len(lines) > limit:
        left = len(lines) - limit
        lines = [*lines[:limit], f"... and {_plural(left, 'more place', 'more places')} with hazards"]
    return lines


def hazard_listing(trace: Trace) -> tuple[int, list[str]]:
    """``--signaltrace-hazards=warn``: how many hazards the trace has, and their grouped lines;
    a failure to read them is logged and gives none, since a listing must never break the test."""
    try:
        hazards = trace.hazards
        return len(hazards), grouped_hazard_lines(hazards)
    except Exception:  # noqa: BLE001
        report_internal_error("hazard list")
        return 0, []


def hazards_listed_lines(tests: list[tuple[str, int, list[str]]], title: str = "{}") -> list[str]:
    """What ``--signaltrace-hazards=warn`` prints after a run: each test (at most
    :data:`MAX_LISTED_TESTS`, named by ``title``) with its lines, then a count."""
    lines = []
    for test_id, _count, found in tests[:MAX_LISTED_TESTS]:
        lines.append(title.format(test_id))
        lines.extend(f"  {line}" for line in found)
    if len(tests) > MAX_LISTED_TESTS:
        left = len(tests) - MAX_LISTED_TESTS
        lines.append(f"... and {_plural(left, 'more test', 'more tests')} with hazards")
    count = sum(count for _test_id, count, _found in tests)
    lines.append(
        f"signaltrace: {_plural(count, 'hazard', 'hazards')} in {_plural(len(tests), 'test', 'tests')} "
        "(--signaltrace-hazards=fail fails them)"
    )
    return lines


@dataclass
class NoHazards(Expectation):
    """No hazard the core found (``Trace.hazards``): a Celery task or an e-mail sent by a receiver
    inside a transaction, or a bulk write that skipped save receivers; only ``kinds`` if given."""

    kinds: frozenset[str] | None = None
    #: The dispatches whose receivers caused a hazard (by start and depth: a trace read
    #: again may build new objects), with its kinds; set by ``failure``.
    _marked: dict[tuple[int, int], list[str]] = field(default_factory=dict, init=False, repr=False)

    def found(self, trace: Trace) -> list[Hazard]:
        return [hazard for hazard in trace.hazards if self.kinds is None or hazard.kind in self.kinds]

    def failure(self, trace: Trace) -> list[str] | None:
        hazards = self.found(trace)
        self._marked = {}
        for hazard in hazards:
            call = getattr(hazard.finding, "receiver", None)
            dispatch = getattr(call, "dispatch", None)
            if dispatch is not None:
                self._marked.setdefault(_dispatch_key(dispatch), []).append(hazard.kind)
        if not hazards:
            return None
        which = "" if self.kinds is None else f" ({', '.join(sorted(self.kinds))})"
        lines = [
            f"Expected no signal hazards{which}, but "
            f"{_plural(len(hazards), 'hazard was', 'hazards were')} found:"
        ]
        lines.extend(f"  {line}" for line in grouped_hazard_lines(hazards))
        return lines

    def annotate(self, dispatch: Dispatch) -> str | None:
        kinds = self._marked.get(_dispatch_key(dispatch))
        return f"hazard: {', '.join(dict.fromkeys(kinds))}" if kinds else None


def _dispatch_key(dispatch: Dispatch) -> tuple[int, int]:
    return dispatch.start_ns, dispatch.depth


def limits(
    *,
    max_depth: int | None = None,
    max_dispatches: int | None = None,
    allow_loops: bool = False,
    allow_receiver_errors: bool = False,
    swallowed_errors_only: bool = False,
) -> list[Expectation]:
    """The expectations of the limit arguments that ``django_assert_signals()`` and the
    ``signaltrace`` marker share (``ValueError`` for a bad limit)."""
    expectations: list[Expectation] = []
    if not allow_loops:
        expectations.append(NoLoops())
    if not allow_receiver_errors:
        expectations.append(NoReceiverErrors(swallowed_only=swallowed_errors_only))
    if max_depth is not None:
        expectations.append(MaxDepth(max_depth))
    if max_dispatches is not None:
        expectations.append(MaxDispatches(max_dispatches))
    return expectations


def _check_times(value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ValueError(f"Expected a count >= 0, got {value!r}")


def _plural(count: int, one: str, many: str) -> str:
    return f"1 {one}" if count == 1 else f"{count} {many}"


def _exception_text(call: ReceiverCall) -> str:
    exception = call.exception
    if exception is None:
        return ""
    message = str_or_repr(exception)
    return f"{type(exception).__name__}: {message}" if message else type(exception).__name__


def _dispatch_label(dispatch: Dispatch) -> str:
    return f"{dispatch.signal_name}(sender={dispatch.sender_name})"


def _call_label(call: ReceiverCall) -> str:
    if call.exception is None:
        return call.receiver_name
    swallowed = ", swallowed" if call.swallowed else ""
    return f"{call.receiver_name} [raised {type(call.exception).__name__}{swallowed}]"


def _dispatch_lines(dispatch: Dispatch, verbose: bool, notes: list[str]) -> list[str]:
    indent = "  " * (dispatch.depth + 1)
    method = "" if dispatch.method == "send" else f" via {dispatch.method}"
    receivers = ", ".join(_call_label(call) for call in dispatch.calls) or "none"
    line = f"{indent}{_dispatch_label(dispatch)}{method} depth={dispatch.depth} receivers: {receivers}"
    if notes:
        line += "  <- " + "; ".join(notes)
    lines = [line]
    if verbose:
        detail = indent + "    "
        kwargs = ", ".join(f"{name}={value}" for name, value in dispatch.kwargs.items())
        lines.append(f"{detail}kwargs: {kwargs or '(none)'}")
        for call in dispatch.calls:
            where = f" at {call.location}" if call.location else ""
            lines.append(f"{detail}{call.receiver_name}{where} took {call.duration_ns / 1e6:.3f} ms")
            if call.exception is not None:
                lines.append(f"{detail}  raised {_exception_text(call)}")
    return lines


def explain(
    trace: Trace,
    failures: list[list[str]],
    expectations: Iterable[Expectation],
    *,
    verbose: bool = False,
    more_hint: str | None = None,
) -> str:
    """The failure text: what was expected, every dispatch recorded, then hints."""
    expectations = list(expectations)
    lines = [line for failure in failures for line in failure]
    dispatches = trace.dispatches
    if not dispatches:
        lines.append("No signals were dispatched.")
    else:
        shown = dispatches if verbose else dispatches[:SHORT_LISTING]
        lines.append(f"Dispatched signals ({len(dispatches)}):")
        for dispatch in shown:
            notes = [note for e in expectations if (note := e.annotate(dispatch)) is not None]
            lines.extend(_dispatch_lines(dispatch, verbose, notes))
        if len(shown) < len(dispatches):
            lines.append(f"  ... and {len(dispatches) - len(shown)} more")
    if trace.dropped:
        lines.append(
            f"Note: {trace.dropped} more dispatches were not recorded (SIGNALTRACE['MAX_DISPATCHES']); "
            "counts may be too low."
        )
    for expectation in expectations:
        for hint in expectation.hints(trace):
            if hint not in lines:
                lines.append(hint)
    if dispatches and more_hint and not verbose:
        lines.append(f"({more_hint})")
    return "\n".join(lines)


def failure_message(
    trace: Trace, expectations: Iterable[Expectation], *, verbose: bool = False, more_hint: str | None = None
) -> str | None:
    """The failure text when any expectation fails on ``trace``, else None."""
    expectations = list(expectations)
    failures = [failure for e in expectations if (failure := e.failure(trace)) is not None]
    if not failures:
        return None
    return explain(trace, failures, expectations, verbose=verbose, more_hint=more_hint)


def verify(
    trace: Trace, expectations: Iterable[Expectation], *, verbose: bool = False, more_hint: str | None = None
) -> None:
    """Raise :class:`SignalAssertionError` when any expectation fails on ``trace``."""
    __tracebackhide__ = True
    message = failure_message(trace, expectations, verbose=verbose, more_hint=more_hint)
    if message is not None:
        raise SignalAssertionError(message)


class Expecting(AbstractContextManager["Trace"]):
    """Record the block, then verify; the shared core of every context manager.

    Nothing is verified when the block raises: its own exception says more. A class,
    not a generator, so pytest's traceback ends at the test's ``with`` line.
    """

    def __init__(
        self, *expectations: Expectation, verbose: bool = False, more_hint: str | None = None
    ) -> None:
        self.expectations = expectations
        self.verbose = verbose
        self.more_hint = more_hint
        self._recording: AbstractContextManager[Trace] | None = None

    def __enter__(self) -> Trace:
        self._recording = record()
        self.trace = self._recording.__enter__()
        return self.trace

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        __tracebackhide__ = True
        if self._recording is None:
            raise RuntimeError("__exit__ without __enter__")
        self._recording.__exit__(exc_type, exc, tb)
        if exc_type is None:
            verify(self.trace, self.expectations, verbose=self.verbose, more_hint=self.more_hint)
