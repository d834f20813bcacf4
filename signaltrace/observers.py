"""Live consumers of the records: told when dispatches and receiver calls start and end.

The OpenTelemetry instrumentation is one: it opens a span when a dispatch starts
and closes it when it ends. Observers see the same records a ``record()`` block
keeps, through :class:`LiveDispatch` and :class:`LiveCall` views, whether or not
anything is recording. They hear only of dispatches that have live receivers
and whose signal is not ignored (``IGNORE_SIGNALS``).

Usage::

    class Printer(DispatchObserver):
        def dispatch_started(self, dispatch: LiveDispatch) -> None:
            print("sending", dispatch.signal_name, "from", dispatch.sender_name)

    add_observer(Printer())

Observer methods run inside the dispatch, on the thread or task that sends, so
they must be quick. An exception in one is logged on the ``signaltrace`` logger
and never reaches the application. Only the methods an observer overrides are
called.

A record that no ``record()`` block keeps holds its sender strongly (a kept
one holds it weakly); such a record is meant to die with its dispatch, so an
observer that keeps a view after the dispatch keeps the sender alive with it.

``dispatch.kwargs`` is snapshotted only when something needs it: when a
``record()`` block keeps the dispatch, or when an observer's ``needs_kwargs`` is
true (otherwise it is empty for observers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signaltrace import recording
from signaltrace.naming import dispatch_uids, sender_name, signal_name
from signaltrace.recording import (
    C_DISPATCH,
    C_END,
    C_EXCEPTION,
    C_FUNCTION_ID,
    C_INFO,
    C_IS_ASYNC,
    C_OBSERVED,
    C_START,
    D_DEPTH,
    D_END,
    D_KWARGS,
    D_LOOP,
    D_METHOD,
    D_OBSERVED,
    D_PARENT_CALL,
    D_RECEIVER_COUNT,
    D_SENDER,
    D_SENDER_IS_WEAK,
    D_SIGNAL,
    D_START,
    observers,
)
from signaltrace.records import ROBUST_METHODS, is_swallowed
from signaltrace.rendering import render_kwargs

if TYPE_CHECKING:
    from django.dispatch import Signal

    from signaltrace.loops import Loop


class LiveDispatch:
    """A view of one dispatch record while it runs (and after)."""

    __slots__ = ("_record",)

    def __init__(self, record: list[Any]) -> None:
        self._record = record

    @property
    def signal(self) -> Signal:
        return self._record[D_SIGNAL]

    @property
    def signal_name(self) -> str:
        return signal_name(self._record[D_SIGNAL])

    @property
    def sender(self) -> Any:
        sender = self._record[D_SENDER]
        return sender() if self._record[D_SENDER_IS_WEAK] else sender

    @property
    def sender_name(self) -> str:
        return sender_name(self.sender)

    @property
    def method(self) -> str:
        return self._record[D_METHOD]

    @property
    def depth(self) -> int:
        return self._record[D_DEPTH]

    @property
    def receiver_count(self) -> int:
        return self._record[D_RECEIVER_COUNT]

    @property
    def is_robust(self) -> bool:
        return self._record[D_METHOD] in ROBUST_METHODS

    @property
    def start_ns(self) -> int:
        """``time.perf_counter_ns()`` when the dispatch started."""
        return self._record[D_START]

    @property
    def duration_ns(self) -> int | None:
        end = self._record[D_END]
        return None if end is None else end - self._record[D_START]

    @property
    def kwargs(self) -> dict[str, str]:
        """Rendered, redacted kwargs (computed on each access).

        Empty when nothing records the dispatch and no observer ``needs_kwargs``.
        """
        return render_kwargs(self._record[D_KWARGS])

    @property
    def loop(self) -> Loop | None:
        """The loop this dispatch was stopped for, if it was."""
        return self._record[D_LOOP]

    @property
    def parent(self) -> LiveCall | None:
        """The receiver call this dispatch was sent from, or None at depth 0."""
        parent = self._record[D_PARENT_CALL]
        return None if parent is None else LiveCall(parent)

    @property
    def state(self) -> dict[Any, Any]:
        """Scratch space for observers, kept with the record (e.g. a span)."""
        state = self._record[D_OBSERVED]
        if state is None:
            state = self._record[D_OBSERVED] = {}
        return state


class LiveCall:
    """A view of one receiver call record while it runs (and after)."""

    __slots__ = ("_record",)

    def __init__(self, record: list[Any]) -> None:
        self._record = record

    @property
    def receiver_name(self) -> str:
        return self._record[C_INFO][0]

    @property
    def file(self) -> str:
        return self._record[C_INFO][1]

    @property
    def line(self) -> int:
        return self._record[C_INFO][2]

    @property
    def info(self) -> tuple[str, str, int]:
        """``(receiver_name, file, line)`` in one tuple, the same object for every call of a receiver."""
        return self._record[C_INFO]

    @property
    def is_async(self) -> bool:
        return self._record[C_IS_ASYNC]

    @property
    def dispatch_uid(self) -> Any:
        """The ``dispatch_uid`` the receiver was connected with, or None.

        One lookup in the signal's uid map, cached per signal until its receivers
        change (:func:`signaltrace.naming.dispatch_uids`).
        """
        uids = dispatch_uids(self._record[C_DISPATCH][D_SIGNAL])
        return uids.get(self._record[C_FUNCTION_ID]) if uids else None

    @property
    def start_ns(self) -> int:
        return self._record[C_START]

    @property
    def duration_ns(self) -> int | None:
        end = self._record[C_END]
        return None if end is None else end - self._record[C_START]

    @property
    def exception(self) -> BaseException | None:
        return self._record[C_EXCEPTION]

    @property
    def swallowed(self) -> bool:
        """True when a ``send_robust``/``asend_robust`` caught the exception."""
        return is_swallowed(self._record[C_EXCEPTION], self._record[C_DISPATCH][D_METHOD])

    @property
    def dispatch(self) -> LiveDispatch:
        return LiveDispatch(self._record[C_DISPATCH])

    @property
    def state(self) -> dict[Any, Any]:
        """Scratch space for observers, kept with the record (e.g. a span)."""
        state = self._record[C_OBSERVED]
        if state is None:
            state = self._record[C_OBSERVED] = {}
        return state


class DispatchObserver:
    """Base class of observers; override the events you need (all no-ops here).

    Only overridden methods are called. Set ``needs_kwargs`` (a class attribute,
    or a property for a choice made from settings) when ``dispatch.kwargs`` is
    read: otherwise kwargs are not snapshotted for dispatches nothing records.
    """

    #: Whether this observer reads ``dispatch.kwargs``. Read when observers are
    #: added or removed and when Django's settings change, not per dispatch.
    needs_kwargs: bool = False

    #: Internal, for signaltrace's own observers on hot paths: when True, the
    #: methods receive the raw record lists of :mod:`signaltrace.recording`
    #: (``D_*``/``C_*`` fields, scratch dicts in ``D_OBSERVED``/``C_OBSERVED``)
    #: instead of views, which saves a view and its property calls per event.
    receives_records: bool = False

    def dispatch_started(self, dispatch: LiveDispatch) -> None:
        """A dispatch with live receivers starts, before its first receiver."""

    def call_started(self, call: LiveCall) -> None:
        """A receiver is about to be called (for async receivers: awaited)."""

    def call_finished(self, call: LiveCall) -> None:
        """A receiver returned or raised (``call.exception``)."""

    def dispatch_finished(self, dispatch: LiveDispatch) -> None:
        """Every receiver has run, or one raised, or a loop stopped the dispatch."""


EVENTS = ("dispatch_started", "call_started", "call_finished", "dispatch_finished")


def _overrides(observer: Any, event: str) -> Any:
    """The observer's bound method for ``event``, or None if it is the base class's no-op."""
    method = getattr(observer, event, None)
    if method is None or getattr(method, "__func__", None) is getattr(DispatchObserver, event):
        return None
    return method


def _may_need_kwargs(observer: Any) -> bool:
    """False only for an observer whose ``needs_kwargs`` is the plain class default False."""
    if "needs_kwargs" in getattr(observer, "__dict__", ()):
        return True
    return getattr(type(observer), "needs_kwargs", False) is not False


def _handler(observer: Any, event: str) -> Any:
    """What the core calls for ``event``: the method itself, or an adapter making the view."""
    method = _overrides(observer, event)
    if method is None or getattr(observer, "receives_records", False):
        return method
    view_class = LiveDispatch if event.startswith("dispatch") else LiveCall

    def handler(record: list[Any]) -> None:
        method(view_class(record))

    handler.observer_method = method  # type: ignore[attr-defined] - named in error reports
    return handler


def _observers_changed() -> None:
    """Rebuild what the core calls per event (never done per dispatch)."""
    current = list(observers)
    handlers = {
        event: tuple(handler for handler in (_handler(o, event) for o in current) if handler is not None)
        for event in EVENTS
    }
    recording.set_observer_handlers(handlers, tuple(o for o in current if _may_need_kwargs(o)))


def add_observer(observer: DispatchObserver) -> None:
    """Start telling ``observer`` about dispatches (idempotent; installs the hooks)."""
    from signaltrace.hooks import install

    install()
    if observer not in observers:
        observers.append(observer)
        _observers_changed()


def remove_observer(observer: DispatchObserver) -> None:
    """Stop telling ``observer`` about dispatches (idempotent)."""
    if observer in observers:
        observers.remove(observer)
        _observers_changed()
