"""Turn the panel's stored stats into what its template shows.

The input is only JSON (the ``trace.to_dict()`` form plus a few numbers), because
the toolbar serializes stats to its store and renders the panel again from there,
possibly in another process. Everything is computed here so the template stays
small: the waterfall's two time axes come from :mod:`signaltrace.panels.axes`, the
"Exceptions" entries from :mod:`signaltrace.panels.exceptions`, the "Hazards" box
and the transaction badges from :mod:`signaltrace.panels.hazards`, the slow deletes'
rows from :mod:`signaltrace.panels.deletes`, the ``on_commit`` callbacks' and
bypassed writes' rows from :mod:`signaltrace.panels.effect_rows`, and the dispatch
rows, of which there can be thousands, are built by :mod:`signaltrace.panels.rows`.

Nothing here marks text safe: the template's autoescaping or ``format_html``
escapes every value.
"""

from __future__ import annotations

from typing import Any

from signaltrace.conf import DEFAULTS
from signaltrace.core import short_path
from signaltrace.panels.axes import AXIS_UNITS, RequestAxis, SignalsAxis, default_axis, format_ms
from signaltrace.panels.deletes import delete_row, delete_spans, delete_views
from signaltrace.panels.effect_rows import CALLBACKS, WRITES, effect_rows, effect_spans
from signaltrace.panels.exceptions import group_views
from signaltrace.panels.hazards import hazard_views, transaction_badges
from signaltrace.panels.rows import gap_marks, tree

__all__ = ["build_context", "format_ms", "subtitle", "summarize"]


def summarize(trace: dict[str, Any], exception_groups: list[Any] | None = None) -> dict[str, Any]:
    """Counts and total time of a ``trace.to_dict()``, for the nav subtitle and Server-Timing.

    The time is that of the top-level dispatches (nested ones run inside them). An
    exception that propagated through several receivers counts once when its
    ``exception_groups`` are given (see :mod:`signaltrace.panels.exceptions`).
    """
    dispatches = trace.get("dispatches") or []
    receivers = sum(len(d.get("calls") or ()) for d in dispatches)
    signal_ns = sum(d.get("duration_ns") or 0 for d in dispatches if not d.get("depth"))
    exceptions = sum(1 for d in dispatches for c in d.get("calls") or () if c.get("exception"))
    if exception_groups is not None:
        exceptions = len(exception_groups)
    slow_deletes = trace.get("slow_deletes")
    return {
        "dispatches": len(dispatches),
        "receivers": receivers,
        "signal_ns": signal_ns,
        "signal_ms": signal_ns / 1_000_000,
        "exceptions": exceptions,
        "loops": len(trace.get("loops") or ()),
        "dropped": trace.get("dropped") or 0,
        "slow_deletes": len(slow_deletes) if isinstance(slow_deletes, list) else 0,
        "hazards": _count(trace.get("hazards")),
        "on_commit_callbacks": _count(trace.get(CALLBACKS)),
        "bypassed_writes": _count(trace.get(WRITES)),
    }


def _count(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


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


Axes = tuple[RequestAxis, SignalsAxis]


def _bars(axes: Axes, start_ns: int, duration_ns: int) -> list[dict[str, str]]:
    """A bar on each axis: the request's, then the signals-only one."""
    return [axis.bar(start_ns, duration_ns) for axis in axes]


def _exception_view(exception: dict[str, Any]) -> dict[str, Any]:
    swallowed = bool(exception.get("swallowed"))
    return {
        "type": exception.get("type") or "",
        "message": exception.get("message") or "",
        "traceback": exception.get("traceback") or "",
        "swallowed": swallowed,
        "verdict": "swallowed by send_robust" if swallowed else "raised",
    }


def _call_view(call: dict[str, Any], axes: Axes, slow_ns: float) -> dict[str, Any]:
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
        "bars": _bars(axes, call.get("start_ns") or 0, duration),
        "exception": _exception_view(exception) if exception else None,
        "nested": len(call.get("dispatches") or ()),
    }


