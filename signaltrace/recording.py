"""Per-context recording state and the plain-list records written on the hot path.

Two ``ContextVar``s carry all state, so threads and asyncio tasks never see each
other's dispatches:

* ``active_recorders``: the tuple of :class:`Recorder` objects of the enclosing
  ``record()`` blocks (innermost last), or None when nothing records.
* ``current_frame``: the dispatch whose receiver is running right now, as a
  *frame* list (see ``F_*`` below), or None outside any receiver. Frames link to
  their parent frame, which gives nesting, depth and the loop guard's chain.

While recording, each dispatch and receiver call is a plain list (``D_*`` and
``C_*`` fields): appending numbers and cached strings to lists is several times
cheaper than building objects. :mod:`signaltrace.records` turns them into
``Dispatch`` and ``ReceiverCall`` objects when a trace is read.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from signaltrace.naming import receiver_info
from signaltrace.rendering import snapshot_kwargs
from signaltrace.safety import report_internal_error

if TYPE_CHECKING:
    from django.dispatch import Signal

    from signaltrace.loops import Loop
    from signaltrace.records import Trace

# Frame fields: one frame per dispatch in progress (and one per async receiver).
F_SIGNAL, F_SENDER, F_INSTANCE, F_PARENT, F_RECEIVER, F_CALL, F_DEPTH = range(7)

# Dispatch record fields.
(
    D_SIGNAL,
    D_SENDER,
    D_SENDER_IS_WEAK,
    D_METHOD,
    D_PARENT_CALL,
    D_DEPTH,
    D_START,
    D_END,
    D_KWARGS,
    D_CALLS,
    D_LOOP,
) = range(11)

# Receiver call record fields.
C_INFO, C_FUNCTION_ID, C_IS_ASYNC, C_START, C_END, C_EXCEPTION, C_CHILDREN, C_DISPATCH = range(8)

active_recorders: ContextVar[tuple[Recorder, ...] | None] = ContextVar("signaltrace_recorders", default=None)
current_frame: ContextVar[list[Any] | None] = ContextVar("signaltrace_frame", default=None)


class Recorder:
    """Collects the dispatch records of one ``record()`` block.

    Settings are read once when the block starts, never per dispatch.
    """

    __slots__ = (
        "dropped",
        "end_ns",
        "ignored",
        "loops",
        "max_dispatches",
        "records",
        "repr_objects",
        "sensitive",
        "start_ns",
    )

    def __init__(self) -> None:
        from signaltrace.conf import ignored_signals, sensitive_pattern, setting

        self.records: list[list[Any]] = []
        self.dropped = 0
        self.loops: list[Loop] = []
        self.max_dispatches: int = setting("MAX_DISPATCHES")
        self.ignored = ignored_signals()
        self.sensitive = sensitive_pattern()
        self.repr_objects = bool(setting("REPR_OBJECTS"))
        self.start_ns = perf_counter_ns()
        self.end_ns: int | None = None


def _sender_slot(sender: Any) -> tuple[Any, bool]:
    """How a record holds the sender: weakly when possible, never keeping it alive."""
    if sender is None or not type(sender).__weakrefoffset__:
        return sender, False
    return weakref.ref(sender), True


def begin_dispatch(
    recorders: tuple[Recorder, ...],
    signal: Signal,
    sender: Any,
    named: dict[str, Any],
    method: str,
    parent: list[Any] | None,
) -> list[Any] | None:
    """Start the record of one dispatch, or return None when it is not kept.

    Not kept: an ignored signal, or every active recorder at its cap (the dispatch
    is then counted in ``dropped``). Internal errors are logged, never raised.
    """
    try:
        innermost = recorders[-1]
        if signal in innermost.ignored:
            return None
        keeping = []
        for recorder in recorders:
            if len(recorder.records) < recorder.max_dispatches:
                keeping.append(recorder)
            else:
                recorder.dropped += 1
        if not keeping:
            return None
        sender_value, sender_is_weak = _sender_slot(sender)
        parent_call = parent[F_CALL] if parent is not None else None
        record = [
            signal,
            sender_value,
            sender_is_weak,
            method,
            parent_call,
            parent[F_DEPTH] + 1 if parent is not None else 0,
            perf_counter_ns(),
            None,
            snapshot_kwargs(named, innermost.sensitive, innermost.repr_objects) if named else (),
            [],
            None,
        ]
        if parent_call is not None:
            parent_call[C_CHILDREN].append(record)
        for recorder in keeping:
            recorder.records.append(record)
        return record
    except Exception:  # noqa: BLE001 - never break the host app
        report_internal_error("begin_dispatch")
        return None


def begin_call(dispatch: list[Any], receiver: Any, is_async: bool) -> list[Any]:
    """Start the record of one receiver call inside ``dispatch``."""
    try:
        info = receiver_info(receiver)
    except Exception:  # noqa: BLE001
        report_internal_error("receiver_info")
        info = (repr(type(receiver)), "", 0)
    call = [
        info,
        id(getattr(receiver, "__func__", receiver)),
        is_async,
        perf_counter_ns(),
        None,
        None,
        [],
        dispatch,
    ]
    dispatch[D_CALLS].append(call)
    return call


def record_empty_dispatch(signal: Signal, sender: Any, named: dict[str, Any], method: str) -> None:
    """Record a dispatch that found no receivers ("sent, but nobody listened")."""
    recorders = active_recorders.get()
    if recorders is None:
        return
    record = begin_dispatch(recorders, signal, sender, named, method, current_frame.get())
    if record is not None:
        record[D_END] = record[D_START]


@contextmanager
def record() -> Iterator[Trace]:
    """Record every signal dispatch in this context (thread or asyncio task).

    Installs the hooks on first use. Blocks nest: an outer block also sees what an
    inner one recorded. Works in sync and async code alike; dispatches made in
    other threads or tasks that did not inherit this context are not recorded.
    """
    from signaltrace.hooks import install, is_installed
    from signaltrace.records import Trace

    if not is_installed():
        install()
    recorder = Recorder()
    outer = active_recorders.get()
    token = active_recorders.set((*outer, recorder) if outer else (recorder,))
    trace = Trace(recorder)
    try:
        yield trace
    finally:
        recorder.end_ns = perf_counter_ns()
        active_recorders.reset(token)


def is_recording() -> bool:
    """Whether a ``record()`` block is active in this context."""
    return active_recorders.get() is not None
