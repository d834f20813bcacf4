"""The loop guard: stop a dispatch that re-enters itself, long before RecursionError.

Every dispatch with receivers pushes a frame (see :mod:`signaltrace.core.frames`)
holding its signal, sender and ``instance`` kwarg, linked to the frame of the
receiver that sent it. A new dispatch is a loop when its key is already on that
chain ``LOOP_MAX_REENTRIES`` times:

* model signals (an ``instance`` kwarg): same signal, same sender, same instance,
  by identity or by model and primary key (a receiver often re-fetches the row);
* other signals: same signal, sender and kwargs (each value the same object, an
  equal plain value, or the same model row), entered again through the same
  receiver, i.e. the same dispatch repeating down one chain.

A cascade over *different* objects (a tree saving its parents, a tree walked with
each child passed as ``node=``) never matches, whatever its depth; a guarded
re-save enters twice and is allowed by the default of 2. The third entry is
stopped before its receivers run: a few cycles deep, far from Python's recursion
limit.

Comparing never runs user code: a primary key is read only from a real model
instance's ``__dict__`` (a ``SimpleLazyObject`` is never evaluated), and only
plain values (numbers, strings, bytes) are compared with ``==``.

The chain is walked only for nested dispatches, so top-level sends pay nothing,
and nothing is named or formatted unless a loop is found.

Under the "warn" policy the loop keeps running as it would without signaltrace;
it is reported when it reaches the limit, once per chain (deeper re-entries of
the same chain are the same loop): recorded in the trace and logged once per
process. Nothing here calls ``warnings.warn``: under ``python -W error`` a warning
would raise in the middle of the dispatch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models.base import ModelBase

from signaltrace.conf import REDACTED
from signaltrace.core import store
from signaltrace.core.frames import F_NAMED, F_PARENT, F_RECEIVER, F_SENDER, F_SIGNAL, instance_of
from signaltrace.core.naming import dotted_path, receiver_info, sender_name, short_path, signal_name
from signaltrace.core.rendering import pk_is_secret
from signaltrace.errors import SignalLoopError
from signaltrace.safety import report_internal_error

if TYPE_CHECKING:
    from signaltrace.core.store import Recorder

logger = logging.getLogger("signaltrace")


@dataclass(frozen=True)
class LoopStep:
    """One dispatch of a cycle, and the receiver through which it went on."""

    signal_name: str
    sender_name: str
    instance: str | None
    receiver_name: str | None = None
    file: str | None = None
    line: int | None = None

    def dispatch_label(self) -> str:
        target = self.sender_name if self.instance is None else self.instance
        return f"{self.signal_name}({target})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal_name,
            "sender": self.sender_name,
            "instance": self.instance,
            "receiver": self.receiver_name,
            "file": self.file,
            "line": self.line,
        }


@dataclass
class Loop:
    """A detected loop: the cycle of dispatches and what was done about it."""

    cycle: tuple[LoopStep, ...]
    action: str  # "raised" or "warned"
    swallowed: bool = field(default=False)

    @property
    def message(self) -> str:
        return "Signal loop detected: " + format_cycle(self.cycle)

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "action": self.action,
            "swallowed": self.swallowed,
            "cycle": [step.to_dict() for step in self.cycle],
        }


def format_cycle(cycle: tuple[LoopStep, ...]) -> str:
    """``post_save(demo.Ping #1) -> app.ping_saved (app/signals.py:12) -> post_save(...)``.

    One line, so it reads the same in an exception, a log line and a warning.
    """
    parts = []
    for step in cycle:
        parts.append(step.dispatch_label())
        if step.receiver_name is not None:
            where = f" ({short_path(step.file)}:{step.line})" if step.file else ""
            parts.append(f"{step.receiver_name}{where}")
    return " -> ".join(parts)


_PLAIN = frozenset({int, float, str, bytes, bool, complex})


def _pk(instance: Any) -> Any:
    """The primary key of a model instance, read from its ``__dict__``; None for anything else.

    ``type()`` is not fooled by proxies: a ``SimpleLazyObject`` wrapping a user is
    not a model instance here, and is never evaluated.
    """
    if not isinstance(type(instance), ModelBase):
        return None
    try:
        return instance.__dict__.get(type(instance)._meta.pk.attname)
    except Exception:  # noqa: BLE001 - a broken model
        return None


def _same_value(first: Any, second: Any) -> bool:
    """Whether two kwarg values are the same thing, without running user code."""
    if first is second:
        return True
    kind = type(first)
    if kind is not type(second):
        return False
    if kind in _PLAIN:
        return first == second
    pk = _pk(first)
    return pk is not None and pk == _pk(second)


def _same_instance(first: Any, second: Any) -> bool:
    return first is not None and second is not None and _same_value(first, second)


def _same_kwargs(first: dict[str, Any], second: dict[str, Any]) -> bool:
    if len(first) != len(second):
        return False
    for name, value in first.items():
        if name not in second or not _same_value(value, second[name]):
            return False
    return True


def _function(receiver: Any) -> Any:
    """What identifies a receiver on a path: a bound method's function, else itself."""
    try:
        return getattr(receiver, "__func__", receiver)
    except Exception:  # noqa: BLE001 - a hostile __getattr__
        return receiver


def _matching_ancestors(frame: list[Any]) -> list[list[Any]]:
    """The frames on ``frame``'s chain that it re-enters, nearest first.

    Each frame's ``F_RECEIVER`` is the receiver running in it now, i.e. the one
    through which the chain went on. Without an instance, only ancestors with the
    same kwargs, entered again through the same receiver as the nearest one, count:
    the same path.
    """
    signal, sender, named = frame[F_SIGNAL], frame[F_SENDER], frame[F_NAMED]
    instance = named.get("instance")
    matches = []
    ancestor = frame[F_PARENT]
    while ancestor is not None:
        if ancestor[F_SIGNAL] is signal and ancestor[F_SENDER] is sender:
            if instance is not None:
                if _same_instance(instance_of(ancestor), instance):
                    matches.append(ancestor)
            elif _same_kwargs(ancestor[F_NAMED], named):
                matches.append(ancestor)
        ancestor = ancestor[F_PARENT]
    if instance is None and len(matches) > 1:
        path = _function(matches[0][F_RECEIVER])
        matches = [match for match in matches if _function(match[F_RECEIVER]) is path]
    return matches


def _instance_label(instance: Any) -> str | None:
    if instance is None:
        return None
    if not isinstance(type(instance), ModelBase):
        return f"<{dotted_path(type(instance))} object>"  # never its repr: it may run SQL
    pk = _pk(instance)
    label = sender_name(type(instance))
    if pk is None:
        return f"{label} (unsaved)"
    return f"{label} #{REDACTED}" if pk_is_secret(type(instance)) else f"{label} #{pk}"


def _step(frame: list[Any], with_receiver: bool) -> LoopStep:
    name = file = line = None
    if with_receiver and frame[F_RECEIVER] is not None:
        name, file, line = receiver_info(frame[F_RECEIVER])
    return LoopStep(
        signal_name=signal_name(frame[F_SIGNAL]),
        sender_name=sender_name(frame[F_SENDER]),
        instance=_instance_label(instance_of(frame)),
        receiver_name=name,
        file=file,
        line=line,
    )


def _cycle(frame: list[Any], previous_entry: list[Any]) -> tuple[LoopStep, ...]:
    """One turn of the loop: from the previous entry of the dispatch to ``frame``."""
    chain = []
    current = frame[F_PARENT]
    while current is not None:
        chain.append(current)
        if current is previous_entry:
            break
        current = current[F_PARENT]
    chain.reverse()
    return (*(_step(f, True) for f in chain), _step(frame, False))


# Messages already logged under the "warn" policy (once per process each), bounded.
_warned: set[str] = set()
_MAX_WARNED = 1000


def check_for_loop(
    frame: list[Any],
    recorders: tuple[Recorder, ...] | None,
    named: dict[str, Any],
    method: str,
    receiver_count: int,
) -> None:
    """Raise :class:`SignalLoopError` (or log, under "warn") if ``frame`` re-enters a dispatch.

    Called by the hooks for every nested dispatch, before any receiver runs.
    """
    from signaltrace.conf import setting

    try:
        matches = _matching_ancestors(frame)
        if not matches:
            return
        limit = setting("LOOP_MAX_REENTRIES")
        if len(matches) < limit:
            return
        policy = setting("LOOP_POLICY")
        if policy == "warn" and len(matches) > limit:
            return  # the same loop, already reported when this chain reached the limit
        loop = Loop(cycle=_cycle(frame, matches[0]), action="warned" if policy == "warn" else "raised")
        if recorders is not None or store.observed is not None:
            store.record_stopped_dispatch(
                loop,
                recorders,
                frame[F_SIGNAL],
                frame[F_SENDER],
                named,
                method,
                frame[F_PARENT],
                receiver_count,
            )
    except Exception:  # noqa: BLE001 - the guard must never break a dispatch itself
        report_internal_error("check_for_loop")
        return
    if loop.action == "raised":
        raise SignalLoopError(loop)
    if loop.message not in _warned:
        if len(_warned) >= _MAX_WARNED:
            _warned.clear()  # a long-running process saw many instances' loops: start over
        _warned.add(loop.message)
        logger.warning("%s", loop.message)


def report_swallowed_loop(error: SignalLoopError) -> None:
    """A ``send_robust`` caught our loop error: the loop is stopped, but say so (logged only)."""
    try:
        error.loop.swallowed = True
        logger.warning("%s (swallowed by send_robust; the loop was stopped)", error.loop.message)
    except Exception:  # noqa: BLE001 - reporting must not change what send_robust returns
        report_internal_error("report_swallowed_loop")
