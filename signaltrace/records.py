"""What a trace holds, as objects: ``Trace``, ``Dispatch`` and ``ReceiverCall``.

They are built from the plain-list records of :mod:`signaltrace.recording` when a
trace is read, so recording stays cheap. Times are nanoseconds; ``start_ns`` is
relative to the start of the ``record()`` block. This API is a contract for the
toolbar panel, the OpenTelemetry spans, the test helpers and users.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from signaltrace.conf import repr_limit
from signaltrace.naming import dispatch_uids, dotted_path, sender_name, signal_name
from signaltrace.recording import (
    C_CHILDREN,
    C_DISPATCH,
    C_END,
    C_EXCEPTION,
    C_FUNCTION_ID,
    C_INFO,
    C_IS_ASYNC,
    C_START,
    D_CALLS,
    D_DEPTH,
    D_END,
    D_KWARGS,
    D_LOOP,
    D_METHOD,
    D_PARENT_CALL,
    D_SENDER,
    D_SENDER_IS_WEAK,
    D_SENDER_TYPE,
    D_SIGNAL,
    D_START,
)
from signaltrace.rendering import render_kwargs, safe_repr, truncate

if TYPE_CHECKING:
    from django.dispatch import Signal

    from signaltrace.loops import Loop
    from signaltrace.recording import Recorder

ROBUST_METHODS = frozenset({"send_robust", "asend_robust"})


def is_swallowed(exception: BaseException | None, method: str) -> bool:
    """Whether a receiver's ``exception`` was caught by its dispatch (``send_robust``)
    rather than raised: robust methods catch ``Exception``, not ``BaseException``."""
    return isinstance(exception, Exception) and method in ROBUST_METHODS


@dataclass(eq=False)
class ReceiverCall:
    """One receiver called by one dispatch."""

    receiver_name: str
    file: str
    line: int
    dispatch_uid: Any
    is_async: bool
    start_ns: int
    duration_ns: int
    exception: BaseException | None
    dispatch: Dispatch | None = field(default=None, repr=False)
    dispatches: list[Dispatch] = field(default_factory=list, repr=False)

    @property
    def swallowed(self) -> bool:
        """True when ``send_robust`` caught this receiver's exception."""
        return self.dispatch is not None and is_swallowed(self.exception, self.dispatch.method)

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""


@dataclass(eq=False)
class Dispatch:
    """One ``send``/``send_robust``/``asend``/``asend_robust`` of one signal."""

    signal: Signal
    signal_name: str
    sender_name: str
    method: str
    depth: int
    start_ns: int
    duration_ns: int
    kwargs: dict[str, str]
    calls: list[ReceiverCall] = field(default_factory=list)
    parent: ReceiverCall | None = field(default=None, repr=False)
    loop: Loop | None = None
    _sender: Any = field(default=None, repr=False)
    _sender_is_weak: bool = field(default=False, repr=False)

    @property
    def sender(self) -> Any:
        """The sender object, or None once a weakly referenced sender is gone."""
        return self._sender() if self._sender_is_weak else self._sender

    @property
    def receivers_count(self) -> int:
        return len(self.calls)


def format_exception(exception: BaseException | None, limit: int = 4000) -> str:
    """The traceback text of a recorded exception (empty for None)."""
    if exception is None:
        return ""
    try:
        text = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__))
    except Exception:  # noqa: BLE001
        text = safe_repr(exception)
    return truncate(text, limit)


