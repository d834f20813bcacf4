"""The record store: the one module that creates, fills and reads raw records.

While recording, each dispatch and each receiver call is a plain list (fields
``D_*`` and ``C_*``, private to this module): appending numbers and cached
strings to a list is several times cheaper than building objects on the hot path.
Everything else reads records through this module only:

* a ``record()`` block's :class:`Recorder` turns its records into the public
  ``Dispatch`` and ``ReceiverCall`` objects when its trace is read
  (:meth:`Recorder.build_dispatches`);
* live observers get :class:`LiveDispatch` and :class:`LiveCall` views, one per
  observer and record, made only while observers are registered.

Internal errors are logged (:func:`signaltrace.safety.report_internal_error`),
never raised into the dispatch.
"""

from __future__ import annotations

import os
import threading
import types
import weakref
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from threading import get_ident
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from signaltrace import conf
from signaltrace.conf import ignored_signals, repr_limit, sensitive_pattern, setting
from signaltrace.core.atomics import block_for, get_block_cell, open_blocks
from signaltrace.core.effects import transaction_of
from signaltrace.core.frames import (
    CELL_FRAME,
    F_CALL,
    F_NAMED,
    F_RECEIVER,
    F_RECORD,
    depth_of,
    get_frame_cell,
)
from signaltrace.core.naming import (
    cached_receiver_info,
    dispatch_uids,
    dotted_path,
    function_info,
    receiver_info,
    sender_name,
    signal_name,
)
from signaltrace.core.rendering import MAX_CACHED, render_kwargs, snapshot_get, snapshot_kwargs
from signaltrace.core.trace import Dispatch, ReceiverCall, is_swallowed
from signaltrace.safety import report_internal_error

if TYPE_CHECKING:
    from django.dispatch import Signal

    from signaltrace.core.effects import Transaction
    from signaltrace.core.loops import Loop

# Records point from child to parent only (D_PARENT_CALL, D_PARENT_DISPATCH): a call does
# not point at its dispatch nor at the dispatches it sent, so records make no reference
# cycles and are freed with their trace, without the garbage collector.

# Dispatch record fields.
(
    D_SIGNAL,
    D_SENDER,
    D_SENDER_GONE,  # None: D_SENDER is the sender; else D_SENDER is a weak reference, and this
    # names the sender once it is gone: its label, or its type
    D_METHOD,
    D_PARENT_CALL,  # the call record of the receiver that sent it, or None
    D_DEPTH,
    D_START,
    D_END,
    D_KWARGS,
    D_CALLS,
    D_LOOP,
    D_RECEIVER_COUNT,
    D_OBSERVERS,  # the _ObserverSet the dispatch started under, or None when unobserved
    D_VIEWS,  # its LiveDispatch view (one observer) or list of views (one per observer of that set)
    D_TX,  # the AtomicBlock it ran in; or None: autocommit, on D_KWARGS's ``using`` (or the alias here)
    D_PARENT_DISPATCH,  # the record of D_PARENT_CALL's dispatch, or None
) = range(16)

# Receiver call record fields.
(
    C_INFO,
    C_FUNCTION_ID,
    C_IS_ASYNC,
    C_START,
    C_END,
    C_EXCEPTION,
    C_OBSERVERS,  # its dispatch's D_OBSERVERS
    C_VIEWS,  # its LiveCall view or list of views, as D_VIEWS, or None
) = range(8)

Record = list[Any]


