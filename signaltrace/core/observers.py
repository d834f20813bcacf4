"""Live observers: consumers told when dispatches and receiver calls start and end.

The OpenTelemetry spans are one: a span opens when a dispatch starts and closes
when it ends. Observers see the same records a ``record()`` block keeps, through
:class:`LiveDispatch` and :class:`LiveCall` views, whether or not anything is
recording. They hear only of dispatches that have live receivers and whose
signal is not ignored (``IGNORE_SIGNALS``).

Usage::

    class Timer(DispatchObserver):
        def dispatch_started(self, dispatch: LiveDispatch) -> float:
            return time.monotonic()          # kept as dispatch.state

        def dispatch_finished(self, dispatch: LiveDispatch) -> None:
            print(dispatch.signal_name, time.monotonic() - dispatch.state)

    add_observer(Timer())

State: what ``dispatch_started`` returns is kept as ``dispatch.state`` and what
``call_started`` returns as ``call.state``, on this observer's own view, so
observers never share or collide. ``dispatch.parent`` is this observer's view of
the receiver call a nested dispatch was sent from (its ``state`` included), and
``call.dispatch`` the view of the call's dispatch: nesting comes from the core's
records, not from a second mechanism.

Observer methods run inside the dispatch, on the thread or task that sends, so
they must be quick. An exception in one is logged on the ``signaltrace`` logger
and never reaches the application. Only the methods an observer overrides are
called.

A record that no ``record()`` block keeps holds its sender strongly (a kept one
holds it weakly); such a record is meant to die with its dispatch, so an observer
that keeps a view after the dispatch keeps the sender alive with it.

``dispatch.kwargs`` is snapshotted only when something needs it: when a
``record()`` block keeps the dispatch, or when an observer's ``needs_kwargs`` is
true (otherwise it is empty for observers).
"""

from __future__ import annotations

import threading
from typing import Any

from signaltrace.core import store
from signaltrace.core.hooks import install
from signaltrace.core.side_effects import watch_celery
from signaltrace.core.store import LiveCall, LiveDispatch

__all__ = ["DispatchObserver", "LiveCall", "LiveDispatch", "add_observer", "remove_observer"]


class DispatchObserver:
    """Base class of observers; override the events you need (all no-ops here).

    Only overridden methods are called. Set ``needs_kwargs`` (a class attribute,
    or a property for a choice made from settings) when ``dispatch.kwargs`` is
    read: otherwise kwargs are not snapshotted for dispatches nothing records.
    """

    #: Whether this observer reads ``dispatch.kwargs``. Read when observers are
    #: added or removed and when Django's settings change, not per dispatch.
    needs_kwargs: bool = False

    def dispatch_started(self, dispatch: LiveDispatch) -> Any:
        """A dispatch with live receivers starts, before its first receiver.

        The value returned is kept as ``dispatch.state``.
        """

    def call_started(self, call: LiveCall) -> Any:
        """A receiver is about to be called (for async receivers: awaited).

        The value returned is kept as ``call.state``.
        """

    def call_finished(self, call: LiveCall) -> None:
        """A receiver returned or raised (``call.exception``)."""

    def dispatch_finished(self, dispatch: LiveDispatch) -> None:
        """Every receiver has run, or one raised, or a loop stopped the dispatch."""

    def found(self, finding: Any) -> None:
        """The core found something beside the dispatches, such as a
        :class:`~signaltrace.core.trace.SlowDelete`, where it happened (same thread or task)."""


EVENTS = ("dispatch_started", "call_started", "call_finished", "dispatch_finished", "found")

_observers: list[DispatchObserver] = []
_lock = threading.Lock()


def _override(observer: Any, event: str) -> Any:
    """The observer's bound method for ``event``, or None if it is the base class's no-op."""
    method = getattr(observer, event, None)
    if method is None or getattr(method, "__func__", None) is getattr(DispatchObserver, event):
        return None
    return method


def _publish() -> None:
    """Hand the store what to call per event (never done per dispatch)."""
    current = list(_observers)
    methods = {
        event: tuple(
            (index, method)
            for index, method in ((i, _override(o, event)) for i, o in enumerate(current))
            if method is not None
        )
        for event in EVENTS
    }
    store.set_observers(current, methods)


def add_observer(observer: DispatchObserver) -> None:
    """Start telling ``observer`` about dispatches (idempotent; installs the hooks)."""
    install()
    watch_celery()  # Celery may have been imported after install()
    with _lock:
        if observer not in _observers:
            _observers.append(observer)
            _publish()


def remove_observer(observer: DispatchObserver) -> None:
    """Stop telling ``observer`` about dispatches (idempotent).

    Dispatches already running finish with the observers they started with.
    """
    with _lock:
        if observer in _observers:
            _observers.remove(observer)
            _publish()