class _Builder:
    """Turns one recorder's plain records into linked objects."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.calls_by_record: dict[int, ReceiverCall] = {}
        self.children_by_call: dict[int, list[list[Any]]] = {}
        self.repr_limit = repr_limit()

    def build(self) -> list[Dispatch]:
        dispatches = []
        by_record: dict[int, Dispatch] = {}
        for record in list(self.recorder.records):
            dispatch = self._dispatch(record)
            by_record[id(record)] = dispatch
            dispatches.append(dispatch)
        for record in list(self.recorder.records):
            dispatch = by_record[id(record)]
            for call in dispatch.calls:
                children = self.children_by_call.get(id(call), [])
                call.dispatches = [by_record[id(child)] for child in children if id(child) in by_record]
        return dispatches

    @staticmethod
    def _dispatch_uid(signal: Signal, function_id: int) -> Any:
        try:
            return dispatch_uids(signal).get(function_id)
        except Exception:  # noqa: BLE001 - a trace is read whatever the receivers hold
            return None

    def _call(self, record: list[Any], owner: Dispatch | None) -> ReceiverCall:
        existing = self.calls_by_record.get(id(record))
        if existing is not None:
            return existing
        name, file, line = record[C_INFO]
        end = record[C_END] if record[C_END] is not None else record[C_START]
        signal = record[C_DISPATCH][D_SIGNAL]
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
        self.children_by_call[id(call)] = record[C_CHILDREN] or []
        return call

    def _dispatch(self, record: list[Any]) -> Dispatch:
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
            _sender=record[D_SENDER],
            _sender_is_weak=record[D_SENDER_IS_WEAK],
        )
        parent_record = record[D_PARENT_CALL]
        if parent_record is not None:
            dispatch.parent = self._call(parent_record, None)
        dispatch.calls = [self._call(call, dispatch) for call in list(record[D_CALLS])]
        for call in dispatch.calls:
            call.dispatch = dispatch
        return dispatch


def _sender_label(record: list[Any]) -> str:
    sender = record[D_SENDER]
    if record[D_SENDER_IS_WEAK]:
        sender = sender()
        if sender is None:
            sender_type = record[D_SENDER_TYPE]
            if isinstance(sender_type, type) and issubclass(sender_type, type):
                return "<collected class>"
            return f"<collected {dotted_path(sender_type)} object>"
    try:
        return sender_name(sender)
    except Exception:  # noqa: BLE001
        return "<unnamed>"


class Trace:
    """Everything dispatched inside one ``record()`` block.

    Objects are built on first read after the block ends (and rebuilt on each read
    while it is still open).
    """

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._built: list[Dispatch] | None = None

    @property
    def dispatches(self) -> list[Dispatch]:
        """Every dispatch kept, in start order, nested ones included."""
        if self._built is not None:
            return self._built
        built = _Builder(self._recorder).build()
        if self._recorder.end_ns is not None:
            self._built = built
        return built

    @property
    def roots(self) -> list[Dispatch]:
        """The dispatches sent outside any receiver (depth 0)."""
        return [dispatch for dispatch in self.dispatches if dispatch.depth == 0]

    @property
    def dropped(self) -> int:
        """Dispatches not kept because the trace reached ``MAX_DISPATCHES``."""
        return self._recorder.dropped

    @property
    def loops(self) -> list[Loop]:
        """Loops detected while recording."""
        return list(self._recorder.loops)

    @property
    def duration_ns(self) -> int:
        """Length of the ``record()`` block so far."""
        from time import perf_counter_ns

        end = self._recorder.end_ns if self._recorder.end_ns is not None else perf_counter_ns()
        return end - self._recorder.start_ns

    def __len__(self) -> int:
        return len(self._recorder.records)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable, redacted form: flat dispatches linked by index."""
        dispatches = self.dispatches
        index = {id(dispatch): number for number, dispatch in enumerate(dispatches)}
        return {
            "version": 1,
            "duration_ns": self.duration_ns,
            "dropped": self.dropped,
            "loops": [loop.to_dict() for loop in self.loops],
            "dispatches": [_dispatch_dict(d, number, index) for number, d in enumerate(dispatches)],
        }


def exception_type_name(exception: BaseException) -> str:
    """``module.QualName`` of an exception's class, as traces and reports show it."""
    return f"{type(exception).__module__}.{type(exception).__qualname__}"


def _exception_dict(call: ReceiverCall) -> dict[str, Any] | None:
    exception = call.exception
    if exception is None:
        return None
    return {
        "type": exception_type_name(exception),
        "message": str_or_repr(exception),
        "traceback": format_exception(exception),
        "swallowed": call.swallowed,
    }


def str_or_repr(exception: BaseException) -> str:
    """``str(exception)``, never raising, truncated."""
    try:
        return truncate(str(exception), 500)
    except Exception:  # noqa: BLE001
        return safe_repr(exception, 500)


def _uid_text(dispatch_uid: Any) -> str | None:
    if dispatch_uid is None or isinstance(dispatch_uid, str):
        return dispatch_uid
    return safe_repr(dispatch_uid)


def _dispatch_dict(dispatch: Dispatch, number: int, index: dict[int, int]) -> dict[str, Any]:
    parent = None
    if dispatch.parent is not None and dispatch.parent.dispatch is not None:
        owner = dispatch.parent.dispatch
        if id(owner) in index:
            parent = {"dispatch": index[id(owner)], "call": owner.calls.index(dispatch.parent)}
    return {
        "id": number,
        "signal": dispatch.signal_name,
        "sender": dispatch.sender_name,
        "method": dispatch.method,
        "depth": dispatch.depth,
        "start_ns": dispatch.start_ns,
        "duration_ns": dispatch.duration_ns,
        "kwargs": dispatch.kwargs,
        "parent": parent,
        "loop": dispatch.loop.to_dict() if dispatch.loop is not None else None,
        "calls": [
            {
                "receiver": call.receiver_name,
                "file": call.file,
                "line": call.line,
                "dispatch_uid": _uid_text(call.dispatch_uid),
                "is_async": call.is_async,
                "start_ns": call.start_ns,
                "duration_ns": call.duration_ns,
                "exception": _exception_dict(call),
                "dispatches": [index[id(child)] for child in call.dispatches if id(child) in index],
            }
            for call in dispatch.calls
        ],
    }