def _dispatch_view(
    dispatch: dict[str, Any], dispatches: list[dict[str, Any]], axes: Axes, slow_ns: float
) -> dict[str, Any]:
    calls = [_call_view(call, axes, slow_ns) for call in dispatch.get("calls") or ()]
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
    transaction = transaction_badges(dispatch.get("transaction"))
    if transaction and transaction["rolled_back"]:
        classes.append("st-rolled-back")
    depth = dispatch.get("depth") or 0
    return {
        "id": dispatch.get("id"),
        "depth": depth,
        "depth_class": f"st-depth-{min(depth, 12)}",
        "start_ns": dispatch.get("start_ns") or 0,
        "delete": 0,  # the number of the slow delete it was sent in, set by delete_views
        "signal": dispatch.get("signal") or "",
        "sender": dispatch.get("sender") or "",
        "method": dispatch.get("method") or "",
        "receivers": len(calls),
        "duration": format_ms(dispatch.get("duration_ns") or 0),
        "bars": _bars(axes, dispatch.get("start_ns") or 0, dispatch.get("duration_ns") or 0),
        "kwargs": sorted((dispatch.get("kwargs") or {}).items()),
        "calls": calls,
        "via": via,
        "loop": dispatch.get("loop"),
        "transaction": transaction,
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
    # A slow delete's time is signal time: its span keeps its place on the signals-only
    # axis (the rows it loads come between its dispatches) instead of being compressed.
    # So is an on_commit callback's run and a bypassed write: each has a row.
    extra = delete_spans(trace) + effect_spans(trace)
    request = RequestAxis(
        max(trace.get("duration_ns") or 0, *(_end(d) for d in raw), *(e for _, e in extra), 1)
    )
    signals = SignalsAxis([(d.get("start_ns") or 0, _end(d)) for d in raw if not d.get("depth")] + extra)
    dispatches = [_dispatch_view(dispatch, raw, (request, signals), slow_ns) for dispatch in raw]
    deletes = delete_views(trace, dispatches, (request, signals))
    marks = gap_marks(signals.gap_path())
    placed = [(d["position"], d["start_ns"], delete_row(d, AXIS_UNITS, marks)) for d in deletes]
    placed += effect_rows(stats, dispatches, (request, signals), AXIS_UNITS, marks)
    before: dict[int, list[Any]] = {}
    for position, _, row in sorted(placed, key=lambda item: item[:2]):
        before.setdefault(position, []).append(row)
    groups = stats.get("exception_groups")
    exceptions = group_views(dispatches, groups if isinstance(groups, list) else None)
    summary = stats.get("summary") or summarize(trace)
    return {
        "recorded": bool(trace),
        "error": stats.get("error"),
        "summary": summary,
        "subtitle": subtitle(summary),
        "dispatches": dispatches,
        "tree": tree(dispatches, AXIS_UNITS, signals.gap_path(), before),
        "slow_deletes": deletes,
        "effect_rows": len(placed) - len(deletes),
        "hazards": hazard_views(trace),
        "empty_count": sum(1 for dispatch in dispatches if not dispatch["receivers"]),
        "exceptions": exceptions,
        "loops": [_loop_view(loop) for loop in trace.get("loops") or ()],
        "dropped": trace.get("dropped") or 0,
        "max_dispatches": stats.get("max_dispatches"),
        "slow_ms": slow_ms,
        "slow_receivers": sum(dispatch["slow"] for dispatch in dispatches),
        "axis_units": AXIS_UNITS,
        "ticks": request.ticks(),
        "total": format_ms(request.total_ns),
        "axis": default_axis(summary.get("signal_ns") or 0, request.total_ns) if raw or placed else "request",
        "signals_first": format_ms(signals.first_ns),
        "signals_last": format_ms(signals.last_ns),
        "signals_span": format_ms(signals.total_ns if raw or placed else 0),
        "gaps": signals.markers(),
    }


def _end(dispatch: dict[str, Any]) -> int:
    return (dispatch.get("start_ns") or 0) + (dispatch.get("duration_ns") or 0)
