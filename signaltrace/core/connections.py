"""Connect-time checks: a receiver connected twice, or dropped for a taken ``dispatch_uid``.

Django files each receiver under ``(dispatch_uid or id(receiver), id(sender))`` and
silently ignores a key it already has. Two classic mistakes follow, and neither
raises anything:

* the same function connected twice under two different objects, because its
  module was imported under two names or the code connecting it ran twice (a
  closure made in ``AppConfig.ready()``): it then runs twice per dispatch;
* a *different* receiver connected with a ``dispatch_uid`` that is already taken:
  Django keeps the first one and drops the new one.

:func:`wrap_connect` wraps Django's ``Signal.connect`` (the hooks install it) so
that both are logged on the ``signaltrace`` logger, naming receivers by dotted
path and file:line, and kept for the system check ``signaltrace.W101``
(:func:`connection_problems`). Django's own ``connect`` runs exactly as before.
Nothing is raised or warned with ``warnings.warn``: under ``-W error`` a warning
would stop the caller's registration loop half way.

The same function connected under several explicit ``dispatch_uid`` values is left
alone, whether as one object or as several made by one ``def``: that is what distinct
uids are for (django-auditlog connects one function once per registry). The same
object connected once with a ``dispatch_uid`` and once without one is reported: it
runs twice, and the connection without a uid is usually the forgotten one.

"The same function" means the same source: qualified name, file and first line.
Bound methods of *different live instances* are left alone: one receiver per
instance is a common, deliberate pattern (django-debug-toolbar's panels connect
their methods once per request).
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable
from typing import Any

from signaltrace.core.naming import make_id
from signaltrace.safety import report_internal_error

logger = logging.getLogger("signaltrace")

Origin = tuple[str, str, int]

_reported: set[str] = set()
# The problems found so far, for the system check (bounded: a process that connects
# receivers in a loop must not grow without end).
_problems: list[str] = []
MAX_PROBLEMS = 100


def connection_problems() -> list[str]:
    """Messages of the connection problems found so far in this process, oldest first."""
    return list(_problems)


def clear_problems() -> None:
    """Forget the problems found so far, and that they were logged (for tests)."""
    _reported.clear()
    _problems.clear()


def _origin(receiver: Any) -> Origin:
    """A receiver's dotted name, file and first line, for messages."""
    from signaltrace.core.naming import receiver_info

    return receiver_info(receiver)


def _code_key(receiver: Any) -> tuple[str, int, str] | None:
    """(file, first line, qualified name) of a receiver's code: equal for the same
    function imported twice under two module names, or made twice by one ``def``."""
    from signaltrace.core.naming import _unwrap

    target = _unwrap(receiver)
    code = getattr(target, "__code__", None)
    if code is None:
        code = getattr(type(target).__dict__.get("__call__"), "__code__", None)
    if code is None:
        return None
    return (code.co_filename, code.co_firstlineno, getattr(code, "co_qualname", code.co_name))


def _source(receiver: Any) -> tuple[str, int, str] | None:
    """:func:`_code_key`, or None for receivers that may be one per object on purpose:
    bound methods of instances, callable instances, partials."""
    owner = getattr(receiver, "__self__", None)
    if hasattr(receiver, "__func__") and owner is not None and not isinstance(owner, type):
        return None
    if isinstance(receiver, functools.partial) or not (
        hasattr(receiver, "__code__") or hasattr(receiver, "__func__")
    ):
        return None
    return _code_key(receiver)


def _same_code(first: Any, second: Any) -> bool:
    key = _code_key(first)
    return key is not None and key == _code_key(second)


def _live(ref: Any) -> Any:
    if isinstance(ref, weakref.ReferenceType):  # weakref.ref and WeakMethod
        return ref()
    return ref


def _describe(origin: Origin) -> str:
    from signaltrace.core.naming import short_path

    name, file, line = origin
    return f"{name} ({short_path(file)}:{line})" if file else name


def _where(signal: Any, sender: Any) -> str:
    from signaltrace.core.naming import sender_name, signal_name

    target = "any sender" if sender is None else f"sender {sender_name(sender)}"
    return f"{signal_name(signal)} for {target}"


def problem_with(signal: Any, receiver: Any, sender: Any, dispatch_uid: Any) -> str | None:
    """The problem connecting ``receiver`` would cause, or None; read before Django connects.

    Only Django's receiver list is read; nothing is changed.
    """
    sender_key = make_id(sender)
    own_key = (dispatch_uid or make_id(receiver), sender_key)
    others = []
    for entry in list(signal.receivers):
        key = entry[0]
        if key[1] != sender_key:
            continue
        existing = _live(entry[1])
        if existing is None:
            continue  # dead: Django clears it before connecting
        if key == own_key:
            if dispatch_uid is None:
                return None  # the very same object again: Django's documented no-op
            if existing is receiver or _same_code(existing, receiver):
                return None  # the same receiver again under its dispatch_uid: what the uid is for
            return (
                f"Receiver {_describe(_origin(receiver))} was not connected to {_where(signal, sender)}: "
                f"its dispatch_uid {dispatch_uid!r} is already taken by {_describe(_origin(existing))}, "
                "and Django silently keeps the first receiver. Give each receiver its own dispatch_uid."
            )
        existing_uid = None if key[0] == make_id(existing) else key[0]
        if dispatch_uid and existing_uid is not None:
            continue  # two explicit uids (they differ: the keys differ): distinct on purpose
        if make_id(existing) == make_id(receiver):
            how = f"once with dispatch_uid {(dispatch_uid or existing_uid)!r} and once without one"
            return (
                f"Receiver {_describe(_origin(receiver))} is connected twice to {_where(signal, sender)}, "
                f"{how}, so it runs twice per dispatch. Connect it once, or give both connections "
                "their own dispatch_uid if running twice is intended."
            )
        others.append(existing)
    source = _source(receiver) if others else None
    if source is None:
        return None
    for existing in others:
        if _source(existing) == source:
            return (
                f"Receiver {_describe(_origin(receiver))} is connected twice to {_where(signal, sender)}, "
                "under two different objects for the same function, so it runs twice per dispatch. "
                "Its module was probably imported under two names, or the code connecting it ran twice "
                "(AppConfig.ready()); connect it once, or pass a dispatch_uid."
            )
    return None


def report(message: str) -> None:
    """Log a connection problem and keep it for the system check, once per distinct message."""
    if message in _reported:
        return
    _reported.add(message)
    if len(_problems) < MAX_PROBLEMS:
        _problems.append(message)
    logger.warning("%s", message)


def wrap_connect(django_connect: Callable[..., Any]) -> Callable[..., Any]:
    """``Signal.connect`` that calls Django's unchanged, then reports what it did silently."""

    @functools.wraps(django_connect)
    def connect(
        self: Any, receiver: Any, sender: Any = None, weak: bool = True, dispatch_uid: Any = None
    ) -> Any:
        try:
            problem = problem_with(self, receiver, sender, dispatch_uid)
        except Exception:  # noqa: BLE001 - a check must never stop a receiver connecting
            report_internal_error("connections.problem_with")
            problem = None
        result = django_connect(self, receiver, sender, weak, dispatch_uid)
        if problem is not None:
            report(problem)
        return result

    return connect