class Recorder:
    """Collects the dispatch records of one ``record()`` block.

    Settings are read once when the block starts, never per dispatch.
    """

    __slots__ = (
        "bytes_left",
        "dropped",
        "end_ns",
        "findings",
        "ignored",
        "kept_signal",
        "kept_signal_before",
        "loops",
        "max_dispatches",
        "records",
        "repr_objects",
        "sensitive",
        "start_ns",
    )

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.dropped = 0
        self.loops: list[Loop] = []
        #: What other core modules found beside the dispatches (slow deletes, ...), in order.
        self.findings: list[Any] = []
        self.max_dispatches: int = setting("MAX_DISPATCHES")
        #: What ``MAX_TRACE_BYTES`` still allows, by :func:`_estimated_bytes` per dispatch.
        self.bytes_left: int = setting("MAX_TRACE_BYTES")
        self.ignored = ignored_ids()
        #: The last two signals found not ignored, tried first by identity: a block sees
        #: few signals over and over (a save sends pre_save, then post_save).
        self.kept_signal: Any = None
        self.kept_signal_before: Any = None
        self.sensitive = sensitive_pattern()
        self.repr_objects = bool(setting("REPR_OBJECTS"))
        self.start_ns = perf_counter_ns()
        self.end_ns: int | None = None
        with _open_count_lock:
            open_count[0] += 1

    def close(self) -> None:
        """End the block: nothing more is kept, even where the block's context lives on."""
        if self.end_ns is not None:
            return
        self.end_ns = perf_counter_ns()
        self.bytes_left = -1  # begin_dispatch then takes its slow path, which skips closed recorders
        with _open_count_lock:
            open_count[0] -= 1

    def build_dispatches(self, calls: dict[int, ReceiverCall] | None = None) -> list[Dispatch]:
        """The public objects for every record kept so far, linked to each other.

        ``calls``, if given, is filled with ``id(call record) -> ReceiverCall``, for
        findings that name the receiver call they happened in (:func:`current_receiver`).
        """
        builder = _Builder(self)
        built = builder.build()
        if calls is not None:
            calls.update(builder.calls_by_record)
        return built


# (the ignored signals conf returned, their ids): signals are compared by identity,
# never with ``==`` or ``hash()``, which a Signal subclass may define.
_ignored: tuple[Any, frozenset[int]] = (None, frozenset())


def ignored_ids() -> frozenset[int]:
    """The ids of the signals in ``IGNORE_SIGNALS`` (they live as long as their modules)."""
    global _ignored
    ignored = conf.ignored_now
    if ignored is None:
        ignored = ignored_signals()
    if _ignored[0] is not ignored:
        _ignored = (ignored, frozenset(id(signal) for signal in ignored))
    return _ignored[1]


#: The recorders of the enclosing ``record()`` blocks in this context (innermost
#: last), or None when nothing records. Read by the hooks on every dispatch.
active_recorders: ContextVar[tuple[Recorder, ...] | None] = ContextVar("signaltrace_recorders", default=None)
# Its ``get``, bound once, for modules that import it: CPython 3.12+ calls a method of a
# name imported with ``from`` without the method-call shortcut (it takes the name for a
# module), so ``active_recorders.get()`` there makes a bound-method object per call, on every dispatch.
get_active_recorders = active_recorders.get

#: How many ``record()`` blocks are open in the whole process. While none is, the hooks
#: know nothing records without reading ``active_recorders`` (that read was about a third
#: of an idle ``send``'s overhead). A block never closed leaves it above zero: the hooks
#: then read the context variable, as they always may.
open_count = [0]
_open_count_lock = threading.Lock()


def _new_lock_after_fork() -> None:
    """A child forked while another thread held the lock would wait for it forever."""
    global _open_count_lock
    _open_count_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_new_lock_after_fork)


# ------------------------------------------------------------------ observers


class _ObserverSet:
    """The registered observers and, per event, the ``(index, method)`` pairs to call.

    Replaced whole when observers change, never per dispatch; a dispatch keeps the
    set it started under, so its views and handlers always agree.
    """

    __slots__ = (
        "call_finished",
        "call_started",
        "count",
        "dispatch_finished",
        "dispatch_started",
        "found",
        "kwargs",
    )

    def __init__(self, observers: Sequence[Any], methods: dict[str, tuple[tuple[int, Any], ...]]) -> None:
        self.count = len(observers)
        self.dispatch_started = methods["dispatch_started"]
        self.call_started = methods["call_started"]
        self.call_finished = methods["call_finished"]
        self.dispatch_finished = methods["dispatch_finished"]
        self.found = methods["found"]
        #: Observers whose ``needs_kwargs`` may be true (asked per config generation).
        self.kwargs = tuple(observers)


#: The observers now, or None: the hooks' ``observed is None`` test is all an
#: unobserved dispatch pays.
observed: _ObserverSet | None = None

