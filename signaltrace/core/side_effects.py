"""Work that escapes the transaction, and writes that send no signals.

While recording or observed (:func:`~signaltrace.core.store.is_watched`), and only then:

* a Celery task published from inside a receiver (Celery's own
  ``before_task_publish`` signal, connected when Celery is installed) and an e-mail
  sent from inside a receiver (``EmailMessage.send``, which ``send_mail``,
  ``mail_admins`` and ``mail_managers`` use) become
  :class:`~signaltrace.core.effects.SideEffect` findings, with the transaction open
  on the receiver's alias;
* ``QuerySet.bulk_create``, ``bulk_update`` and ``update`` (their async twins call
  them in a worker thread, after noting where they were awaited from) on a model
  with ``pre_save``/``post_save`` receivers become
  :class:`~signaltrace.core.effects.BypassedWrite` findings: Django sends no
  signals for them, so those receivers did not run.

Idle, each wrapper asks one question and calls Django. Django's return values and
exceptions pass through unchanged; errors of signaltrace's own are logged.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from time import perf_counter_ns
from typing import Any

from signaltrace.core import patches
from signaltrace.core.effects import BypassedWrite, ReceiverRef, SideEffect, receiver_refs, transaction_of
from signaltrace.core.naming import short_path
from signaltrace.core.rendering import redact_credentials, safe_repr, truncate
from signaltrace.core.store import current_receiver, is_watched, keep_finding, transaction_now
from signaltrace.safety import report_internal_error

GROUP = "side effects"
_CELERY_UID = "signaltrace.side_effects"
# Set while a watched bulk write runs: the writes Django makes inside it (bulk_update's
# update() calls) are part of it.
_in_bulk_write: ContextVar[bool] = ContextVar("signaltrace_in_bulk_write", default=False)
# Where an async twin (abulk_create, ...) was called from: Django runs the sync method
# in a worker thread, whose stack does not hold the caller's frames.
_async_caller: ContextVar[tuple[str, int] | None] = ContextVar("signaltrace_async_caller", default=None)
# Frames of modules under these names are skipped when finding where a write was called from.
_LIBRARY_PREFIXES = ("django.", "signaltrace.core.", "asgiref.", "celery.", "kombu.")


class _SideEffectRecord:
    __slots__ = ("call", "file", "info", "kind", "line", "start_ns", "transaction", "what")

    def __init__(self, kind: str, what: str, transaction: Any, call: Any, info: Any) -> None:
        self.kind = kind
        self.what = what
        self.transaction = transaction  # an AtomicBlock, an alias or None
        self.call = call
        self.info = info or ("", "", 0)  # the receiver's (name, file, line)
        self.file, self.line = _caller()
        self.start_ns = perf_counter_ns()

    def public(self, receiver: Any = None, origin: int = 0) -> SideEffect:
        name, file, line = self.info
        return SideEffect(
            self.kind,
            self.what,
            self.start_ns - origin,
            transaction_of(self.transaction),
            receiver,
            receiver_name=name,
            receiver_file=file,
            receiver_line=line,
            file=self.file,
            line=self.line,
        )


class _BypassedRecord:
    __slots__ = (
        "call",
        "duration_ns",
        "file",
        "line",
        "model",
        "operation",
        "receiver_name",
        "receivers",
        "rows",
        "start_ns",
    )

    def __init__(
        self, model: str, operation: str, receivers: tuple[ReceiverRef, ...], call: Any, info: Any
    ) -> None:
        self.receiver_name = "" if info is None else info[0]
        self.model = model
        self.operation = operation
        self.receivers = receivers
        self.call = call
        self.rows = 0
        self.file, self.line = _caller()
        self.start_ns = perf_counter_ns()
        self.duration_ns = 0

    def public(self, receiver: Any = None, origin: int = 0) -> BypassedWrite:
        return BypassedWrite(
            self.model,
            self.operation,
            self.rows,
            self.receivers,
            self.file,
            self.line,
            self.start_ns - origin,
            self.duration_ns,
            receiver,
            receiver_name=self.receiver_name,
        )


def note_side_effect(kind: str, what: str) -> None:
    """Keep a side effect made inside a receiver now (nothing outside receivers)."""
    try:
        call, named, info = current_receiver()
        if named is None:
            return
        found = _SideEffectRecord(kind, what, transaction_now(named), call, info)
        keep_finding(found, 300, found.public)
    except Exception:  # noqa: BLE001
        report_internal_error("side effect")


# ------------------------------------------------------------------ Celery


def _task_published(sender: Any = None, **_kwargs: Any) -> None:
    """Celery's ``before_task_publish`` receiver: ``sender`` is the task's name."""
    if is_watched():
        note_side_effect("celery_task", sender if type(sender) is str else safe_repr(sender, 120))


_celery = {"connected": False}


def watch_celery() -> None:
    """Listen to Celery's ``before_task_publish`` once Celery is imported (idempotent, cheap).

    Celery is never imported by signaltrace (it costs a few hundred milliseconds):
    projects import their Celery app in the project package (Celery's Django guide),
    before Django's apps are ready; ``record()`` looks again for later imports.
    """
    if _celery["connected"] or sys.modules.get("celery") is None or not patches.is_wrapped(GROUP):
        return
    try:
        from celery.signals import before_task_publish

        before_task_publish.connect(_task_published, weak=False, dispatch_uid=_CELERY_UID)
        _celery["connected"] = True
    except Exception:  # noqa: BLE001
        report_internal_error("Celery")


def _disconnect_celery() -> None:
    celery_signals = sys.modules.get("celery.signals")
    if _celery["connected"] and celery_signals is not None:
        celery_signals.before_task_publish.disconnect(_task_published, dispatch_uid=_CELERY_UID)
    _celery["connected"] = False


# ------------------------------------------------------------------ mail


def _make_send(django_send: Any) -> Any:
    def send(self: Any, *args: Any, **kwargs: Any) -> Any:
        if is_watched():
            note_side_effect("email", _describe_mail(self))
        return django_send(self, *args, **kwargs)

    send.__wrapped__ = django_send  # type: ignore[attr-defined]
    return send


def _describe_mail(message: Any) -> str:
    """``'Welcome!' to 2 recipients``: the subject (cut) and a count, never an address."""
    try:
        subject = message.subject
        if type(subject) is str:
            subject = redact_credentials(truncate(subject, 80))
        else:
            subject = safe_repr(subject, 80)
        count = len(message.recipients())
        return f"{subject!r} to {count} recipient{'s' if count != 1 else ''}"
    except Exception:  # noqa: BLE001
        return "(a message)"


# ------------------------------------------------------------------ bulk writes


def _make_bulk(operation: str, django_method: Any) -> Any:
    def bulk(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_watched() or _in_bulk_write.get():
            return django_method(self, *args, **kwargs)
        return _watched_bulk(self, operation, args, kwargs, django_method)

    return _dressed_as(bulk, django_method)


def _make_async_bulk(django_method: Any) -> Any:
    async def abulk(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_watched() or _async_caller.get() is not None:
            return await django_method(self, *args, **kwargs)
        token = _async_caller.set(_caller())
        try:
            return await django_method(self, *args, **kwargs)
        finally:
            _async_caller.reset(token)

    return _dressed_as(abulk, django_method)


def _dressed_as(wrapper: Any, django_method: Any) -> Any:
    """``wrapper`` with ``django_method``'s name, docstring and marks: ``alters_data`` keeps
    templates from calling it, ``queryset_only`` keeps it off managers' copied methods
    where Django says so."""
    wrapper.__name__ = wrapper.__qualname__ = django_method.__name__
    wrapper.__doc__ = django_method.__doc__
    wrapper.__dict__.update(django_method.__dict__)
    wrapper.__wrapped__ = django_method
    return wrapper


def _watched_bulk(queryset: Any, operation: str, args: Any, kwargs: Any, django_method: Any) -> Any:
    found = None
    try:
        from django.db.models.signals import post_save, pre_save

        model = queryset.model
        receivers = tuple(receiver_refs(pre_save, model) + receiver_refs(post_save, model))
        if receivers:
            call, _named, info = current_receiver()
            found = _BypassedRecord(model._meta.label, operation, receivers, call, info)
    except Exception:  # noqa: BLE001
        report_internal_error("bulk write")
    if found is None:
        return django_method(queryset, *args, **kwargs)
    token = _in_bulk_write.set(True)
    try:
        result = django_method(queryset, *args, **kwargs)
    finally:
        _in_bulk_write.reset(token)
    try:
        found.duration_ns = perf_counter_ns() - found.start_ns
        found.rows = len(result) if operation == "bulk_create" else int(result or 0)
        keep_finding(found, 300 + 150 * len(found.receivers), found.public)
    except Exception:  # noqa: BLE001
        report_internal_error("bulk write")
    return result


def _caller() -> tuple[str, int]:
    """``(file, line)`` of the first caller outside Django and signaltrace's core (for a
    write made by an async twin, where the twin was awaited)."""
    noted = _async_caller.get()
    if noted is not None:
        return noted
    frame = sys._getframe(1)
    for _ in range(40):
        if frame is None:
            break
        name = frame.f_globals.get("__name__", "")
        if not (type(name) is str and name.startswith(_LIBRARY_PREFIXES)):
            return short_path(frame.f_code.co_filename), frame.f_lineno
        frame = frame.f_back
    return "", 0


# ------------------------------------------------------------------ install


def install_side_effect_watch() -> None:
    """Wrap mail sending and bulk writes, and listen to Celery (idempotent)."""
    from django.core.mail import EmailMessage
    from django.db.models.query import QuerySet

    patches.wrap(GROUP, EmailMessage, "send", _make_send)
    for operation in ("bulk_create", "bulk_update", "update"):
        patches.wrap(
            GROUP, QuerySet, operation, lambda method, operation=operation: _make_bulk(operation, method)
        )
        patches.wrap(GROUP, QuerySet, f"a{operation}", _make_async_bulk)
    watch_celery()


def uninstall_side_effect_watch() -> None:
    patches.restore(GROUP)
    try:
        _disconnect_celery()
    except Exception:  # noqa: BLE001
        report_internal_error("Celery")
