"""Turns signaltrace's live dispatches into OpenTelemetry spans.

:class:`SpanObserver` is a :class:`signaltrace.DispatchObserver`: the core tells it
when a dispatch (with live receivers, of a signal not ignored) and each of its
receiver calls start and finish, and it opens and closes one span for each. The
open span is the observer's state for that dispatch or call (what
``dispatch_started``/``call_started`` return), so nesting comes from the core's
own records (``dispatch.parent.state``), not from a second mechanism. What the core
finds beside dispatches (``found``) becomes span events: see :mod:`signaltrace.otel.events`.

This runs for every dispatch of a traced application, so it computes what is the
same for every dispatch of a signal, or every call of a receiver, once: span
names, names of signals and senders, the dispatch and receiver attributes, and
the production defaults' decision (``OTEL_ALL_DISPATCHES`` off): whether a
dispatch of one of Django's signals reaches a receiver outside Django is kept
per state of the signal's receivers, as the senders such receivers listen to.
"""

from __future__ import annotations

import asyncio
import linecache
import os
import sys
import traceback
import weakref
from time import perf_counter_ns, time_ns
from typing import Any

from django.core.signals import request_finished, request_started
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from signaltrace.core import (
    DispatchObserver,
    LiveCall,
    LiveDispatch,
    known_signal_name,
    make_id,
    receiver_info,
    receivers_and_uids,
    sender_type_name,
    signal_name,
    str_or_repr,
)
from signaltrace.errors import SignalLoopError
from signaltrace.otel.events import add_finding_event, error_type
from signaltrace.otel.selection import current_selection

# The observer's state while a span is open. A dispatch's: a list [span, context its
# receiver spans start in, the signal's _ReceiverSpans, the exception a receiver let
# out of the dispatch or None, clock offset, the exception being handled where the
# dispatch started (sys.exception(), usually None)]. A receiver call's: (span, token
# of the context attached while it runs or None when async, clock offset, is_async).
#
# Clock offset: spans take their start and end times from the records' own
# timestamps (``perf_counter_ns``) plus the offset between that clock and the wall
# clock. Span durations then equal the records' (the panel and the spans agree),
# and no clock is read for a span. The offset is read again when a dispatch starts
# more than ``CLOCK_OFFSET_MAX_AGE_NS`` after the last reading: on Linux both
# clocks are slewed alike by NTP, so it only changes when the wall clock is set
# (stepped); spans then follow the new time within a second.
(
    _D_ENTRY_SPAN,
    _D_ENTRY_CONTEXT,
    _D_ENTRY_RECEIVERS,
    _D_ENTRY_ERROR,
    _D_ENTRY_OFFSET,
    _D_ENTRY_HANDLED,
) = range(6)

LOOP_ERROR_TYPE = "signaltrace.errors.SignalLoopError"
_INTERNAL = SpanKind.INTERNAL
_MAX_CACHED = 4096
CLOCK_OFFSET_MAX_AGE_NS = 1_000_000_000


def read_clock_offset() -> tuple[int, int]:
    """(when, in ``perf_counter_ns`` time; wall clock minus ``perf_counter_ns``)."""
    now = perf_counter_ns()
    return now, time_ns() - now


#: The exception being handled in this thread or task now (None: none), as Python 3.11's
#: ``sys.exception()``.
_handled_exception = getattr(sys, "exception", None) or (lambda: sys.exc_info()[1])

_DJANGO_PREFIX = "django."


def is_djangos(dotted_name: str) -> bool:
    """Whether a receiver's ``module.qualname`` is Django's own code (``django.*``)."""
    return dotted_name.startswith(_DJANGO_PREFIX)


def is_django_signal_name(name: str) -> bool:
    """Whether a signal's name is one of Django's (spans name those ``post_save``, without a dot)."""
    return "." not in name and " " not in name


def _mark_error(span: Span, exception: BaseException) -> None:
    """Status ERROR and ``error.type``; never raises, even if the exception's ``str`` does."""
    span.set_status(Status(StatusCode.ERROR, f"{type(exception).__name__}: {str_or_repr(exception)}"))
    span.set_attribute("error.type", error_type(exception))