# Whether an observer needs kwargs, decided again when observers change and when the
# config may have (its generation), never per dispatch.
_kwargs_wanted = False
_kwargs_generation = -1


def set_observers(observers: Sequence[Any], methods: dict[str, tuple[tuple[int, Any], ...]]) -> None:
    """Called by :mod:`signaltrace.core.observers` after observers were added or removed."""
    global observed, _kwargs_generation
    _kwargs_generation = -1
    observed = _ObserverSet(observers, methods) if observers else None


def _decide_kwargs(observer_set: _ObserverSet) -> None:
    global _kwargs_wanted, _kwargs_generation
    generation = conf.generation
    wanted = False
    for observer in observer_set.kwargs:
        try:
            wanted = bool(observer.needs_kwargs)
        except Exception:  # noqa: BLE001 - an observer must not break a dispatch
            report_internal_error(f"{type(observer).__name__}.needs_kwargs")
            wanted = True
        if wanted:
            break
    _kwargs_wanted, _kwargs_generation = wanted, generation


def _observer_failed(method: Any) -> None:
    """Log an observer's exception as ``ObserverClass.event``."""
    owner = getattr(method, "__self__", method)
    report_internal_error(f"{type(owner).__name__}.{getattr(method, '__name__', '?')}")


class LiveDispatch:
    """One observer's view of a dispatch while it runs.

    ``state`` is what the observer's ``dispatch_started`` returned for it. What every
    observer reads on every dispatch is copied into plain attributes when the view is
    made (no property call each); the rest is read from the record when asked. The
    core drops its views when the dispatch ends, so a kept record never holds its
    sender strongly through them.
    """

    __slots__ = (
        "_index",
        "_record",
        "depth",
        "method",
        "receiver_count",
        "sender",
        "signal",
        "start_ns",
        "state",
    )

    def __init__(self, record: Record, index: int) -> None:
        self._record = record
        self._index = index
        self.state: Any = None
        #: The signal sent.
        self.signal: Signal = record[D_SIGNAL]
        sender = record[D_SENDER]
        #: The sender (None once a weakly held sender is gone).
        self.sender: Any = sender if record[D_SENDER_GONE] is None else sender()
        #: ``send``, ``send_robust``, ``asend`` or ``asend_robust``.
        self.method: str = record[D_METHOD]
        #: How many receivers deep it was sent (0: outside any receiver).
        self.depth: int = record[D_DEPTH]
        #: Live receivers it calls.
        self.receiver_count: int = record[D_RECEIVER_COUNT]
        #: ``time.perf_counter_ns()`` when the dispatch started.
        self.start_ns: int = record[D_START]

    @property
    def signal_name(self) -> str:
        return signal_name(self.signal)

    @property
    def sender_name(self) -> str:
        return _sender_label(self._record)

    @property
    def is_robust(self) -> bool:
        return self.method in _ROBUST

    @property
    def end_ns(self) -> int | None:
        """``time.perf_counter_ns()`` when it ended, or None while it runs."""
        return self._record[D_END]

    @property
    def duration_ns(self) -> int | None:
        end = self._record[D_END]
        return None if end is None else end - self.start_ns

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
    def transaction(self) -> Transaction | None:
        """The transaction it runs in (model signals, or any signal inside an atomic block)."""
        return _transaction(self._record)

    @property
    def parent(self) -> LiveCall | None:
        """This observer's view of the receiver call this dispatch was sent from (None at depth 0)."""
        call = self._record[D_PARENT_CALL]
        if call is None:
            return None
        parent_dispatch = self._record[D_PARENT_DISPATCH]
        if call[C_OBSERVERS] is not self._record[D_OBSERVERS]:
            # Observers changed in between: no state of this one.
            return LiveCall(call, self._index, parent_dispatch)
        return _call_view(call, self._index, parent_dispatch)


