"""Per-context recording state and the plain-list records written on the hot path.

Two ``ContextVar``s carry all state, so threads and asyncio tasks never see each
other's dispatches:

* ``active_recorders``: the tuple of :class:`Recorder` objects of the enclosing
  ``record()`` blocks (innermost last), or None when nothing records.
* ``frame_cell``: a small mutable cell ``[frame, thread id]`` whose ``frame`` is
  the dispatch whose receiver is running right now (a list, see ``F_*`` below),
  or None outside any receiver. Frames link to their parent frame, which gives
  nesting, depth and the loop guard's chain.

Why a mutable cell and not ``ContextVar.set``/``reset`` around every dispatch:
set+reset costs about as much as Django's whole ``send`` with one receiver, and
the hooks run on every dispatch. Synchronous code always restores the cell before
returning, so contexts that share a cell (asyncio tasks of one thread) never see
each other's frames; a cell is only used by the thread that made it (a context
copied into another thread gets a new cell, see ``adopt_cell``); and code that holds a
frame across ``await`` (``asend``, async receivers) sets a cell of its own with
``ContextVar.set``.

While recording, each dispatch and receiver call is a plain list (``D_*`` and
``C_*`` fields): appending numbers and cached strings to lists is several times
cheaper than building objects. :mod:`signaltrace.records` turns them into
``Dispatch`` and ``ReceiverCall`` objects when a trace is read.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from threading import get_ident
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from signaltrace import conf
from signaltrace.conf import ignored_signals, sensitive_pattern
from signaltrace.naming import _receiver_infos, receiver_info
from signaltrace.rendering import snapshot_kwargs
from signaltrace.safety import report_internal_error

if TYPE_CHECKING:
    from django.dispatch import Signal

    from signaltrace.loops import Loop
    from signaltrace.records import Trace

# Frame fields: one frame per dispatch in progress (and one per async receiver).
F_SIGNAL, F_SENDER, F_INSTANCE, F_PARENT, F_RECEIVER, F_CALL = range(6)

# Dispatch record fields.
(
    D_SIGNAL,
    D_SENDER,
    D_SENDER_IS_WEAK,
    D_SENDER_TYPE,
    D_METHOD,
    D_PARENT_CALL,
    D_DEPTH,
    D_START,
    D_END,
    D_KWARGS,
    D_CALLS,
    D_LOOP,
    D_RECEIVER_COUNT,
    D_OBSERVED,  # observers' scratch dict (LiveDispatch.state), made on first use
    D_SPAN,  # the span observer's own slot (signaltrace.otel.spans): a dict costs it too much
) = range(15)

# Receiver call record fields.
(
    C_INFO,
    C_FUNCTION_ID,
    C_IS_ASYNC,
    C_START,
    C_END,
    C_EXCEPTION,
    C_CHILDREN,  # the dispatches this call sent that a recorder keeps; None until one
    C_DISPATCH,
    C_OBSERVED,  # observers' scratch dict (LiveCall.state), made on first use
    C_SPAN,  # the span observer's own slot, as D_SPAN
) = range(10)

active_recorders: ContextVar[tuple[Recorder, ...] | None] = ContextVar("signaltrace_recorders", default=None)
frame_cell: ContextVar[list[Any] | None] = ContextVar("signaltrace_frame_cell", default=None)
CELL_FRAME, CELL_THREAD = 0, 1


def adopt_cell(found: list[Any] | None) -> tuple[list[Any], Token[list[Any] | None] | None]:
    """A cell for this thread, set in this context: ``found`` is None or another thread's.

    The new cell starts from ``found``'s frame: a context copied into this thread
    inside a dispatch (``sync_to_async`` in a receiver) keeps its parent. Such a
    cell, holding a frame, is set only for the dispatch that adopts it: the caller
    resets the returned token when it ends, because asgiref copies a context's
    changes back to the caller, whose later dispatches must not find a finished
    frame. An empty cell stays set (token None), so later dispatches in this
    context find it without setting a ``ContextVar`` again.
    """
    frame = None if found is None else found[CELL_FRAME]
    cell = [frame, get_ident()]
    token = frame_cell.set(cell)
    return cell, (None if frame is None else token)


def current_frame() -> list[Any] | None:
    """The frame of the dispatch whose receiver is running in this context, or None.

    Read only: a cell made by another thread (the context was copied) gives the
    frame it held, which is the frame the copy was made in.
    """
    cell = frame_cell.get()
    return None if cell is None else cell[CELL_FRAME]


#: Live consumers of records (see :mod:`signaltrace.observers`). A plain list, so
#: the hooks' ``not observers`` test costs next to nothing while it is empty.
observers: list[Any] = []

# What the notifications call, rebuilt by signaltrace.observers whenever observers
# change (never per dispatch): per event, one callable per observer that overrides
# it, taking the raw record (observers that take views get a small adapter); and
# the observers whose ``needs_kwargs`` may be true.
on_dispatch_started: tuple[Any, ...] = ()
on_call_started: tuple[Any, ...] = ()
on_call_finished: tuple[Any, ...] = ()
on_dispatch_finished: tuple[Any, ...] = ()
kwargs_observers: tuple[Any, ...] = ()


# Whether an observer needs kwargs, decided again when observers change and when the
# config may have (its generation), never per dispatch.
_kwargs_wanted = False
_kwargs_generation = -1


def _decide_kwargs() -> None:
    global _kwargs_wanted, _kwargs_generation
    generation = conf.generation
    wanted = False
    for observer in kwargs_observers:
        try:
            wanted = bool(observer.needs_kwargs)
        except Exception:  # noqa: BLE001 - an observer must not break a dispatch
            report_internal_error(f"{type(observer).__name__}.needs_kwargs")
            wanted = True
        if wanted:
            break
    _kwargs_wanted, _kwargs_generation = wanted, generation


def set_observer_handlers(handlers: dict[str, tuple[Any, ...]], needing_kwargs: tuple[Any, ...]) -> None:
    """Called by :mod:`signaltrace.observers` after ``observers`` changed."""
    global on_dispatch_started, on_call_started, on_call_finished, on_dispatch_finished, kwargs_observers
    global _kwargs_generation
    kwargs_observers = needing_kwargs
    _kwargs_generation = -1
    on_dispatch_started = handlers["dispatch_started"]
    on_call_started = handlers["call_started"]
    on_call_finished = handlers["call_finished"]
    on_dispatch_finished = handlers["dispatch_finished"]


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
        from signaltrace.conf import setting

        self.records: list[list[Any]] = []
        self.dropped = 0
        self.loops: list[Loop] = []
        self.max_dispatches: int = setting("MAX_DISPATCHES")
        self.ignored = ignored_signals()
        self.sensitive = sensitive_pattern()
        self.repr_objects = bool(setting("REPR_OBJECTS"))
        self.start_ns = perf_counter_ns()
        self.end_ns: int | None = None


_NO_KWARGS: tuple[tuple[str, ...], list[Any]] = ((), [])
# Kwargs not snapshotted: nothing records the dispatch and no observer needs them.
_UNRECORDED_KWARGS: tuple[tuple[str, ...], list[Any]] = ((), [])


def begin_dispatch(
    recorders: tuple[Recorder, ...] | None,
    signal: Signal,
    sender: Any,
    named: dict[str, Any],
    method: str,
    parent: list[Any] | None,
    receiver_count: int,
) -> list[Any] | None:
    """Start the record of one dispatch, or return None when it is not kept.

    Called when recording or observed. Not kept: an ignored signal, or every
    active recorder at its cap (the dispatch is then counted in ``dropped``) and
    no observer. Observers only hear of dispatches with live receivers.
    Internal errors are logged, never raised.
    """
    try:
        if recorders is None:
            # Only observers can see this dispatch.
            ignored = conf.ignored_now
            if not (observers and receiver_count) or signal in (
                ignored_signals() if ignored is None else ignored
            ):
                return None
            keeping: Sequence[Recorder] = ()
            if not named:
                kwargs = _NO_KWARGS
            else:
                if _kwargs_generation != conf.generation:
                    _decide_kwargs()
                # Snapshotted only if an observer reads them.
                kwargs = (
                    snapshot_kwargs(named, sensitive_pattern(), False)
                    if _kwargs_wanted
                    else _UNRECORDED_KWARGS
                )
        else:
            innermost = recorders[-1]
            if signal in innermost.ignored:
                return None
            if len(recorders) == 1 and len(innermost.records) < innermost.max_dispatches:
                keeping = recorders  # the common case, without building a list
            else:
                keeping = []
                for recorder in recorders:
                    if len(recorder.records) < recorder.max_dispatches:
                        keeping.append(recorder)
                    else:
                        recorder.dropped += 1
                if not keeping and not (observers and receiver_count):
                    return None
            kwargs = (
                snapshot_kwargs(named, innermost.sensitive, innermost.repr_objects) if named else _NO_KWARGS
            )
        if keeping and sender is not None and type(sender).__weakrefoffset__:
            # A kept record outlives the dispatch: it holds the sender weakly.
            sender_value, sender_is_weak = weakref.ref(sender), True
        else:
            # Otherwise nothing of ours keeps the record after the dispatch.
            sender_value, sender_is_weak = sender, False
        if parent is None:
            parent_call, depth = None, 0
        else:
            parent_call, depth = parent[F_CALL], 0
            while parent is not None:
                depth += 1
                parent = parent[F_PARENT]
        record = [
            signal,
            sender_value,
            sender_is_weak,
            type(sender),
            method,
            parent_call,
            depth,
            perf_counter_ns(),
            None,
            kwargs,
            [],
            None,
            receiver_count,
            None,
            None,
        ]
        if keeping:
            if parent_call is not None:
                # Children are for traces: a dispatch no recorder keeps is not linked.
                children = parent_call[C_CHILDREN]
                if children is None:
                    parent_call[C_CHILDREN] = [record]
                else:
                    children.append(record)
            for recorder in keeping:
                recorder.records.append(record)
    except Exception:  # noqa: BLE001 - never break the host app
        report_internal_error("begin_dispatch")
        return None
    if on_dispatch_started and receiver_count:
        for handler in on_dispatch_started:
            try:
                handler(record)
            except Exception:  # noqa: BLE001 - an observer must not break a dispatch
                _observer_failed(handler)
    return record


def end_dispatch(dispatch: list[Any]) -> None:
    """Close the record of a dispatch whose receivers have all returned (or raised)."""
    dispatch[D_END] = perf_counter_ns()
    if on_dispatch_finished and dispatch[D_RECEIVER_COUNT]:
        for handler in on_dispatch_finished:
            try:
                handler(dispatch)
            except Exception:  # noqa: BLE001
                _observer_failed(handler)


def begin_call(dispatch: list[Any], receiver: Any, is_async: bool) -> list[Any]:
    """Start the record of one receiver call inside ``dispatch``."""
    function_id = id(receiver)  # a function; a bound method is keyed by its __func__
    cached = _receiver_infos.get(function_id)  # receiver_info()'s cache, read inline
    if cached is None:
        function_id = id(getattr(receiver, "__func__", receiver))
        cached = _receiver_infos.get(function_id)
    if cached is not None:
        info = cached[1]
    else:
        try:
            info = receiver_info(receiver)
        except Exception:  # noqa: BLE001
            report_internal_error("receiver_info")
            info = (repr(type(receiver)), "", 0)
    call = [
        info,
        function_id,
        is_async,
        perf_counter_ns(),
        None,
        None,
        None,
        dispatch,
        None,
        None,
    ]
    dispatch[D_CALLS].append(call)
    if on_call_started:
        for handler in on_call_started:
            try:
                handler(call)
            except Exception:  # noqa: BLE001
                _observer_failed(handler)
    return call


def end_call(call: list[Any], exception: BaseException | None = None) -> None:
    """Close the record of a receiver call, with the exception it raised if any."""
    call[C_END] = perf_counter_ns()
    if exception is not None:
        call[C_EXCEPTION] = exception
    if on_call_finished:
        for handler in on_call_finished:
            try:
                handler(call)
            except Exception:  # noqa: BLE001
                _observer_failed(handler)


def _observer_failed(handler: Any) -> None:
    """Log an observer's exception as ``ObserverClass.event``."""
    method = getattr(handler, "observer_method", handler)
    owner = getattr(method, "__self__", method)
    report_internal_error(f"{type(owner).__name__}.{getattr(method, '__name__', '?')}")


def record_empty_dispatch(signal: Signal, sender: Any, named: dict[str, Any], method: str) -> None:
    """Record a dispatch that found no receivers ("sent, but nobody listened")."""
    recorders = active_recorders.get()
    if recorders is None or signal in recorders[-1].ignored:
        return
    record = begin_dispatch(recorders, signal, sender, named, method, current_frame(), 0)
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
