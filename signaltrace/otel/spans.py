"""Turns signaltrace's live dispatch records into OpenTelemetry spans.

:class:`SpanObserver` is a :class:`signaltrace.observers.DispatchObserver`: the
core tells it when a dispatch (with live receivers, of a signal not ignored) and
each of its receiver calls start and finish, and it opens and closes one span for
each. The spans live in the records' ``state`` scratch dicts, so nesting comes
from the core's own records, not from a second mechanism.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from signaltrace.observers import DispatchObserver, LiveCall, LiveDispatch
from signaltrace.otel.selection import current_selection

# Keys of the scratch dicts; objects, so they cannot clash with other observers'.
_SPAN = object()
_CONTEXT = object()
_TOKEN = object()
_ERROR = object()

LOOP_ERROR_TYPE = "signaltrace.errors.SignalLoopError"


def error_type(exception: BaseException) -> str:
    """``error.type``: the exception class, qualified unless it is a builtin."""
    cls = type(exception)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _mark_error(span: Span, exception: BaseException) -> None:
    span.set_status(Status(StatusCode.ERROR, f"{type(exception).__name__}: {exception}"))
    span.set_attribute("error.type", error_type(exception))


# (receiver info, is_async, dispatch_uid) -> (span name, attributes): the same for
# every call of a receiver, so built once. The SDK copies attributes into the span
# (and a sampler only reads them), so one dict serves every span; it is passed
# read-only.
_receiver_fields: dict[tuple[Any, ...], tuple[str, Mapping[str, Any]]] = {}
_MAX_RECEIVER_FIELDS = 4096


def _receiver_span_fields(
    info: tuple[str, str, int], is_async: bool, dispatch_uid: Any
) -> tuple[str, Mapping[str, Any]]:
    """The name and attributes of a receiver's span."""
    key = (info, is_async, dispatch_uid)
    fields = _receiver_fields.get(key)
    if fields is None:
        receiver_name, file, line = info
        attributes: dict[str, Any] = {
            "code.function.name": receiver_name,
            "signaltrace.receiver.is_async": is_async,
        }
        if file:
            attributes["code.file.path"] = file
            attributes["code.line.number"] = line
        if dispatch_uid is not None:
            attributes["signaltrace.dispatch_uid"] = str(dispatch_uid)
        if len(_receiver_fields) >= _MAX_RECEIVER_FIELDS:
            _receiver_fields.clear()
        fields = _receiver_fields[key] = (f"receiver {receiver_name}", MappingProxyType(attributes))
    return fields


def _parent_context(call: LiveCall) -> Context | None:
    """The context to open a dispatch sent from inside ``call`` in (None: the current one).

    A sync receiver's span is current while it runs, so the current span is that
    span or one opened inside it (a SQL query's, the user's own): keep it as the
    parent. Only when the current span belongs to another trace (the receiver
    switched contexts) or the receiver is async (the current context is shared
    with its siblings and holds the span from before ``asend``) does the receiver
    span from the records take over.
    """
    receiver_span = call.state.get(_SPAN)
    if receiver_span is None:
        return None
    if not call.is_async:
        current = trace.get_current_span().get_span_context()
        if current.is_valid and current.trace_id == receiver_span.get_span_context().trace_id:
            return None
    return trace.set_span_in_context(receiver_span)