class LiveCall:
    """One observer's view of a receiver call while it runs.

    ``state`` is what the observer's ``call_started`` returned for it. As with
    :class:`LiveDispatch`, what is read on every call is a plain attribute.
    """

    __slots__ = ("_dispatch", "_index", "_record", "function_id", "info", "is_async", "start_ns", "state")

    def __init__(self, record: Record, index: int, dispatch: Record) -> None:
        self._record = record
        self._index = index
        self._dispatch = dispatch  # its dispatch's record (a call record does not point back)
        self.state: Any = None
        #: ``(receiver_name, file, line)``: one tuple, the same object for every call of a
        #: receiver function while it lives (a cheap cache key).
        self.info: tuple[str, str, int] = record[C_INFO]
        #: ``id()`` of the receiver function (a bound method's ``__func__``).
        self.function_id: int = record[C_FUNCTION_ID]
        self.is_async: bool = record[C_IS_ASYNC]
        self.start_ns: int = record[C_START]

    @property
    def receiver_name(self) -> str:
        return self.info[0]

    @property
    def file(self) -> str:
        return self.info[1]

    @property
    def line(self) -> int:
        return self.info[2]

    @property
    def dispatch_uid(self) -> Any:
        """The ``dispatch_uid`` the receiver was connected with, or None."""
        uids = dispatch_uids(self._dispatch[D_SIGNAL])
        return uids.get(self.function_id) if uids else None

    @property
    def end_ns(self) -> int | None:
        return self._record[C_END]

    @property
    def duration_ns(self) -> int | None:
        end = self._record[C_END]
        return None if end is None else end - self.start_ns

    @property
    def exception(self) -> BaseException | None:
        return self._record[C_EXCEPTION]

    @property
    def swallowed(self) -> bool:
        """True when a ``send_robust``/``asend_robust`` caught the exception."""
        return is_swallowed(self._record[C_EXCEPTION], self._dispatch[D_METHOD])

    @property
    def dispatch(self) -> LiveDispatch:
        """This observer's view of the dispatch that called the receiver."""
        dispatch = self._dispatch
        view = _pick(dispatch[D_VIEWS], self._index)
        return LiveDispatch(dispatch, self._index) if view is None else view


_ROBUST = frozenset({"send_robust", "asend_robust"})


def _pick(views: Any, index: int) -> Any:
    """The view at ``index`` of a record's views: the view itself when there is one
    observer (no list is made for it), else an item of the list; None if absent."""
    if type(views) is list:
        return views[index] if index < len(views) else None
    return views if index == 0 else None


def _call_view(call: Record, index: int, dispatch: Record) -> LiveCall:
    view = _pick(call[C_VIEWS], index)
    return LiveCall(call, index, dispatch) if view is None else view  # None: started before this observer


# ------------------------------------------------------------------ writing records


def _forget_closed(recorders: tuple[Recorder, ...]) -> None:
    """This context still lists recorders a ``record()`` block closed from another context:
    list only the open ones (None if none is), so it stops paying for recording."""
    still_open = tuple(recorder for recorder in recorders if recorder.end_ns is None)
    active_recorders.set(still_open or None)


def current_recorders() -> tuple[Recorder, ...] | None:
    """The recorders of this context's open blocks (or None), without a context read
    while no block is open anywhere (:data:`open_count`)."""
    return active_recorders.get() if open_count[0] else None


def is_recording() -> bool:
    """Whether a ``record()`` block is open in this context."""
    recorders = current_recorders()
    return recorders is not None and any(recorder.end_ns is None for recorder in recorders)


# What one kept dispatch is taken to hold, for MAX_TRACE_BYTES: its record, plus per
# kwarg and per receiver call. An upper estimate for common dispatches: kwarg texts are
# cut at MAX_REPR_LENGTH and containers at a few dozen items when recorded
# (signaltrace.core.rendering), so no kwarg holds an unbounded value.
_RECORD_BYTES = 400
_ITEM_BYTES = 150
# The estimate for a dispatch with n kwargs and receivers together, made once for small n:
# on the hot path, arithmetic on numbers past 256 makes a new int object each time.
_DISPATCH_BYTES = tuple(_RECORD_BYTES + _ITEM_BYTES * n for n in range(64))
_FINDING_BYTES = 400


