"""Turn the panel's stored stats into what its template shows.

The input is only JSON (the ``trace.to_dict()`` form plus a few numbers), because
the toolbar serializes stats to its store and renders the panel again from there,
possibly in another process. Everything is computed here so the template stays
small; the dispatch rows, of which there can be thousands, are built by
:mod:`signaltrace.panels.rows`.

Nothing here marks text safe: the template's autoescaping or ``format_html``
escapes every value.
"""

from __future__ import annotations

from typing import Any

from signaltrace.conf import DEFAULTS
from signaltrace.core import short_path
from signaltrace.panels.rows import tree

#: Width of the waterfall's SVG coordinate system (the SVG stretches to the cell).
AXIS_UNITS = 1000
#: Shortest bar drawn, in axis units, so instant dispatches still show.
MIN_BAR_UNITS = 2.0


def format_ms(duration_ns: float) -> str:
    """``0.042 ms``, ``4.31 ms``, ``12.3 ms``, ``1204 ms``: about three significant digits."""
    ms = duration_ns / 1_000_000
    if ms < 1:
        return f"{ms:.3f} ms"
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms:.0f} ms"


def summarize(trace: dict[str, Any]) -> dict[str, Any]:
    """Counts and total time of a ``trace.to_dict()``, for the nav subtitle and Server-Timing.

    The time is that of the top-level dispatches (nested ones run inside them).
    """
    dispatches = trace.get("dispatches") or []
    receivers = sum(len(d.get("calls") or ()) for d in dispatches)
    signal_ns = sum(d.get("duration_ns") or 0 for d in dispatches if not d.get("depth"))
    exceptions = sum(1 for d in dispatches for c in d.get("calls") or () if c.get("exception"))
    return {
        "dispatches": len(dispatches),
        "receivers": receivers,
        "signal_ns": signal_ns,
        "signal_ms": signal_ns / 1_000_000,
        "exceptions": exceptions,
        "loops": len(trace.get("loops") or ()),
        "dropped": trace.get("dropped") or 0,
    }


def subtitle(summary: dict[str, Any]) -> str:
    """``12 dispatches · 19 receivers · 4.3 ms``."""
    dispatches = summary.get("dispatches", 0)
    receivers = summary.get("receivers", 0)
    return (
        f"{dispatches} dispatch{'es' if dispatches != 1 else ''} · "
        f"{receivers} receiver{'s' if receivers != 1 else ''} · "
        f"{summary.get('signal_ms', 0.0):.1f} ms"
    )


def _location(item: dict[str, Any]) -> tuple[str, str]:
    """The short and the full ``file:line`` of a receiver call or loop step."""
    file = item.get("file")
    if not file:
        return "", ""
    line = item.get("line")
    return f"{short_path(str(file))}:{line}", f"{file}:{line}"


class _Axis:
    """Maps a trace's nanoseconds onto the waterfall's axis units."""

    def __init__(self, total_ns: int) -> None:
        self.total_ns = max(total_ns, 1)

    def bar(self, start_ns: int, duration_ns: int) -> dict[str, str]:
        x = min(max(start_ns, 0) / self.total_ns * AXIS_UNITS, AXIS_UNITS - MIN_BAR_UNITS)
        width = max(duration_ns / self.total_ns * AXIS_UNITS, MIN_BAR_UNITS)
        width = min(width, AXIS_UNITS - x)
        return {"x": f"{x:.2f}", "width": f"{width:.2f}"}

    def ticks(self) -> list[dict[str, str]]:
        return [
            {"percent": f"{share * 100:.0f}", "label": format_ms(self.total_ns * share)}
            for share in (0, 0.25, 0.5, 0.75, 1)
        ]


def _exception_view(exception: dict[str, Any]) -> dict[str, Any]:
    swallowed = bool(exception.get("swallowed"))
    return {
        "type": exception.get("type") or "",
        "message": exception.get("message") or "",
        "traceback": exception.get("traceback") or "",
        "swallowed": swallowed,
        "verdict": "swallowed by send_robust" if swallowed else "raised",
    }


def _call_view(call: dict[str, Any], axis: _Axis, slow_ns: float) -> dict[str, Any]:
    duration = call.get("duration_ns") or 0
    exception = call.get("exception")
    location, full_location = _location(call)
    return {
        "receiver": call.get("receiver") or "",
        "location": location,
        "full_location": full_location,
        "dispatch_uid": call.get("dispatch_uid"),
        "is_async": bool(call.get("is_async")),
        "duration": format_ms(duration),
        "slow": duration >= slow_ns,
        "bar": axis.bar(call.get("start_ns") or 0, duration),
        "exception": _exception_view(exception) if exception else None,
        "nested": len(call.get("dispatches") or ()),
    }