def _mark_loop(span: Span, loop: Any) -> None:
    """The one exception event of a loop, on the dispatch span it was stopped at: the
    cycle (in the message) and the stack where it was stopped. The spans the
    ``SignalLoopError`` then leaves get status ERROR only."""
    span.add_event(
        "exception",
        {
            "exception.type": LOOP_ERROR_TYPE,
            "exception.message": loop.message,
            "exception.stacktrace": _stack_here(loop.message),
            "signaltrace.loop.action": loop.action,
        },
    )
    span.set_status(Status(StatusCode.ERROR, loop.message))
    span.set_attribute("error.type", LOOP_ERROR_TYPE)


_SIGNALTRACE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _stack_here(message: str) -> str:
    """The stack of the code that sent the stopped dispatch, formatted as Python prints a
    traceback; signaltrace's own frames at its top (the loop guard, this observer) left out."""
    frames = traceback.extract_stack()
    while frames and frames[-1].filename.startswith(_SIGNALTRACE_DIR):
        frames.pop()
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    lines.append(f"{LOOP_ERROR_TYPE}: {message}\n")
    return "".join(lines)


class _ReceiverSpans:
    """The names and attributes of one signal's receiver spans, for one state of its receivers.

    Made again, and swapped in whole so that threads never mix two states, when
    ``signal.receivers`` differs from ``entries``: a list comparison that checks
    identity first, about one pointer test per receiver. ``entries`` is the copy
    the dispatch_uid map was built from (:func:`receivers_and_uids`).

    ``app_senders`` decides, for a signal of Django's, which dispatches reach a
    receiver outside Django (see :meth:`reaches_app`): None when every dispatch
    does (one such receiver listens to every sender, or the signal is not
    Django's), else the Django sender keys (``id(sender)``) that such receivers
    are connected for; empty when only Django's own receivers listen.
    """

    __slots__ = ("app_senders", "entries", "fields", "uids")

    def __init__(
        self,
        entries: list[Any] | None,
        uids: dict[int, Any] | None = None,
        app_senders: frozenset[Any] | None = None,
    ) -> None:
        self.entries = entries
        self.uids = uids or {}
        self.app_senders = app_senders
        #: id(receiver function) -> (info, is_async, span name, attributes).
        self.fields: dict[int, tuple[Any, bool, str, dict[str, Any]]] = {}

    @classmethod
    def of(cls, signal: Any, djangos_signal: bool) -> _ReceiverSpans:
        """The state of ``signal``'s receivers now."""
        entries, uids = receivers_and_uids(signal)
        return cls(entries, uids, _app_senders(entries) if djangos_signal else None)

    def reaches_app(self, sender: Any) -> bool:
        """Whether a dispatch from ``sender`` reaches a receiver outside Django.

        A set lookup, and only for a signal whose app receivers listen to some
        senders only (``@receiver(post_save, sender=User)``).
        """
        app_senders = self.app_senders
        if app_senders is None:
            return True
        return bool(app_senders) and make_id(sender) in app_senders

    def fields_for(
        self, function_id: int, info: tuple[str, str, int], is_async: bool
    ) -> tuple[Any, bool, str, dict[str, Any]]:
        """The span name and attributes of a receiver (cached).

        The entry holds ``info``, the tuple the core caches per function: a function
        made later at the same id gets another tuple, so cannot match. The SDK copies
        attributes into the span and samplers only read them, so one dict serves
        every span. (A plain dict: the SDK cleans a read-only proxy of one 10% slower.)
        """
        receiver_name, file, line = info
        attributes: dict[str, Any] = {
            "code.function.name": receiver_name,
            "signaltrace.receiver.is_async": is_async,
        }
        if file:
            # Absolute, as OpenTelemetry prefers, under every server: a module imported
            # through a relative sys.path entry (uvicorn's ".") has a relative file name.
            attributes["code.file.path"] = os.path.abspath(file)
            attributes["code.line.number"] = def_line(file, line)
        dispatch_uid = self.uids.get(function_id)
        if dispatch_uid is not None:
            attributes["signaltrace.dispatch_uid"] = str(dispatch_uid)
        if len(self.fields) >= _MAX_CACHED:
            self.fields.clear()
        fields = self.fields[function_id] = (info, is_async, f"receiver {receiver_name}", attributes)
        return fields