def keep_finding(finding: Any, size: int = _FINDING_BYTES, public: Callable[[], Any] | None = None) -> None:
    """Keep ``finding`` in every open ``record()`` block of this context, and tell observers.

    ``size`` is its estimated cost in bytes, counted against ``MAX_TRACE_BYTES``; a
    block with no room left drops it (counted in ``Trace.dropped``). Observers are
    given ``public()`` when the kept object is an internal record (see :func:`announce`).
    """
    for recorder in current_recorders() or ():
        if recorder.end_ns is not None:
            continue
        if recorder.bytes_left < size:
            recorder.dropped += 1
            continue
        recorder.bytes_left -= size
        recorder.findings.append(finding)
    announce(finding if public is None else public)


def announce(finding: Any) -> None:
    """Tell observers about a finding, new or changed (an ``on_commit`` callback that ran).

    ``finding`` may be a callable that makes the object observers get: it is called
    only when someone observes.
    """
    observer_set = observed
    if observer_set is None:
        return
    if callable(finding):
        try:
            finding = finding()
        except Exception:  # noqa: BLE001
            report_internal_error("announce")
            return
    for _index, handler in observer_set.found:
        try:
            handler(finding)
        except Exception:  # noqa: BLE001 - an observer must not break the host
            _observer_failed(handler)


def current_receiver() -> tuple[Record | None, dict[str, Any] | None, tuple[str, str, int] | None]:
    """``(call record, dispatch kwargs, (name, file, line))`` of the receiver running now.

    The record is None when nothing records or observes the dispatch; all three are
    None outside receivers. Not for the hot path: it names the receiver.
    """
    cell = get_frame_cell()
    frame = None if cell is None else cell[CELL_FRAME]
    if frame is None:
        return None, None, None
    call = frame[F_CALL]
    if call is not None:
        return call, frame[F_NAMED], call[C_INFO]
    receiver = frame[F_RECEIVER]
    return None, frame[F_NAMED], None if receiver is None else receiver_info(receiver)


def transaction_now(named: dict[str, Any] | None) -> Any:
    """What :func:`~signaltrace.core.atomics.block_for` says for a dispatch with ``named``
    kwargs sent now (an ``AtomicBlock``, an alias, or None)."""
    blocks = open_blocks()
    if not blocks:
        return None if named is None else _alias(named.get("using"))
    return block_for(blocks, named or {})


def is_watched() -> bool:
    """Whether a finding made now would reach anyone: a ``record()`` block or an observer."""
    return observed is not None or is_recording()


# id(sender) -> (weak reference, label) for class and function senders of kept records:
# the label outlives the sender. The reference's callback drops the entry when the sender
# dies, before its id can be reused; the reference is also the record's hold on it.
_sender_labels: dict[int, tuple[weakref.ref[Any], str]] = {}
# The entry of the last such sender found there: a save sends pre_save and post_save
# from one model class, one after the other, so it is tried first.
_last_label: tuple[Any, str] = (lambda: None, "")
# sender type -> whether its instances are named by a label (classes and functions).
_labelled_kinds: dict[type, bool] = {}
_LABELLED = (type, types.FunctionType, types.MethodType, types.BuiltinFunctionType)


def _is_labelled_kind(sender_type: type) -> bool:
    labelled = issubclass(sender_type, _LABELLED)
    if len(_labelled_kinds) >= MAX_CACHED:
        _labelled_kinds.clear()
    _labelled_kinds[sender_type] = labelled
    return labelled


def _hold_sender(sender: Any) -> tuple[Any, Any]:
    """How a kept record holds a sender first seen: ``(value, what names it when gone)``, the
    second None when the value is the sender itself rather than a weak reference to it.

    A class or function is named now, so the trace names it after it is gone; any
    other object is held weakly and named by its type, or kept itself when it
    cannot be held weakly.
    """
    sender_type = type(sender)
    if not sender_type.__weakrefoffset__:
        return sender, None
    named_by_label = _labelled_kinds.get(sender_type)
    if named_by_label is None:
        named_by_label = _is_labelled_kind(sender_type)
    if not named_by_label:
        return weakref.ref(sender), sender_type
    key = id(sender)
    reference = weakref.ref(sender, lambda _ref, key=key: _sender_labels.pop(key, None))
    _sender_labels[key] = entry = (reference, sender_name(sender))
    return entry