class SpanObserver(DispatchObserver):
    """One ``INTERNAL`` span per dispatch, with a child span per receiver call.

    Parents: a dispatch sent from inside a receiver is a child of that receiver's
    span (``dispatch.parent.state``), or of a span opened inside it (see
    :func:`_parent_context`); any other dispatch is a child of the current
    OpenTelemetry context, e.g. the request span of
    ``opentelemetry-instrumentation-django``. Receiver spans are children of their
    dispatch span, explicitly.

    Sync receivers: the receiver span is made current (the OpenTelemetry context
    is attached in :meth:`call_started` and detached in :meth:`call_finished`,
    which the core always calls in the same thread and context), so spans other
    instrumentations open inside the receiver (SQL, HTTP) nest under it.

    Async receivers: never attached. On Django 6.1 the async receivers of one
    dispatch run as parallel tasks that share one copied context, which Django
    then copies back into the caller; attaching there would make one receiver's
    span current in its siblings, detach tokens out of order, and leak the last
    receiver's span into the code after ``asend``. Their spans are parented
    explicitly through the records instead, and a dispatch sent inside an async
    receiver still finds that receiver as its parent, because the core keeps the
    current receiver per task. Spans of other instrumentations inside an async
    receiver nest under the span current when ``asend`` was awaited.
    """

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    # ------------------------------------------------------------------ dispatches

    @property
    def needs_kwargs(self) -> bool:  # type: ignore[override]
        """Kwargs are snapshotted for spans only when ``OTEL_RECORD_KWARGS`` is on."""
        return current_selection().record_kwargs

    def dispatch_started(self, dispatch: LiveDispatch) -> None:
        """Open the dispatch span unless the selection rules skip this signal."""
        selection = current_selection()
        if selection.filters and not selection.wants(dispatch.signal):
            return
        parent_call = dispatch.parent
        parent_context = None if parent_call is None else _parent_context(parent_call)
        name = dispatch.signal_name
        method = dispatch.method
        attributes: dict[str, Any] = {
            "signaltrace.signal": name,
            "signaltrace.sender": dispatch.sender_name,
            "signaltrace.method": method,
            "signaltrace.depth": dispatch.depth,
            "signaltrace.receiver_count": dispatch.receiver_count,
        }
        if selection.record_kwargs:
            for key, value in dispatch.kwargs.items():
                attributes[f"signaltrace.kwargs.{key}"] = value
        span = self.tracer.start_span(
            f"{method} {name}",
            context=parent_context,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        state = dispatch.state
        state[_SPAN] = span
        # The context every receiver span starts in, made once per dispatch.
        state[_CONTEXT] = trace.set_span_in_context(span)

    def dispatch_finished(self, dispatch: LiveDispatch) -> None:
        """Close the dispatch span; ERROR only if an exception left the dispatch."""
        state = dispatch.state
        span = state.pop(_SPAN, None)
        if span is None:
            return
        del state[_CONTEXT]
        error = state.pop(_ERROR, None)
        loop = dispatch.loop
        if loop is not None:
            # This dispatch re-entered a dispatch in progress and was stopped before
            # any receiver ran: the SignalLoopError is raised from here.
            span.add_event(
                "exception",
                {
                    "exception.type": LOOP_ERROR_TYPE,
                    "exception.message": loop.message,
                    "signaltrace.loop.action": loop.action,
                },
            )
            span.set_status(Status(StatusCode.ERROR, loop.message))
            span.set_attribute("error.type", LOOP_ERROR_TYPE)
        elif error is not None:
            _mark_error(span, error)
        span.end()

    # ------------------------------------------------------------------ receivers

    def call_started(self, call: LiveCall) -> None:
        """Open the receiver span under its dispatch span; make it current if sync."""
        dispatch_context = call.dispatch.state.get(_CONTEXT)
        if dispatch_context is None:
            return
        is_async = call.is_async
        name, attributes = _receiver_span_fields(call.info, is_async, call.dispatch_uid)
        span = self.tracer.start_span(
            name,
            context=dispatch_context,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        state = call.state
        state[_SPAN] = span
        if not is_async:
            state[_TOKEN] = otel_context.attach(trace.set_span_in_context(span))

    def call_finished(self, call: LiveCall) -> None:
        """Close the receiver span, with status ERROR and the exception if it raised."""
        state = call.state
        span = state.pop(_SPAN, None)
        if span is None:
            return
        token = state.pop(_TOKEN, None)
        if token is not None:
            otel_context.detach(token)
        exception = call.exception
        if exception is not None:
            span.record_exception(exception)
            _mark_error(span, exception)
            if call.swallowed:
                span.set_attribute("signaltrace.swallowed", True)
            else:
                self._note_escaping_error(call, exception)
        span.end()

    @staticmethod
    def _note_escaping_error(call: LiveCall, exception: BaseException) -> None:
        """Remember the exception that leaves the dispatch, for its span's status.

        The first one wins, except over a cancellation: on Django 6.1 a failing
        async receiver cancels its siblings, whose ``CancelledError`` may come after.
        """
        dispatch_state = call.dispatch.state
        first = dispatch_state.get(_ERROR)
        if first is None or isinstance(first, asyncio.CancelledError):
            dispatch_state[_ERROR] = exception
