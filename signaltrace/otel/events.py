"""Span events for what the core finds beside dispatches.

:meth:`SpanObserver.found <signaltrace.otel.spans.SpanObserver.found>` hands each finding
to :func:`add_finding_event`, which adds it to the span current where it happened (the
request's, the caller's, or the receiver's while a sync receiver runs):

* ``signaltrace.on_commit.registered`` for an ``on_commit`` registration, then
  ``signaltrace.on_commit.ran`` or ``signaltrace.on_commit.discarded`` on the span
  current when the commit (or the rollback) decided its fate;
* ``signaltrace.hazard`` for a Celery task published or an e-mail sent by a receiver
  inside an application's atomic block (the rule of the core's hazards);
* ``signaltrace.bypassed_write`` for a ``bulk_create``/``bulk_update``/``update`` whose
  model has save receivers that did not run: also a hazard, so it carries the same
  ``signaltrace.hazard.*`` attributes;
* ``signaltrace.slow_delete`` for a delete that took Django's slow path.

A hazard is a warning, not an error: no span's status is changed. Findings are rare
(at most a few per request), so nothing here is cached; nothing is added when no span
is recording. Mail subjects are left out: they may name a person.
"""

from __future__ import annotations

import sys
from typing import Any

from opentelemetry.trace import Span

from signaltrace.core import (
    BYPASSED_WRITE,
    MAIL_BEFORE_COMMIT,
    TASK_BEFORE_COMMIT,
    BypassedWrite,
    OnCommitCallback,
    SideEffect,
    SlowDelete,
    short_path,
)

#: Modules whose frames are skipped when finding the line of the application that made a
#: side effect: Django, Celery's publishing path, and signaltrace's own.
_LIBRARY_PREFIXES = ("django.", "signaltrace.", "celery.", "kombu.", "asgiref.", "opentelemetry.")
_MAX_FRAMES = 60

#: ``OnCommitCallback.fate`` values that say how it ended.
_RAN_AT_ONCE = "ran at once"
_ENDED = {"ran": "signaltrace.on_commit.ran", "discarded": "signaltrace.on_commit.discarded"}


def error_type(exception: BaseException) -> str:
    """``error.type``: the exception class, qualified unless it is a builtin."""
    cls = type(exception)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def add_finding_event(span: Span, finding: Any, offset: int) -> None:
    """Add the event(s) ``finding`` makes to ``span`` (a recording span); others are ignored.

    ``offset``: wall clock minus ``perf_counter_ns``, to time events from the finding's own
    readings, as spans are.
    """
    kind = type(finding)
    if kind is OnCommitCallback:
        _on_commit_event(span, finding, offset)
    elif kind is SideEffect:
        if finding.in_transaction:
            _side_effect_hazard(span, finding, offset)
    elif kind is BypassedWrite:
        _bypassed_write_event(span, finding, offset)
    elif kind is SlowDelete:
        _slow_delete_event(span, finding)


def _location(file: str, line: int) -> str:
    return f"{short_path(file)}:{line}" if file else ""


def _on_commit_event(span: Span, callback: OnCommitCallback, offset: int) -> None:
    """Registered (fate ``pending`` or ``ran at once``), or its fate once decided.

    The core announces a callback when it is registered and again when its fate
    changes. A callback registered outside any transaction runs at once: it gets
    both events, registered then ran. Each attribute costs the SDK about a
    microsecond, so the fate events leave out what the registered one says.
    """
    fate = callback.fate
    ended = _ENDED.get(fate)
    if ended is None:
        registered = {
            "signaltrace.on_commit.callback": callback.callback,
            "signaltrace.on_commit.location": _location(callback.file, callback.line),
            "signaltrace.on_commit.alias": callback.alias,
            "signaltrace.on_commit.fate": fate,
        }
        span.add_event("signaltrace.on_commit.registered", registered, callback.registered_ns + offset)
        if fate != _RAN_AT_ONCE:
            return
        ended = _ENDED["ran"]
    attributes: dict[str, Any] = {
        "signaltrace.on_commit.callback": callback.callback,
        "signaltrace.on_commit.alias": callback.alias,
    }
    if callback.duration_ns is not None:
        attributes["signaltrace.on_commit.duration_ms"] = callback.duration_ns / 1e6
    if callback.exception is not None:
        attributes["error.type"] = error_type(callback.exception)
    when = callback.ran_ns if callback.ran_ns is not None else callback.registered_ns
    span.add_event(ended, attributes, when + offset)


