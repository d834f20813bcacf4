"""OpenTelemetry spans for Django signals: one per dispatch, one per receiver.

Usage
-----

With ``opentelemetry-instrument`` nothing is needed in code: installing
``signaltrace[otel]`` registers the ``signaltrace`` entry point in the
``opentelemetry_instrumentor`` group, so::

    opentelemetry-instrument python manage.py runserver --noreload

traces every signal dispatch alongside Django's request spans. By hand::

    from signaltrace.otel import SignalInstrumentor

    SignalInstrumentor().instrument()                         # global tracer provider
    SignalInstrumentor().instrument(tracer_provider=provider)  # or an explicit one
    SignalInstrumentor().uninstrument()

``instrument()`` may run before Django's settings are configured; the settings are
read on the first dispatch. Turn it off under auto-instrumentation with
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=signaltrace``, which
:func:`setup_otlp_from_environment` honours too; an explicit ``instrument()`` call
is not affected, as with OpenTelemetry's contrib instrumentations. Served over
ASGI, install ``opentelemetry-instrumentation-asgi`` too (check ``signaltrace.W021``).

What it records
---------------

By default, only dispatches that reach a receiver outside Django itself get spans
(Django's own receivers on Django's own signals get none), and ``request_started``
/ ``request_finished`` sent while no span is current get none (each would be a
root trace); ``OTEL_ALL_DISPATCHES`` turns both back on.

For each such dispatch of a signal that has live receivers, an ``INTERNAL`` span named
``<method> <signal>`` (``send post_save``, ``asend_robust shop.signals.paid``) with
``signaltrace.signal``, ``signaltrace.sender`` (``app_label.Model``, or a type name:
never an instance's repr), ``signaltrace.method``, ``signaltrace.depth`` and
``signaltrace.receiver_count``; and under it, for each receiver, a span named
``receiver <module.qualname>`` with ``code.function.name``, ``code.file.path``,
``code.line.number``, ``signaltrace.dispatch_uid`` (when connected with one) and
``signaltrace.receiver.is_async``. ``code.line.number`` is the line of the ``def``
(not of its decorators). Kwarg values are not recorded unless
``OTEL_RECORD_KWARGS`` is on, and then only as signaltrace renders them: redacted,
truncated, objects by type.

A dispatch with a transaction (model signals; any signal inside an application
``atomic()`` block) has ``signaltrace.transaction.alias`` and
``signaltrace.transaction.in_atomic``, and inside a block ``signaltrace.transaction.depth``
and ``signaltrace.transaction.durable``. What happens beside dispatches becomes events
on the span current there (:mod:`signaltrace.otel.events`):
``signaltrace.on_commit.registered`` / ``.ran`` / ``.discarded``,
``signaltrace.hazard`` (a task published or a mail sent by a receiver inside a
transaction), ``signaltrace.bypassed_write`` (a bulk write past save receivers, a
hazard too) and ``signaltrace.slow_delete``. They are on by default: rare, cheap next
to a span, and never a span or a trace of their own. A hazard changes no status.

Errors: a receiver that raises gets status ERROR, ``error.type`` and an exception
event. Its dispatch span is ERROR too when the exception left the dispatch; under
``send_robust`` it did not, and the receiver span says ``signaltrace.swallowed``.
An exception raised by the dispatch itself (asgiref's in ``asend``) makes the
dispatch span ERROR with the exception event. A dispatch stopped by signaltrace's
loop guard has the loop's one ``exception`` event
(``signaltrace.errors.SignalLoopError``: the cycle and the stack) and status ERROR;
the spans the error then leaves are ERROR without an event of their own.

Configuration
-------------

Keys of the ``SIGNALTRACE`` setting (see docs/settings.md)::

    SIGNALTRACE = {
        # Only these signals get spans; None: every signal.
        "OTEL_SIGNALS_ALLOW": None,
        # These never do.
        "OTEL_SIGNALS_DENY": ["request_finished"],
        # Fraction of traces in which a hot signal's dispatches get spans.
        "OTEL_SAMPLE_RATES": {"post_save": 0.1, "shop.signals.order_paid": 0.5},
        # Add redacted kwargs as signaltrace.kwargs.<name> attributes.
        "OTEL_RECORD_KWARGS": False,
        # Spans for every dispatch, Django's own plumbing included.
        "OTEL_ALL_DISPATCHES": False,
    }

Signals are named as ``signaltrace.signal`` shows them: ``post_save`` for Django's
own, or by dotted path (``django.db.models.signals.post_save``, ``shop.signals.paid``).
Sampling is decided from the trace id, as OpenTelemetry's ``TraceIdRatioBased``
does (mixed with the signal): all the dispatches of a signal in one trace are kept
or dropped together; outside a trace, each with probability ``rate``.

Signals in ``IGNORE_SIGNALS`` (``pre_init`` and ``post_init`` by default) never
get spans.

API
---
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from signaltrace.core import add_observer, remove_observer
from signaltrace.otel.export import setup_otlp_from_environment
from signaltrace.otel.package import _instruments
from signaltrace.otel.spans import SpanObserver
from signaltrace.otel.version import __version__

__all__ = ["SignalInstrumentor", "setup_otlp_from_environment"]

#: The semantic conventions version whose attribute names the spans use.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.33.0"


class SignalInstrumentor(BaseInstrumentor):
    """Spans for Django signal dispatches and receiver calls.

    A singleton (as every ``BaseInstrumentor``): ``instrument()`` twice is a
    logged no-op, ``uninstrument()`` undoes it.
    """

    _observer: SpanObserver | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        """Register a span observer with signaltrace's core (installs its hooks)."""
        tracer = trace.get_tracer(
            __name__,
            __version__,
            tracer_provider=kwargs.get("tracer_provider"),
            schema_url=SCHEMA_URL,
        )
        self._observer = SpanObserver(tracer)
        add_observer(self._observer)

    def _uninstrument(self, **kwargs: Any) -> None:
        """Stop making spans. The hooks stay installed: the core may still record."""
        if self._observer is not None:
            remove_observer(self._observer)
            self._observer = None