_NO_KWARGS: tuple[tuple[str, ...], list[Any]] = ((), [])
# Kwargs not snapshotted: nothing records the dispatch and no observer needs them.
_UNRECORDED_KWARGS: tuple[tuple[str, ...], list[Any]] = ((), [])
# The calls of a dispatch that found no receivers: shared, never appended to.
_NO_CALLS: tuple[()] = ()


def begin_dispatch(
    recorders: tuple[Recorder, ...] | None,
    signal: Signal,
    sender: Any,
    named: dict[str, Any],
    method: str,
    parent: list[Any] | None,
    receiver_count: int,
) -> Record | None:
    """Start the record of one dispatch, or return None when it is not kept.

    Called when recording or observed. Not kept: an ignored signal, or every
    active recorder at its cap (the dispatch is then counted in ``dropped``) and
    no observer. Observers only hear of dispatches with live receivers. A dispatch
    without receivers ("sent, but nobody listened": the hooks call this only while
    recording) ends as it begins.
    """
    global _last_label
    observer_set = observed if receiver_count else None
    try:
        if recorders is None:
            # Only observers can see this dispatch.
            if observer_set is None or id(signal) in ignored_ids():
                return None
            keeping: Sequence[Recorder] = ()
            sole = None
            if not named:
                kwargs = _NO_KWARGS
            else:
                if _kwargs_generation != conf.generation:
                    _decide_kwargs(observer_set)
                # Snapshotted only if an observer reads them.
                kwargs = (
                    snapshot_kwargs(named, sensitive_pattern(), False)
                    if _kwargs_wanted
                    else _UNRECORDED_KWARGS
                )
        else:
            innermost = recorders[-1]
            if signal is not innermost.kept_signal and signal is not innermost.kept_signal_before:
                if id(signal) in innermost.ignored:
                    return None
                innermost.kept_signal_before, innermost.kept_signal = innermost.kept_signal, signal
            try:
                size = _DISPATCH_BYTES[len(named) + receiver_count]
            except IndexError:  # 64 kwargs and receivers or more
                size = _RECORD_BYTES + _ITEM_BYTES * (len(named) + receiver_count)
            if (
                len(recorders) == 1
                and len(innermost.records) < innermost.max_dispatches
                and innermost.bytes_left >= size
            ):
                keeping = recorders  # the common case, without building a list
                sole = innermost
                innermost.bytes_left -= size
            else:
                keeping, sole = [], None
                for recorder in recorders:
                    if recorder.end_ns is not None:
                        _forget_closed(recorders)  # closed from another context (see record())
                        continue
                    if len(recorder.records) < recorder.max_dispatches and recorder.bytes_left >= size:
                        keeping.append(recorder)
                        recorder.bytes_left -= size
                    else:
                        recorder.dropped += 1
                if not keeping and observer_set is None:
                    return None
            kwargs = (
                snapshot_kwargs(named, innermost.sensitive, innermost.repr_objects) if named else _NO_KWARGS
            )
        if sender is None or not keeping:
            # Nothing of ours keeps the record after the dispatch.
            sender_value, sender_gone = sender, None
        else:
            # A kept record outlives the dispatch: it holds the sender weakly.
            entry = _last_label
            if entry[0]() is not sender:
                entry = _sender_labels.get(id(sender))
                if entry is not None and entry[0]() is sender:
                    _last_label = entry
                else:
                    entry = None
            # A class or function named before, or a sender first seen.
            sender_value, sender_gone = entry if entry is not None else _hold_sender(sender)
        if parent is None:
            parent_call = parent_dispatch = None
            depth = 0
        else:
            parent_call, parent_dispatch, depth = parent[F_CALL], parent[F_RECORD], depth_of(parent)
        cell = get_block_cell()  # atomics.open_blocks(), inlined: it runs per dispatch
        if cell is None or not cell[0] or cell[1] != get_ident():  # none, or another thread's
            if recorders is not None:
                transaction = None  # autocommit: a kept snapshot has the alias (see _transaction)
            else:
                using = named.get("using")  # autocommit, seen by observers only: the alias now
                transaction = using if type(using) is str else None
        else:
            transaction = block_for(cell[0], named)
        start = perf_counter_ns()
        record = [
            signal,
            sender_value,
            sender_gone,
            method,
            parent_call,
            depth,
            start,
            None if receiver_count else start,  # nobody listened: it ended as it began
            kwargs,
            [] if receiver_count else _NO_CALLS,
            None,
            receiver_count,
            observer_set,
            None,
            transaction,
            parent_dispatch,
        ]
        if keeping:
            if sole is not None:
                sole.records.append(record)
            else:
                for recorder in keeping:
                    recorder.records.append(record)
    except Exception:  # noqa: BLE001 - never break the host app
        report_internal_error("begin_dispatch")
        return None
    if observer_set is not None:
        single = observer_set.count == 1
        views = record[D_VIEWS] = (
            LiveDispatch(record, 0)
            if single
            else [LiveDispatch(record, index) for index in range(observer_set.count)]
        )
        for index, handler in observer_set.dispatch_started:
            view = views if single else views[index]
            try:
                view.state = handler(view)
            except Exception:  # noqa: BLE001 - an observer must not break a dispatch
                _observer_failed(handler)
    return record


