"""The loop guard: stop a dispatch that re-enters itself, long before RecursionError.

Every dispatch with receivers pushes a frame (see :mod:`signaltrace.core.frames`)
holding its signal, sender and ``instance`` kwarg, linked to the frame of the
receiver that sent it. A new dispatch is a loop when its key is already on that
chain ``LOOP_MAX_REENTRIES`` times:

* model signals (an ``instance`` kwarg): same signal, same sender, same instance,
  by identity or by model and primary key (a receiver often re-fetches the row);
* other signals: same signal and sender, entered again through the same receiver,
  i.e. the same (signal, sender, receiver) path repeating down one chain.

A cascade over *different* instances (a tree saving its parents) never matches,
whatever its depth; a guarded re-save enters twice and is allowed by the default
of 2. The third entry is stopped before its receivers run: a few cycles deep, far
from Python's recursion limit.

The chain is walked only for nested dispatches, so top-level sends pay nothing,
and nothing is named or formatted unless a loop is found.

Under the "warn" policy the loop keeps running as it would without signaltrace;
it is reported when it reaches the limit, once per chain (deeper re-entries of
the same chain are the same loop), and warned and logged once per process.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from signaltrace.core import store
from signaltrace.core.frames import F_PARENT, F_RECEIVER, F_SENDER, F_SIGNAL, instance_of
from signaltrace.core.naming import receiver_info, sender_name, short_path, signal_name
from signaltrace.errors import SignalLoopError
from signaltrace.safety import report_internal_error

if TYPE_CHECKING:
    from signaltrace.core.store import Recorder

logger = logging.getLogger("signaltrace")


class SignalLoopWarning(RuntimeWarning):
    """Warned when a loop is detected under the "warn" policy, or swallowed."""


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


def _pk(instance: Any) -> Any:
    try:
        return instance.pk
    except Exception:  # noqa: BLE001 - not a model, or a broken one
        return None


def _same_instance(first: Any, second: Any) -> bool:
    if first is second:
        return True
    if first is None or second is None or type(first) is not type(second):
        return False
    pk = _pk(first)
    return pk is not None and pk == _pk(second)


def _function(receiver: Any) -> Any:
    """What identifies a receiver on a path: a bound method's function, else itself."""
    return getattr(receiver, "__func__", receiver)


def _matching_ancestors(frame: list[Any]) -> list[list[Any]]:
    """The frames on ``frame``'s chain that it re-enters, nearest first.

    Each frame's ``F_RECEIVER`` is the receiver running in it now, i.e. the one
    through which the chain went on. Without an instance, only ancestors entered
    again through the same receiver as the nearest one count: the same path.
    """
    signal, sender, instance = frame[F_SIGNAL], frame[F_SENDER], instance_of(frame)
    matches = []
    ancestor = frame[F_PARENT]
    while ancestor is not None:
        if (
            ancestor[F_SIGNAL] is signal
            and ancestor[F_SENDER] is sender
            and _same_instance(instance_of(ancestor), instance)
        ):
            matches.append(ancestor)
        ancestor = ancestor[F_PARENT]
    if instance is None and len(matches) > 1:
        path = _function(matches[0][F_RECEIVER])
        matches = [match for match in matches if _function(match[F_RECEIVER]) is path]
    return matches


def _instance_label(instance: Any) -> str | None:
    if instance is None:
        return None
    pk = _pk(instance)
    label = sender_name(type(instance))
    return f"{label} #{pk}" if pk is not None else f"{label} (unsaved)"


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


# Messages already warned under the "warn" policy (once per process each), bounded.
_warned: set[str] = set()
_MAX_WARNED = 1000


def check_for_loop(
    frame: list[Any],
    recorders: tuple[Recorder, ...] | None,
    named: dict[str, Any],
    method: str,
    receiver_count: int,
) -> None:
    """Raise :class:`SignalLoopError` (or warn) if ``frame`` re-enters a dispatch.

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
            _warned.clear()  # a long-running process warned of many instances' loops: start over
        _warned.add(loop.message)
        logger.warning("%s", loop.message)
        warnings.warn(loop.message, SignalLoopWarning, stacklevel=4)


def report_swallowed_loop(error: SignalLoopError) -> None:
    """A ``send_robust`` caught our loop error: the loop is stopped, but say so."""
    error.loop.swallowed = True
    logger.warning("%s (swallowed by send_robust; the loop was stopped)", error.loop.message)
    warnings.warn(f"{error.loop.message} (swallowed by send_robust)", SignalLoopWarning, stacklevel=3)