_ANY_SENDER = make_id(None)


def _app_senders(entries: list[Any]) -> frozenset[Any] | None:
    """:attr:`_ReceiverSpans.app_senders` for these receiver entries of one of Django's signals.

    Django keys each entry ``((receiver key, sender key), receiver or weak reference, ...)``
    and calls the receivers whose sender key is ``id(None)`` or the sender's. A
    receiver's home is the module of its ``module.qualname``, from the core's names.
    """
    senders: set[Any] = set()
    for entry in entries:
        ref = entry[1]
        target = ref() if isinstance(ref, weakref.ReferenceType) else ref
        if target is None:
            continue
        try:
            name = receiver_info(target)[0]
        except Exception:  # noqa: BLE001 - a receiver that cannot be named is the app's
            name = "?"
        if is_djangos(name):
            continue
        sender_key = entry[0][1]
        if sender_key == _ANY_SENDER:
            return None
        senders.add(sender_key)
    return frozenset(senders)


# (file, first line of the code) -> line of its ``def``.
_def_lines: dict[tuple[str, int], int] = {}
_DEF_PREFIXES = ("def ", "async def ")
_MAX_DECORATOR_LINES = 50


def def_line(file: str, first_line: int) -> int:
    """The line of the ``def`` of a function whose code starts at ``first_line``.

    A code object's ``co_firstlineno`` is its first decorator's line (``@receiver(...)``);
    ``code.line.number`` points at the ``def``. Found by reading the source from that
    line past the decorators (``linecache``), once per function; ``first_line`` itself
    when it is not a decorator or the source cannot be read.
    """
    key = (file, first_line)
    found = _def_lines.get(key)
    if found is not None:
        return found
    found = first_line
    try:
        if linecache.getline(file, first_line).lstrip().startswith("@"):
            for number in range(first_line + 1, first_line + _MAX_DECORATOR_LINES):
                text = linecache.getline(file, number)
                if not text:
                    break
                if text.lstrip().startswith(_DEF_PREFIXES):
                    found = number
                    break
    except Exception:  # noqa: BLE001 - an unreadable source keeps co_firstlineno
        found = first_line
    if len(_def_lines) >= _MAX_CACHED:
        _def_lines.clear()
    _def_lines[key] = found
    return found


#: A dispatch span's cache key: sender name, method, depth, receiver count, and the
#: transaction's (alias, in an atomic block, block depth, durable), or None without one.
_DispatchKey = tuple[str, str, int, int, tuple[str, bool, int, bool] | None]


class _SignalFacts:
    """What every traced dispatch of one signal shares: its name, its span names and attributes,
    and what the production defaults decide for it."""

    __slots__ = ("dispatch_fields", "djangos", "name", "receivers", "ref", "root_hidden", "span_names")

    def __init__(self, signal: Any) -> None:
        self.name = signal_name(signal)
        #: One of Django's own signals: its dispatches that reach only Django's receivers get no spans.
        self.djangos = is_django_signal_name(self.name)
        #: Fired by Django's handlers outside the request span: no root trace of its own.
        self.root_hidden = signal is request_started or signal is request_finished
        self.span_names = {method: f"{method} {self.name}" for method in _METHODS}
        self.ref: Any = None
        #: (sender name, method, depth, receiver count, transaction) -> (span name,
        #: attributes): the values a dispatch span's name and attributes are made of,
        #: so one lookup gives both. Senders are mostly a few model classes, depths and
        #: receiver counts a few small numbers, transactions a few aliases and depths.
        self.dispatch_fields: dict[_DispatchKey, tuple[str, dict[str, Any]]] = {}
        #: The names and attributes of its receiver spans, for the receivers it has now.
        self.receivers = _ReceiverSpans(None)

    def fields_for(self, key: _DispatchKey) -> tuple[str, dict[str, Any]]:
        """The span name and attributes of a dispatch with this key (cached)."""
        sender, method, depth, receiver_count, transaction = key
        attributes: dict[str, Any] = {
            "signaltrace.signal": self.name,
            "signaltrace.sender": sender,
            "signaltrace.method": method,
            "signaltrace.depth": depth,
            "signaltrace.receiver_count": receiver_count,
        }
        if transaction is not None:
            alias, in_atomic, transaction_depth, durable = transaction
            attributes["signaltrace.transaction.alias"] = alias
            attributes["signaltrace.transaction.in_atomic"] = in_atomic
            if in_atomic:
                attributes["signaltrace.transaction.depth"] = transaction_depth
                attributes["signaltrace.transaction.durable"] = durable
        if len(self.dispatch_fields) >= _MAX_CACHED:
            self.dispatch_fields.clear()
        name = self.span_names.get(method) or f"{method} {self.name}"
        fields = self.dispatch_fields[key] = (name, attributes)
        return fields