def end_dispatch(dispatch: Record) -> None:
    """Close the record of a dispatch whose receivers have all returned (or raised)."""
    dispatch[D_END] = perf_counter_ns()
    if dispatch[D_OBSERVERS] is not None:
        observer_set = dispatch[D_OBSERVERS]
        views = dispatch[D_VIEWS]
        dispatch[D_VIEWS] = None  # views hold the sender: a kept record must not
        single = observer_set.count == 1
        for index, handler in observer_set.dispatch_finished:
            try:
                handler(views if single else views[index])
            except Exception:  # noqa: BLE001
                _observer_failed(handler)


def begin_call(dispatch: Record, receiver: Any, is_async: bool = False) -> Record:
    """Start the record of one receiver call inside ``dispatch``."""
    function_id = id(receiver)  # a function; a bound method is found by its __func__ below
    cached = cached_receiver_info(function_id)
    if cached is not None:
        info = cached[1]  # never None in the cache
    else:
        function_id, info = function_info(receiver)
        if info is None:
            try:
                info = receiver_info(receiver)
            except Exception:  # noqa: BLE001
                report_internal_error("receiver_info")
                info = (repr(type(receiver)), "", 0)
    observer_set = dispatch[D_OBSERVERS]
    call = [info, function_id, is_async, perf_counter_ns(), None, None, observer_set, None]
    dispatch[D_CALLS].append(call)
    if observer_set is not None:
        single = observer_set.count == 1
        views = call[C_VIEWS] = (
            LiveCall(call, 0, dispatch)
            if single
            else [LiveCall(call, index, dispatch) for index in range(observer_set.count)]
        )
        for index, handler in observer_set.call_started:
            view = views if single else views[index]
            try:
                view.state = handler(view)
            except Exception:  # noqa: BLE001
                _observer_failed(handler)
    return call


def end_call(call: Record, exception: BaseException | None = None) -> None:
    """Close the record of a receiver call, with the exception it raised if any."""
    call[C_END] = perf_counter_ns()
    if exception is not None:
        call[C_EXCEPTION] = exception
    if call[C_VIEWS] is not None:
        views = call[C_VIEWS]
        call[C_VIEWS] = None
        observer_set = call[C_OBSERVERS]
        single = observer_set.count == 1
        for index, handler in observer_set.call_finished:
            try:
                handler(views if single else views[index])
            except Exception:  # noqa: BLE001
                _observer_failed(handler)


def record_stopped_dispatch(
    loop: Loop,
    recorders: tuple[Recorder, ...] | None,
    signal: Signal,
    sender: Any,
    named: dict[str, Any],
    method: str,
    parent: Any,
    receiver_count: int,
) -> None:
    """Record the loop on every recorder and, if it is raised, the dispatch it stops.

    The stopped dispatch never runs its receivers: its record shows where it was.
    """
    for recorder in recorders or ():
        if recorder.end_ns is None:
            recorder.loops.append(loop)
    if loop.action == "raised":
        dispatch = begin_dispatch(recorders, signal, sender, named, method, parent, receiver_count)
        if dispatch is not None:
            dispatch[D_LOOP] = loop
            end_dispatch(dispatch)


# ------------------------------------------------------------------ reading records