def _dispatch_view(
    dispatch: dict[str, Any], dispatches: list[dict[str, Any]], axis: _Axis, slow_ns: float
) -> dict[str, Any]:
    calls = [_call_view(call, axis, slow_ns) for call in dispatch.get("calls") or ()]
    via = ""
    parent = dispatch.get("parent")
    if parent:
        try:
            via = dispatches[parent["dispatch"]]["calls"][parent["call"]]["receiver"]
        except (IndexError, KeyError, TypeError):
            via = ""
    words = [dispatch.get("signal") or "", dispatch.get("sender") or ""]
    words.extend(call["receiver"] for call in calls)
    classes = []
    if not calls:
        classes.append("st-empty")
    if any(call["slow"] for call in calls):
        classes.append("st-has-slow")
    if any(call["exception"] for call in calls):
        classes.append("st-has-error")
    if dispatch.get("loop"):
        classes.append("st-has-loop")
    depth = dispatch.get("depth") or 0
    return {
        "id": dispatch.get("id"),
        "depth": depth,
        "depth_class": f"st-depth-{min(depth, 12)}",
        "signal": dispatch.get("signal") or "",
        "sender": dispatch.get("sender") or "",
        "method": dispatch.get("method") or "",
        "receivers": len(calls),
        "duration": format_ms(dispatch.get("duration_ns") or 0),
        "bar": axis.bar(dispatch.get("start_ns") or 0, dispatch.get("duration_ns") or 0),
        "kwargs": sorted((dispatch.get("kwargs") or {}).items()),
        "calls": calls,
        "via": via,
        "loop": dispatch.get("loop"),
        "classes": " ".join(classes),
        "errors": sum(1 for call in calls if call["exception"]),
        "slow": sum(1 for call in calls if call["slow"]),
        "filter": " ".join(words).lower(),
    }


def _loop_view(loop: dict[str, Any]) -> dict[str, Any]:
    steps = []
    for step in loop.get("cycle") or ():
        target = step.get("instance") or step.get("sender") or ""
        where, full_where = _location(step)
        steps.append(
            {
                "dispatch": f"{step.get('signal') or ''}({target})",
                "receiver": step.get("receiver") or "",
                "location": where,
                "full_location": full_where,
            }
        )
    action = loop.get("action")
    return {
        "message": loop.get("message") or "",
        "verdict": "stopped: SignalLoopError raised" if action == "raised" else "warned, not stopped",
        "swallowed": bool(loop.get("swallowed")),
        "steps": steps,
    }


def build_context(stats: dict[str, Any]) -> dict[str, Any]:
    """The template context for stored ``stats`` (see ``SignalTracePanel.generate_stats``)."""
    trace = stats.get("trace") or {}
    raw = trace.get("dispatches") or []
    slow_ms = stats.get("slow_ms") or DEFAULTS["PANEL_SLOW_RECEIVER_MS"]
    slow_ns = float(slow_ms) * 1_000_000
    axis = _Axis(max(trace.get("duration_ns") or 0, *(_end(d) for d in raw), 1))
    dispatches = [_dispatch_view(dispatch, raw, axis, slow_ns) for dispatch in raw]
    exceptions = [
        {"dispatch": dispatch, "call": call, **call["exception"]}
        for dispatch in dispatches
        for call in dispatch["calls"]
        if call["exception"]
    ]
    summary = stats.get("summary") or summarize(trace)
    return {
        "recorded": bool(trace),
        "error": stats.get("error"),
        "summary": summary,
        "subtitle": subtitle(summary),
        "dispatches": dispatches,
        "tree": tree(dispatches, AXIS_UNITS),
        "empty_count": sum(1 for dispatch in dispatches if not dispatch["receivers"]),
        "exceptions": exceptions,
        "loops": [_loop_view(loop) for loop in trace.get("loops") or ()],
        "dropped": trace.get("dropped") or 0,
        "max_dispatches": stats.get("max_dispatches"),
        "slow_ms": slow_ms,
        "slow_receivers": sum(dispatch["slow"] for dispatch in dispatches),
        "axis_units": AXIS_UNITS,
        "ticks": axis.ticks(),
        "total": format_ms(axis.total_ns),
    }


def _end(dispatch: dict[str, Any]) -> int:
    return (dispatch.get("start_ns") or 0) + (dispatch.get("duration_ns") or 0)
