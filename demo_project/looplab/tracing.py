"""Turn a trace into plain rows for the demo's templates (the toolbar shows the full one)."""

from typing import Any

from signaltrace import Trace


def _ms(duration_ns: int | None) -> str:
    return "" if duration_ns is None else f"{duration_ns / 1e6:.2f} ms"


#: Dispatches shown on a page; a 1,000-row delete sends 2,000 (the toolbar keeps them all).
MAX_ROWS = 200


def summarize(trace: Trace) -> dict[str, Any]:
    """Dispatches in start order with their receivers; plain strings only (escaped by templates)."""
    rows = []
    dispatches = trace.dispatches
    for dispatch in dispatches[:MAX_ROWS]:
        rows.append(
            {
                "depth": dispatch.depth,
                "indent": dispatch.depth * 1.5,
                "signal": dispatch.signal_name,
                "sender": dispatch.sender_name,
                "method": dispatch.method,
                "duration": _ms(dispatch.duration_ns),
                "loop": dispatch.loop.message if dispatch.loop is not None else "",
                "kwargs": dict(dispatch.kwargs),
                "calls": [
                    {
                        "receiver": call.receiver_name,
                        "location": call.location,
                        "duration": _ms(call.duration_ns),
                        "is_async": call.is_async,
                        "error": (
                            f"{type(call.exception).__name__}: {call.exception}"
                            if call.exception is not None
                            else ""
                        ),
                        "swallowed": call.swallowed,
                    }
                    for call in dispatch.calls
                ],
            }
        )
    return {
        "rows": rows,
        "hidden": len(dispatches) - len(rows),
        "loops": [loop.message for loop in trace.loops],
        "max_depth": max((row["depth"] for row in rows), default=0),
        "slow_deletes": [
            {
                "summary": delete.summary,
                "duration": _ms(delete.duration_ns),
                "dispatches": len(delete.dispatches),
                "receivers": [
                    {"signal": r.signal, "sender": r.sender, "receiver": r.receiver, "location": r.location}
                    for r in delete.receivers
                ],
            }
            for delete in trace.slow_deletes
        ],
    }