def _alias(using: Any) -> str | None:
    """A model signal's ``using`` kwarg, the alias of its autocommit transaction, if it is a name."""
    return using if type(using) is str else None


def _transaction(record: Record) -> Transaction | None:
    """The transaction a dispatch ran in: its block, or autocommit on its kwargs' ``using`` alias."""
    recorded = record[D_TX]
    if recorded is None and record[D_KWARGS] is not _UNRECORDED_KWARGS:
        recorded = _alias(snapshot_get(record[D_KWARGS], "using"))
    return transaction_of(recorded)


def _sender_label(record: Record) -> str:
    sender = record[D_SENDER]
    if record[D_SENDER_GONE] is not None:  # held weakly
        sender = sender()
        if sender is None:
            gone = record[D_SENDER_GONE]
            # A class or function was named when sent; any other object by its type, as
            # sender_name() names it while it lives.
            return gone if type(gone) is str else f"<{dotted_path(gone)} object>"
    try:
        return sender_name(sender)
    except Exception:  # noqa: BLE001
        return "<unnamed>"


class _Builder:
    """Turns one recorder's plain records into linked objects."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.calls_by_record: dict[int, ReceiverCall] = {}
        self.repr_limit = repr_limit()

    def build(self) -> list[Dispatch]:
        """Records are in the order their dispatches began, so a receiver call is built
        before the dispatches it sent; a call links to its children here (records point
        only from child to parent: no reference cycles, nothing left for the collector)."""
        dispatches = []
        children: dict[int, list[Dispatch]] = {}  # id(call record) -> the dispatches it sent
        for record in list(self.recorder.records):
            dispatch = self._dispatch(record)
            dispatches.append(dispatch)
            if record[D_PARENT_CALL] is not None:
                children.setdefault(id(record[D_PARENT_CALL]), []).append(dispatch)
        for record_id, call in self.calls_by_record.items():
            if call.dispatch is not None:  # a call of this trace (not one it was sent from)
                call.dispatches = children.get(record_id, [])
        return dispatches

    @staticmethod
    def _dispatch_uid(signal: Signal, function_id: int) -> Any:
        try:
            return dispatch_uids(signal).get(function_id)
        except Exception:  # noqa: BLE001 - a trace is read whatever the receivers hold
            return None

    def _call(self, record: Record, owner: Dispatch | None, signal: Signal) -> ReceiverCall:
        existing = self.calls_by_record.get(id(record))
        if existing is not None:
            return existing
        name, file, line = record[C_INFO]
        end = record[C_END] if record[C_END] is not None else record[C_START]
        call = ReceiverCall(
            receiver_name=name,
            file=file,
            line=line,
            dispatch_uid=self._dispatch_uid(signal, record[C_FUNCTION_ID]),
            is_async=record[C_IS_ASYNC],
            start_ns=record[C_START] - self.recorder.start_ns,
            duration_ns=end - record[C_START],
            exception=record[C_EXCEPTION],
            dispatch=owner,
        )
        self.calls_by_record[id(record)] = call
        return call

    def _dispatch(self, record: Record) -> Dispatch:
        end = record[D_END] if record[D_END] is not None else record[D_START]
        dispatch = Dispatch(
            signal=record[D_SIGNAL],
            signal_name=signal_name(record[D_SIGNAL]),
            sender_name=_sender_label(record),
            method=record[D_METHOD],
            depth=record[D_DEPTH],
            start_ns=record[D_START] - self.recorder.start_ns,
            duration_ns=end - record[D_START],
            kwargs=render_kwargs(record[D_KWARGS], self.repr_limit),
            loop=record[D_LOOP],
            transaction=_transaction(record),
            _sender=record[D_SENDER],
            _sender_is_weak=record[D_SENDER_GONE] is not None,
        )
        parent_record = record[D_PARENT_CALL]
        if parent_record is not None:
            dispatch.parent = self._call(parent_record, None, record[D_PARENT_DISPATCH][D_SIGNAL])
        dispatch.calls = [self._call(call, dispatch, record[D_SIGNAL]) for call in list(record[D_CALLS])]
        for call in dispatch.calls:
            call.dispatch = dispatch
        return dispatch
