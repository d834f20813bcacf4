"""Turn a trace into plain rows for the demo's templates (the toolbar shows the full one)."""

from typing import Any

from signaltrace import Trace


def _ms(duration_ns: int | None) -> str:
    return "" if duration_ns is None else f"{duration_ns / 1e6:.2f} ms"


def summarize(trace: Trace) -> dict[str, Any]:
    """Dispatches in start order with their receivers; plain strings only (escaped by templates)."""
    rows = []
    for dispatch in trace.dispatches:
        rows.append(
            {
                "depth": dispatch.depth,
                "indent": dispatch.depth * 1.5,
                "signal": dispatch.signal_name,
                "sender": dispatch.sender_name,
                "method": dispatch.method,
                "duration": _ms(dispatch.duration_ns),
                "loop": dispatch.loop.message if dispatch.loop is not None else "",
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
        "loops": [loop.message for loop in trace.loops],
        "max_depth": max((row["depth"] for row in rows), default=0),
    }