def _side_effect_hazard(span: Span, effect: SideEffect, offset: int) -> None:
    """A task published or a mail sent inside an application transaction (open now)."""
    transaction = effect.transaction
    summary = transaction.summary if transaction is not None else "a transaction"
    if effect.kind == "celery_task":
        kind = TASK_BEFORE_COMMIT
        what = effect.what
        message = (
            f"Celery task {effect.what} published inside a transaction ({summary}): a worker can "
            "start it before the commit, or run it for rows that are rolled back. Fix: "
            "task.delay_on_commit(...) or transaction.on_commit(lambda: task.delay(...))."
        )
    else:
        kind = MAIL_BEFORE_COMMIT
        what = _mail_without_subject(effect.what)
        message = (
            f"{what} sent inside a transaction ({summary}): it goes out even if the "
            "transaction is rolled back. Fix: transaction.on_commit(lambda: send_mail(...))."
        )
    span.add_event(
        "signaltrace.hazard",
        {
            "signaltrace.hazard.kind": kind,
            "signaltrace.hazard.message": message,
            "signaltrace.hazard.place": _calling_line(),
            "signaltrace.side_effect.kind": effect.kind,
            "signaltrace.side_effect.what": what,
        },
        effect.start_ns + offset,
    )


def _mail_without_subject(what: str) -> str:
    """``e-mail to 2 recipients`` from the core's ``'Subject' to 2 recipients``."""
    _subject, to, recipients = what.rpartition(" to ")
    return f"e-mail to {recipients}" if to else "an e-mail"


def _calling_line() -> str:
    """``file:line`` of the application code that made the side effect being announced.

    The core announces it synchronously, from inside the call that made it (Django's
    ``EmailMessage.send``, Celery's ``before_task_publish``), so the first frame outside
    the libraries is the line that sent the mail or published the task.
    """
    frame = sys._getframe(1)
    for _ in range(_MAX_FRAMES):
        if frame is None:
            break
        name = frame.f_globals.get("__name__")
        if not (type(name) is str and name.startswith(_LIBRARY_PREFIXES)):
            return f"{short_path(frame.f_code.co_filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


def _bypassed_write_event(span: Span, write: BypassedWrite, offset: int) -> None:
    """A bulk write whose model's save receivers did not run: every one is a hazard."""
    receivers = [
        f"{found.signal} {found.receiver} ({_location(found.file, found.line)})"
        if found.file
        else f"{found.signal} {found.receiver}"
        for found in write.receivers
    ]
    place = write.location
    message = (
        f"{write.summary}; called at {place or '?'}. Fix: save() each object, or do what the "
        "receivers do in the same place (or send the signals yourself) if the write must stay in bulk."
    )
    span.add_event(
        "signaltrace.bypassed_write",
        {
            "signaltrace.bypassed_write.model": write.model,
            "signaltrace.bypassed_write.operation": write.operation,
            "signaltrace.bypassed_write.rows": write.rows,
            "signaltrace.bypassed_write.receivers": receivers,
            "signaltrace.bypassed_write.duration_ms": write.duration_ns / 1e6,
            "signaltrace.hazard.kind": BYPASSED_WRITE,
            "signaltrace.hazard.message": message,
            "signaltrace.hazard.place": place,
        },
        write.start_ns + offset,
    )


def _slow_delete_event(span: Span, delete: SlowDelete) -> None:
    """A delete that took Django's slow path because of delete receivers."""
    span.add_event(
        "signaltrace.slow_delete",
        {
            "signaltrace.delete.model": delete.model,
            "signaltrace.delete.summary": delete.summary,
            "signaltrace.delete.rows": delete.row_count,
            "signaltrace.delete.signals_sent": delete.signals_sent,
            "signaltrace.delete.duration_ms": delete.duration_ns / 1e6,
            "signaltrace.delete.receivers": [
                f"{why.signal} {why.receiver} ({short_path(why.file)}:{why.line})" for why in delete.receivers
            ],
        },
    )