_METHODS = ("send", "send_robust", "asend", "asend_robust")

# id(signal) -> its facts. An entry is dropped by a weak reference's callback when
# its signal dies, so an id found here is always the signal it was made for (ids
# are reused only after death). A signal not held by any module attribute is named
# by its id and not cached: it may be named later.
_signal_facts: dict[int, _SignalFacts] = {}

# id(sender class) -> (weak reference, name): senders are mostly model classes.
# Entries are dropped when their class dies, as above.
_sender_names: dict[int, tuple[Any, str]] = {}


def _facts_of(signal: Any) -> _SignalFacts:
    facts = _SignalFacts(signal)
    if known_signal_name(signal) == facts.name:
        key = id(signal)
        facts.ref = weakref.ref(signal, lambda _ref, key=key: _signal_facts.pop(key, None))
        _signal_facts[key] = facts
    return facts


def _name_of_sender(sender: Any) -> str:
    """``signaltrace.sender``: a class's label, or the sender's type (never its value)."""
    name = sender_type_name(sender)
    if issubclass(type(sender), type):
        if len(_sender_names) >= _MAX_CACHED:
            _sender_names.clear()
        key = id(sender)
        _sender_names[key] = (weakref.ref(sender, lambda _ref, key=key: _sender_names.pop(key, None)), name)
    return name


def _parent_context(call_state: tuple[Any, ...] | None, current: Context) -> Context:
    """The context to open a dispatch sent from inside a receiver call in, given the current one.

    ``call_state`` is the state :meth:`SpanObserver.call_started` returned for that
    call. A sync receiver's span is current while it runs, so the current span is
    that span or one opened inside it (a SQL query's, the user's own): keep it as
    the parent. Only when the current span belongs to another trace (the receiver
    switched contexts) or the receiver is async (the current context is shared
    with its siblings and holds the span from before ``asend``) does the receiver
    span from the records take over.
    """
    if call_state is None:
        return current
    receiver_span = call_state[0]
    if not call_state[3]:
        current_span = trace.get_current_span(current).get_span_context()
        if current_span.is_valid and current_span.trace_id == receiver_span.get_span_context().trace_id:
            return current
    return trace.set_span_in_context(receiver_span, current)


