"""What a trace holds, as objects: ``Trace``, ``Dispatch`` and ``ReceiverCall``.

They are built from the store's plain-list records (:mod:`signaltrace.core.store`)
when a trace is read, so recording stays cheap. Times are nanoseconds; ``start_ns`` is
relative to the start of the ``record()`` block. This API is a contract for the
toolbar panel, the OpenTelemetry spans, the test helpers and users.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field, replace
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from signaltrace.core.effects import (
    PENDING,
    BypassedWrite,
    Hazard,
    OnCommitCallback,
    ReceiverRef,
    SideEffect,
    Transaction,
    hazard_of,
)
from signaltrace.core.rendering import redact_credentials, safe_repr, truncate

if TYPE_CHECKING:
    from django.dispatch import Signal

    from signaltrace.core.loops import Loop
    from signaltrace.core.store import Recorder

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
    #: Callbacks this receiver registered with ``on_commit`` (docs/transactions.md).
    on_commit_callbacks: list[OnCommitCallback] = field(default_factory=list, repr=False)
    #: Celery tasks it published and e-mails it sent.
    side_effects: list[SideEffect] = field(default_factory=list, repr=False)
    #: ``bulk_create``/``bulk_update``/``update`` calls it made that skipped save receivers.
    bypassed_writes: list[BypassedWrite] = field(default_factory=list, repr=False)

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
    #: The transaction it ran in: for model signals (autocommit or not), and for any
    #: signal sent inside an application ``atomic()`` block; else None.
    transaction: Transaction | None = None
    _sender: Any = field(default=None, repr=False)
    _sender_is_weak: bool = field(default=False, repr=False)

    @property
    def sender(self) -> Any:
        """The sender object, or None once a weakly referenced sender is gone."""
        return self._sender() if self._sender_is_weak else self._sender

    @property
    def receivers_count(self) -> int:
        return len(self.calls)


#: Frames of each traceback :func:`format_exception` formats: the last ones, where the error is.
MAX_TRACEBACK_FRAMES = 30
_TRACEBACK_HEADER = "Traceback (most recent call last):\n"
# Key of the formatted text memoized in a recorded exception's ``__dict__``.
_FORMATTED = "_signaltrace_formatted"


def format_exception(exception: BaseException | None, limit: int = 4000) -> str:
    """The traceback text of a recorded exception (empty for None).

    Bounded, because a trace is read (``to_dict()``, the panel) once per receiver call
    and one exception can be stored on hundreds of calls (a loop's ``RecursionError``
    with a 1,000-frame traceback, formatted once per call, took half a minute):

    * only the last :data:`MAX_TRACEBACK_FRAMES` frames of each traceback are
      formatted, and the text says how many earlier ones are not shown;
    * the text is cut to ``limit`` characters keeping its end (the error) and the
      line saying frames were left out;
    * it is formatted once per exception object: the text is memoized in the
      exception's own ``__dict__`` with the ``id`` of the traceback it was made from
      (a re-raised exception has a new one) and ``limit``. Exceptions and tracebacks
      cannot be weakly referenced, and a process-wide cache holding them would keep
      their frames (and locals) alive after the trace; the exception's
      ``__eq__``/``__hash__``, which user classes may define, are never called.
    """
    if exception is None:
        return ""
    try:
        state = exception.__dict__  # every BaseException has one
        key = (id(exception.__traceback__), limit)
        memo = state.get(_FORMATTED)
        if type(memo) is tuple and memo[0] == key:
            return memo[1]
    except Exception:  # noqa: BLE001 - a hostile exception is formatted without a memo
        state = None
    text = _format_traceback(exception, limit)
    if state is not None:
        try:
            state[_FORMATTED] = (key, text)
        except Exception:  # noqa: BLE001
            pass
    return text


def _frame_count(tb: Any) -> int:
    count = 0
    while tb is not None:
        count += 1
        tb = tb.tb_next
    return count


def _format_traceback(exception: BaseException, limit: int) -> str:
    """The last :data:`MAX_TRACEBACK_FRAMES` frames of each traceback, cut to ``limit``.

    Formatted here rather than by :func:`traceback.format_exception`, which calls
    ``str()`` on each exception: the default ``str()`` of ``ValueError("bad", item)``
    is the ``repr`` of a model, which may run SQL. Messages come from
    :func:`exception_message` instead.
    """
    try:
        lines, head = _format_chain(exception, set())
        text = redact_credentials("".join(lines))  # source lines may quote a token too
    except Exception:  # noqa: BLE001
        text, head = safe_repr(exception), 0
    return _keep_end(text, limit, head)


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def _format_chain(exception: BaseException, seen: set[int]) -> tuple[list[str], int]:
    """Lines for ``exception`` after its causes, as Python prints them; and how many
    leading characters must survive cutting (up to the "frames not shown" line)."""
    seen.add(id(exception))
    lines: list[str] = []
    cause, context = exception.__cause__, exception.__context__
    if cause is not None and id(cause) not in seen and len(seen) < 10:
        lines += _format_chain(cause, seen)[0] + [_CAUSE]
    elif (
        context is not None
        and not exception.__suppress_context__
        and id(context) not in seen
        and len(seen) < 10
    ):
        lines += _format_chain(context, seen)[0] + [_CONTEXT]
    head = 0
    tb = exception.__traceback__
    if tb is not None:
        lines.append(_TRACEBACK_HEADER)
        left_out = _frame_count(tb) - MAX_TRACEBACK_FRAMES
        if left_out > 0:
            lines.append(
                f"  ... {left_out} earlier frames not shown "
                f"(only the last {MAX_TRACEBACK_FRAMES} are formatted) ...\n"
            )
            head = len("".join(lines))
        lines += traceback.format_list(traceback.extract_tb(tb, limit=-MAX_TRACEBACK_FRAMES))
    message = exception_message(exception)
    name = exception_type_name(exception).removeprefix("builtins.")
    lines.append(f"{name}: {message}\n" if message else f"{name}\n")
    return lines, head


def exception_message(exception: BaseException, limit: int = 500) -> str:
    """What ``str(exception)`` says, without the code ``str()`` may run, and redacted.

    Built-in messages made from ``args`` (``ValueError("bad", item)``, ``KeyError(item)``)
    are rendered by :func:`safe_repr`, never by a model's ``repr``; an exception class
    with a ``__str__`` of its own is asked for it (guarded). Credentials in the text
    (``Bearer ...``) are redacted.
    """
    try:
        kind = type(exception)
        if kind.__str__ in (BaseException.__str__, KeyError.__str__):
            args = exception.args
            if not args:
                text = ""
            elif len(args) == 1:
                text = args[0] if type(args[0]) is str and kind.__str__ is not KeyError.__str__ else None
                if text is None:
                    text = safe_repr(args[0], limit)
            else:
                text = safe_repr(args, limit)
        else:
            text = str(exception)
    except Exception:  # noqa: BLE001
        text = safe_repr(exception, limit)
    return redact_credentials(truncate(text, limit))


def _keep_end(text: str, limit: int, head: int = 0) -> str:
    """``text`` cut to ``limit`` characters: its first ``head`` ones, ``…``, and its end."""
    if len(text) <= limit:
        return text
    if head >= limit // 2:
        head = 0
    tail = max(limit - head - 1, 0)
    return text[:head] + "…" + (text[len(text) - tail :] if tail else "")


class Trace:
    """Everything dispatched inside one ``record()`` block.

    Objects are built on first read after the block ends, and rebuilt on each read
    while anything in them can still change: the block is open, a transaction it saw
    is still open, or an ``on_commit`` callback is pending (a ``record()`` block
    inside ``atomic()`` is read again after the commit with the outcome).
    """

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._built: tuple[list[Dispatch], list[Any]] | None = None

    def _read(self) -> tuple[list[Dispatch], list[Any]]:
        """The dispatches and the transaction findings, linked to the receiver calls."""
        if self._built is not None:
            return self._built
        calls: dict[int, ReceiverCall] = {}
        dispatches = self._recorder.build_dispatches(calls)
        effects = _effects(self._recorder.findings, self._recorder.start_ns, calls)
        if self._recorder.end_ns is not None and _settled(dispatches, effects):
            self._built = (dispatches, effects)
        return dispatches, effects

    @property
    def dispatches(self) -> list[Dispatch]:
        """Every dispatch kept, in start order, nested ones included."""
        return self._read()[0]

    @property
    def on_commit_callbacks(self) -> list[OnCommitCallback]:
        """Callbacks registered with ``on_commit`` while recording, with their fate."""
        return [found for found in self._read()[1] if type(found) is OnCommitCallback]

    @property
    def side_effects(self) -> list[SideEffect]:
        """Celery tasks published and e-mails sent by receivers."""
        return [found for found in self._read()[1] if type(found) is SideEffect]

    @property
    def bypassed_writes(self) -> list[BypassedWrite]:
        """Bulk writes and ``update()`` calls that skipped connected save receivers."""
        return [found for found in self._read()[1] if type(found) is BypassedWrite]

    @property
    def hazards(self) -> list[Hazard]:
        """The problems found (docs/transactions.md): side effects inside a transaction,
        writes that skipped receivers. Each has a kind, a message with the fix, and a place."""
        return [hazard for hazard in map(hazard_of, self._read()[1]) if hazard is not None]

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
    def findings(self) -> list[Any]:
        """What the core found beside the dispatches, in order, with ``perf_counter_ns``
        times: :class:`SlowDelete`, :class:`OnCommitCallback`, :class:`SideEffect`,
        :class:`BypassedWrite` (see the properties for each, timed from the block's start)."""
        return [_public(found) for found in self._recorder.findings]

    @property
    def slow_deletes(self) -> list[SlowDelete]:
        """Deletes that took Django's slow path because delete receivers listen (:class:`SlowDelete`)."""
        return _slow_deletes(self)

    @property
    def origin_perf_ns(self) -> int:
        """``time.perf_counter_ns()`` when the block began: every ``start_ns`` counts from it."""
        return self._recorder.start_ns

    @property
    def duration_ns(self) -> int:
        """Length of the ``record()`` block so far."""
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
            "slow_deletes": [delete.to_dict(index) for delete in self.slow_deletes],
            "on_commit_callbacks": [found.to_dict() for found in self.on_commit_callbacks],
            "side_effects": [found.to_dict() for found in self.side_effects],
            "bypassed_writes": [found.to_dict() for found in self.bypassed_writes],
            "hazards": [hazard.to_dict() for hazard in self.hazards],
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


#: The name consumers know :func:`exception_message` by (failure messages, reports).
str_or_repr = exception_message


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
        "transaction": None if dispatch.transaction is None else dispatch.transaction.to_dict(),
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


# ------------------------------------------------------------------ slow deletes


#: One receiver that kept a delete off Django's fast path (the same shape as any
#: connected receiver a finding names).
DeleteReceiver = ReceiverRef


@dataclass(frozen=True)
class SlowDelete:
    """A delete that took Django's slow path because ``pre_delete``/``post_delete`` receivers listen.

    ``Collector.can_fast_delete()`` refuses a model (or a model a delete cascades to) that
    has delete receivers: Django then selects every row into memory and sends
    ``pre_delete`` and ``post_delete`` once per row. Recorded by
    :mod:`signaltrace.core.deletes` while a ``record()`` block is open.

    In ``Trace.findings`` the times are raw ``perf_counter_ns`` readings (the clock of
    dispatches); :attr:`Trace.slow_deletes` gives them relative to the ``record()`` block,
    like ``Dispatch.start_ns``, with the dispatches sent inside the delete.
    """

    #: ``app_label.Model`` of what was deleted (the queryset's model, or the instance's).
    model: str
    #: The primary key of the one instance deleted with ``Model.delete()``; None for a queryset.
    instance_pk: str | None
    #: ``(app_label.Model, rows selected into memory)`` per model, the deleted one first.
    rows: tuple[tuple[str, int], ...]
    #: ``pre_delete`` and ``post_delete`` sends Django makes: two per row (auto-created
    #: many-to-many tables send none).
    signals_sent: int
    #: The delete receivers connected for the collected models: why the fast path was refused.
    receivers: tuple[DeleteReceiver, ...]
    start_ns: int
    duration_ns: int
    #: Dispatches sent while the delete ran, nested ones included (filled by ``Trace.slow_deletes``).
    dispatches: tuple[Dispatch, ...] = field(default=(), repr=False)

    @property
    def row_count(self) -> int:
        return sum(count for _model, count in self.rows)

    @property
    def summary(self) -> str:
        """``delete of auth.User #3: 1 auth.User, 1 accounts.Profile, 2 looplab.Post; 8 signals``."""
        target = self.model if self.instance_pk is None else f"{self.model} #{self.instance_pk}"
        rows = ", ".join(f"{count} {model}" for model, count in self.rows)
        return f"delete of {target}: {rows}; {self.signals_sent} signals"

    def to_dict(self, index: dict[int, int] | None = None) -> dict[str, Any]:
        """JSON types; ``index`` maps ``id(dispatch)`` to its number in ``Trace.to_dict()``."""
        index = index or {}
        return {
            "model": self.model,
            "instance_pk": self.instance_pk,
            "rows": [{"model": model, "count": count} for model, count in self.rows],
            "signals_sent": self.signals_sent,
            "receivers": [
                {
                    "signal": found.signal,
                    "sender": found.sender,
                    "receiver": found.receiver,
                    "file": found.file,
                    "line": found.line,
                }
                for found in self.receivers
            ],
            "start_ns": self.start_ns,
            "duration_ns": self.duration_ns,
            "summary": self.summary,
            "dispatches": [index[id(d)] for d in self.dispatches if id(d) in index],
        }


def _slow_deletes(trace: Trace) -> list[SlowDelete]:
    """The trace's slow deletes, timed from the block's start, with the dispatches they sent."""
    found = [finding for finding in trace.findings if type(finding) is SlowDelete]
    if not found:
        return []
    origin = trace._recorder.start_ns
    dispatches = trace.dispatches
    relative = []
    for delete in found:
        start = delete.start_ns - origin
        end = start + delete.duration_ns
        inside = tuple(d for d in dispatches if start <= d.start_ns <= end)
        relative.append(replace(delete, start_ns=start, dispatches=inside))
    return relative


# ------------------------------------------------------------------ transaction findings


def _public(found: Any) -> Any:
    """The public object for a kept finding: internal records make theirs (raw times)."""
    make = getattr(found, "public", None)
    return found if make is None else make()


def _settled(dispatches: list[Dispatch], effects: list[Any]) -> bool:
    """Whether nothing in these objects can change any more: no transaction they name is
    open, no callback pending."""
    for dispatch in dispatches:
        if dispatch.transaction is not None and dispatch.transaction.outcome == "open":
            return False
    for found in effects:
        if getattr(found, "fate", None) == PENDING:
            return False
        transaction = getattr(found, "transaction", None)
        if transaction is not None and transaction.outcome == "open":
            return False
    return True


def _effects(findings: list[Any], origin: int, calls: dict[int, ReceiverCall]) -> list[Any]:
    """Public transaction findings, timed from ``origin`` and linked to their receiver calls."""
    made = []
    for found in list(findings):
        make = getattr(found, "public", None)
        if make is None:
            continue
        call_record = getattr(found, "call", None)
        receiver = None if call_record is None else calls.get(id(call_record))
        public = make(receiver, origin)
        made.append(public)
        if receiver is not None:
            if type(public) is OnCommitCallback:
                receiver.on_commit_callbacks.append(public)
            elif type(public) is SideEffect:
                receiver.side_effects.append(public)
            elif type(public) is BypassedWrite:
                receiver.bypassed_writes.append(public)
    return made
