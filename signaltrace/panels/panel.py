"""``SignalTracePanel``: records one request with :func:`signaltrace.record`.

Recording is switched on per request, in the context (thread or asyncio task) that
runs it, by entering a ``record()`` block in ``enable_instrumentation`` and leaving it
in ``disable_instrumentation``. The toolbar's middleware calls both from the same
frame, before and after the rest of the request (sync ``__call__`` or async
``__acall__``), so the context variable is set and reset in one context, and two
concurrent requests never see each other's dispatches. No global receiver is
connected.

Stats are ``trace.to_dict()`` plus a few numbers, the indexes of the calls that
recorded the same exception object, and those of the receiver call that registered
each ``on_commit`` callback or made each bypassed write: JSON only, because the
toolbar serializes them to its store and renders the panel again from there.
"""

from __future__ import annotations

from typing import Any

from debug_toolbar.panels import Panel
from django.apps import apps
from django.core import checks
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.templatetags.static import static

import signaltrace
from signaltrace.conf import DEFAULTS, setting
from signaltrace.panels.effect_rows import OWNERS_KEY, effect_owners
from signaltrace.panels.exceptions import exception_groups
from signaltrace.panels.view import build_context, subtitle, summarize
from signaltrace.safety import report_internal_error


def _slow_ms() -> float:
    value = setting("PANEL_SLOW_RECEIVER_MS")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return value
    return DEFAULTS["PANEL_SLOW_RECEIVER_MS"]  # reported by check signaltrace.E010


class SignalTracePanel(Panel):
    """Every signal dispatch of the request: tree, waterfall, exceptions, loops, hazards."""

    title = "Signal trace"
    template = "signaltrace/panel.html"
    is_async = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._recording: Any = None
        self._trace: signaltrace.Trace | None = None
        self._failed = False

    @property
    def nav_subtitle(self) -> str:
        """``12 dispatches · 19 receivers · 4.3 ms`` (time in top-level dispatches)."""
        summary = self.get_stats().get("summary")
        return subtitle(summary) if summary else ""

    @property
    def scripts(self) -> list[str]:
        """The filter box's module; the toolbar loads it each time the panel renders."""
        return [*super().scripts, static("signaltrace/panel.js")]

    @property
    def content(self) -> str:
        """Rendered from the stored stats only, so it works for requests in the store."""
        return render_to_string(self.template, build_context(self.get_stats()))

    def enable_instrumentation(self) -> None:
        """Start recording this request. Called early by the middleware; idempotent."""
        if self._recording is not None:
            return
        try:
            recording = signaltrace.record()
            self._trace = recording.__enter__()
            self._recording = recording
        except Exception:  # noqa: BLE001 - never break the request
            self._failed = True
            report_internal_error("SignalTracePanel.enable_instrumentation")

    def disable_instrumentation(self) -> None:
        """Stop recording. Called late by the middleware, whatever the response; idempotent."""
        recording, self._recording = self._recording, None
        if recording is None:
            return
        try:
            recording.__exit__(None, None, None)
        except Exception:  # noqa: BLE001 - never break the request
            report_internal_error("SignalTracePanel.disable_instrumentation")

    def generate_stats(self, request: HttpRequest, response: HttpResponse) -> None:
        """Store the trace as JSON, after ``disable_instrumentation``."""
        trace, self._trace = self._trace, None
        if trace is None:
            if self._failed:
                self.record_stats({"error": "Recording failed; the 'signaltrace' logger has the details."})
            return
        try:
            data = trace.to_dict()
            groups = exception_groups(trace)
            owners = effect_owners(trace)
        except Exception:  # noqa: BLE001 - never break the request
            report_internal_error("SignalTracePanel.generate_stats")
            self.record_stats({"error": "Reading the trace failed; the 'signaltrace' logger says why."})
            return
        self.record_stats(
            {
                "trace": data,
                "exception_groups": groups,
                OWNERS_KEY: owners,
                "summary": summarize(data, groups),
                "slow_ms": _slow_ms(),
                "max_dispatches": setting("MAX_DISPATCHES"),
            }
        )

    def generate_server_timing(self, request: HttpRequest, response: HttpResponse) -> None:
        """One ``Server-Timing`` entry: time in top-level dispatches, with the counts."""
        summary = self.get_stats().get("summary")
        if summary:
            self.record_server_timing(
                "signals",
                f"Signals: {summary['dispatches']} dispatches, {summary['receivers']} receivers",
                round(summary["signal_ms"], 3),
            )

    @classmethod
    def run_checks(cls) -> list[checks.CheckMessage]:
        """``signaltrace.W010``: the panel's template and script come from the signaltrace app."""
        if apps.is_installed("signaltrace"):
            return []
        return [
            checks.Warning(
                "SignalTracePanel is in DEBUG_TOOLBAR_PANELS but 'signaltrace' is not in INSTALLED_APPS.",
                hint="Add 'signaltrace' to INSTALLED_APPS: the panel's template and script come from it.",
                id="signaltrace.W010",
            )
        ]