class SpanObserver(DispatchObserver):
    """One ``INTERNAL`` span per dispatch, with a child span per receiver call.

    Parents: a dispatch sent from inside a receiver is a child of that receiver's
    span (kept in the parent call's record), or of a span opened inside it (see
    :func:`_parent_context`); any other dispatch is a child of the current
    OpenTelemetry context, e.g. the request span of
    ``opentelemetry-instrumentation-django``. Receiver spans are children of their
    dispatch span, explicitly.

    Sync receivers: the receiver span is made current (the OpenTelemetry context
    is attached in :meth:`call_started` and detached in :meth:`call_finished`,
    which the core always calls in the same thread and context), so spans other
    instrumentations open inside the receiver (SQL, HTTP) nest under it.

    Async receivers: never attached. On Django 6.1 the async receivers of one
    dispatch run as parallel tasks that share one copied context, which Django
    then copies back into the caller; attaching there would make one receiver's
    span current in its siblings, detach tokens out of order, and leak the last
    receiver's span into the code after ``asend``. Their spans are parented
    explicitly through the records instead, and a dispatch sent inside an async
    receiver still finds that receiver as its parent, because the core keeps the
    current receiver per task. Spans of other instrumentations inside an async
    receiver nest under the span current when ``asend`` was awaited.
    """

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        #: (when read, offset) from :func:`read_clock_offset`, replaced as a whole so
        #: threads never see the parts of two readings.
        self.clock = read_clock_offset()

    @property
    def needs_kwargs(self) -> bool:  # type: ignore[override]
        """Kwargs are snapshotted for spans only when ``OTEL_RECORD_KWARGS`` is on."""
        return current_selection().record_kwargs

    # ------------------------------------------------------------------ dispatches

    def dispatch_started(self, dispatch: LiveDispatch) -> list[Any] | None:
        """Open the dispatch span unless the defaults or the selection rules skip this dispatch."""
        selection = current_selection()
        signal = dispatch.signal
        facts = _signal_facts.get(id(signal)) or _facts_of(signal)
        receivers = facts.receivers
        if signal.receivers != receivers.entries:
            receivers = facts.receivers = _ReceiverSpans.of(signal, facts.djangos)
        if (
            receivers.app_senders is not None
            and not selection.all_dispatches
            and not receivers.reaches_app(dispatch.sender)
        ):
            return None  # Django's own receivers on Django's own signal
        current = otel_context.get_current()  # read once: for the span and for its receivers
        parent = dispatch.parent
        parent_context = current if parent is None else _parent_context(parent.state, current)
        if (
            facts.root_hidden
            and not selection.all_dispatches
            and not trace.get_current_span(parent_context).get_span_context().is_valid
        ):
            return None  # request_started / request_finished outside any span
        if selection.filters and not selection.wants(signal, parent_context):
            return None
        sender = dispatch.sender
        if sender is None:
            sender_label = "None"
        else:
            known = _sender_names.get(id(sender))
            sender_label = known[1] if known is not None else _name_of_sender(sender)
        transaction = dispatch.transaction
        key = (
            sender_label,
            dispatch.method,
            dispatch.depth,
            dispatch.receiver_count,
            None
            if transaction is None
            else (transaction.alias, transaction.in_atomic, transaction.depth, transaction.durable),
        )
        name, attributes = facts.dispatch_fields.get(key) or facts.fields_for(key)
        if selection.record_kwargs:
            attributes = attributes.copy()
            for kwarg, value in dispatch.kwargs.items():
                attributes[f"signaltrace.kwargs.{kwarg}"] = value
        start = dispatch.start_ns
        clock = self.clock
        if start - clock[0] > CLOCK_OFFSET_MAX_AGE_NS:
            clock = self.clock = read_clock_offset()
        offset = clock[1]
        span = self.tracer.start_span(
            name,
            context=parent_context,
            kind=_INTERNAL,
            attributes=attributes,
            start_time=start + offset,
        )
        # The context every receiver span starts in is made once per dispatch (a
        # parent receiver's span in it, if any, is replaced by this one).
        return [
            span,
            trace.set_span_in_context(span, parent_context),
            receivers,
            None,
            offset,
            _handled_exception(),
        ]

    def dispatch_finished(self, dispatch: LiveDispatch) -> None:
        """Close the dispatch span; ERROR only if an exception left the dispatch.

        Called from the hooks' ``finally``: an exception leaving the dispatch is the
        one being handled now, unless it was already being handled when the
        dispatch started (a signal sent from an ``except`` block).
        """
        entry = dispatch.state
        if entry is None:
            return
        dispatch.state = None  # records may outlive the span: a trace must not keep it
        span = entry[_D_ENTRY_SPAN]
        end = dispatch.end_ns + entry[_D_ENTRY_OFFSET]
        loop = dispatch.loop
        leaving = _handled_exception()
        if loop is None and entry[_D_ENTRY_ERROR] is None and leaving is entry[_D_ENTRY_HANDLED]:
            span.end(end)
            return
        try:
            if loop is not None:
                _mark_loop(span, loop)
            elif entry[_D_ENTRY_ERROR] is not None:
                _mark_error(span, entry[_D_ENTRY_ERROR])  # the receiver span has its event
            elif leaving is not None and not isinstance(leaving, GeneratorExit):
                # Raised in the dispatch itself, not by a receiver (asgiref's
                # "CurrentThreadExecutor already quit" in asend): no receiver span says it.
                _mark_error(span, leaving)
                if not isinstance(leaving, SignalLoopError):
                    span.record_exception(leaving, timestamp=end)
        finally:  # a span left open would never be exported
            span.end(end)

    # ------------------------------------------------------------------ receivers

    def call_started(self, call: LiveCall) -> tuple[Any, ...] | None:
        """Open the receiver span under its dispatch span; make it current if sync."""
        dispatch_entry = call.dispatch.state
        if dispatch_entry is None:
            return None
        info = call.info
        is_async = call.is_async
        function_id = call.function_id
        receivers = dispatch_entry[_D_ENTRY_RECEIVERS]
        fields = receivers.fields.get(function_id)
        if fields is None or fields[0] is not info or fields[1] is not is_async:
            fields = receivers.fields_for(function_id, info, is_async)
        offset = dispatch_entry[_D_ENTRY_OFFSET]
        dispatch_context = dispatch_entry[_D_ENTRY_CONTEXT]
        span = self.tracer.start_span(
            fields[2],
            context=dispatch_context,
            kind=_INTERNAL,
            attributes=fields[3],
            start_time=call.start_ns + offset,
        )
        # The context made current is the dispatch's with this span in place of the
        # dispatch span: the same as the current context with this span, because
        # nothing between the dispatch's start and its receivers changes the current
        # context (each receiver's is detached after it), without reading it again.
        token = None if is_async else otel_context.attach(trace.set_span_in_context(span, dispatch_context))
        return (span, token, offset, is_async)

    def call_finished(self, call: LiveCall) -> None:
        """Close the receiver span, with status ERROR and the exception if it raised."""
        entry = call.state
        if entry is None:
            return
        call.state = None
        span, token, offset, _is_async = entry
        if token is not None:
            otel_context.detach(token)
        end = call.end_ns + offset
        exception = call.exception
        if exception is None:
            span.end(end)
            return
        try:
            if call.swallowed:
                span.set_attribute("signaltrace.swallowed", True)
            else:
                self._note_escaping_error(call, exception)
            _mark_error(span, exception)
            if not isinstance(exception, SignalLoopError):
                # Last: the SDK formats the exception, which runs its __str__.
                span.record_exception(exception, timestamp=end)
            # A loop's one exception event is on the dispatch span that stopped it.
        finally:  # a span left open would never be exported
            span.end(end)

    def found(self, finding: Any) -> None:
        """An ``on_commit`` callback, a hazard or a slow delete: events on the current span.

        Called where it happened (same thread or task), so the current span is the
        request's, the caller's, or a sync receiver's. Nothing when no span records.
        See :mod:`signaltrace.otel.events`.
        """
        span = trace.get_current_span()
        if not span.is_recording():
            return
        clock = self.clock
        if perf_counter_ns() - clock[0] > CLOCK_OFFSET_MAX_AGE_NS:
            clock = self.clock = read_clock_offset()
        add_finding_event(span, finding, clock[1])

    @staticmethod
    def _note_escaping_error(call: LiveCall, exception: BaseException) -> None:
        """Remember the exception that leaves the dispatch, for its span's status.

        The first one wins, except over a cancellation: on Django 6.1 a failing
        async receiver cancels its siblings, whose ``CancelledError`` may come after.
        """
        dispatch_entry = call.dispatch.state
        if dispatch_entry is None:
            return
        first = dispatch_entry[_D_ENTRY_ERROR]
        if first is None or isinstance(first, asyncio.CancelledError):
            dispatch_entry[_D_ENTRY_ERROR] = exception
