"""Span events for what the core finds beside dispatches.

:meth:`SpanObserver.found <signaltrace.otel.spans.SpanObserver.found>` hands each finding
to :func:`add_finding_event`, which adds it to the span current where it happened (the
request's, the caller's, or the receiver's while a sync receiver runs):

* ``signaltrace.on_commit.registered`` for an ``on_commit`` registration, then
  ``signaltrace.on_commit.ran`` or ``signaltrace.on_commit.discarded`` on the span
  current when the commit (or the rollback) decided its fate;
* ``signaltrace.hazard`` for a Celery task published or an e-mail sent by a receiver
  inside an application's atomic block (the core's :func:`~signaltrace.core.hazard_of`);
* ``signaltrace.bypassed_write`` for a ``bulk_create``/``bulk_update``/``update`` whose
  model has save receivers that did not run: also a hazard, so it carries the same
  ``signaltrace.hazard.*`` attributes;
* ``signaltrace.slow_delete`` for a delete that took Django's slow path.

A hazard is a warning, not an error: no span's status is changed. Findings are rare
(at most a few per request), so nothing here is cached; nothing is added when no span
is recording. Mail subjects are left out: they may name a person.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span

from signaltrace.core import (
    BypassedWrite,
    OnCommitCallback,
    SideEffect,
    SlowDelete,
    hazard_of,
    short_path,
)

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
    hazard = hazard_of(effect)
    if hazard is None:
        return
    span.add_event(
        "signaltrace.hazard",
        {
            "signaltrace.hazard.kind": hazard.kind,
            "signaltrace.hazard.message": hazard.message,
            "signaltrace.hazard.place": hazard.place,
            "signaltrace.side_effect.kind": effect.kind,
            "signaltrace.side_effect.what": effect.label,
        },
        effect.start_ns + offset,
    )


def _bypassed_write_event(span: Span, write: BypassedWrite, offset: int) -> None:
    """A bulk write whose model's save receivers did not run: every one is a hazard."""
    hazard = hazard_of(write)
    receivers = [
        f"{found.signal} {found.receiver} ({_location(found.file, found.line)})"
        if found.file
        else f"{found.signal} {found.receiver}"
        for found in write.receivers
    ]
    attributes: dict[str, Any] = {
        "signaltrace.bypassed_write.model": write.model,
        "signaltrace.bypassed_write.operation": write.operation,
        "signaltrace.bypassed_write.rows": write.rows,
        "signaltrace.bypassed_write.receivers": receivers,
        "signaltrace.bypassed_write.duration_ms": write.duration_ns / 1e6,
    }
    if hazard is not None:
        attributes["signaltrace.hazard.kind"] = hazard.kind
        attributes["signaltrace.hazard.message"] = hazard.message
        attributes["signaltrace.hazard.place"] = hazard.place
    span.add_event("signaltrace.bypassed_write", attributes, write.start_ns + offset)


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
