"""A test run as Chrome trace-event JSON: the flame view that Perfetto UI and speedscope open.

The file is ``{"traceEvents": [...], "displayTimeUnit": "ms"}`` in the Trace Event
Format: one process (the run), one thread track per process of the run (``main``, or
each pytest-xdist worker ``gw0``, ``gw1`` ...), named by ``M`` metadata events. On a
track each test is a complete event (``ph: "X"``, ``ts``/``dur`` in microseconds),
its phases (setup, call, teardown) nested in it, the signal dispatches nested in the
phases, each dispatch's receivers nested in it and the dispatches a receiver sent
nested in that receiver. Slices are named (``test_signup.py::test_new_user [failed]``,
``post_save (auth.User)``, ``accounts.signals.create_user_profile``) and carry no
``args`` unless a receiver raised: speedscope shows args as part of a slice's name,
and same-named slices merge in its left-heavy and sandwich views. A loop the guard
stopped, an exception ``send_robust`` swallowed and a delete that took Django's slow
path are instant events (``ph: "i"``).

Events are built per test with times in nanoseconds on the wall clock
(:func:`wall_ns`), in whatever process ran the test, and converted once, when the
file is written: times relative to the run's first event, in microseconds (to about a
nanosecond). Every child is clamped into its parent, so rounding never makes
two slices overlap and viewers always see a proper tree.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from signaltrace.core import Dispatch, ReceiverCall, Trace

#: The process id every track of the run shares.
RUN_PID = 1
#: The track of a run without xdist workers.
MAIN_TRACK = "main"

# perf_counter_ns is precise but its origin is per process; time_ns is shared by the
# processes of one machine. Their difference, taken once, puts the former on the latter.
_WALL_OFFSET_NS = time.time_ns() - time.perf_counter_ns()


def wall_ns(perf_ns: int | None = None) -> int:
    """A ``perf_counter_ns()`` reading (default: now) on the wall clock, in nanoseconds."""
    return (time.perf_counter_ns() if perf_ns is None else perf_ns) + _WALL_OFFSET_NS


def track_id(track: str) -> int:
    """The thread id of a track: 1 for ``main``, 2 for ``gw0``, 3 for ``gw1`` ..."""
    if track.startswith("gw") and track[2:].isdigit():
        return int(track[2:]) + 2
    return 1


class _Span:
    """An interval that clamps the intervals nested in it."""

    __slots__ = ("end", "start")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = max(end, start)

    def clamp(self, start: int, end: int) -> _Span:
        start = min(max(start, self.start), self.end)
        return _Span(start, min(max(end, start), self.end))


def test_events(
    nodeid: str,
    track: str,
    phases: Iterable[tuple[str, int, int]],
    trace: Trace | None,
    trace_start_ns: int,
    outcome: str | None = None,
) -> list[dict[str, Any]]:
    """The events of one test: its slice, its phases and the dispatches of ``trace``.

    ``phases`` are ``(name, start, end)`` wall-clock nanoseconds; ``trace_start_ns`` is
    the wall-clock time the trace's ``start_ns`` counts from. Times in the events are
    wall-clock nanoseconds until :func:`write_chrome_trace` converts them.
    """
    phases = list(phases)
    if not phases:
        return []
    tid = track_id(track)
    test = _Span(min(start for _, start, _ in phases), max(end for _, _, end in phases))
    name = nodeid if outcome in (None, "passed") else f"{nodeid} [{outcome}]"
    events = [_slice(name, "test", test, tid)]
    for phase, start, end in phases:
        events.append(_slice(phase, "phase", test.clamp(start, end), tid))
    if trace is None:
        return events
    dispatches = trace.dispatches
    kept = {id(dispatch) for dispatch in dispatches}
    for dispatch in dispatches:
        if dispatch.parent is None or id(dispatch.parent.dispatch) not in kept:
            _dispatch_events(dispatch, test, trace_start_ns, tid, events)
    for delete in trace.slow_deletes:
        at = test.clamp(trace_start_ns + delete.start_ns, trace_start_ns + delete.start_ns).start
        events.append(_instant(f"slow delete: {delete.summary}", "hazard", at, tid))
    return events


def _dispatch_events(
    dispatch: Dispatch, parent: _Span, origin: int, tid: int, events: list[dict[str, Any]]
) -> None:
    span = parent.clamp(origin + dispatch.start_ns, origin + dispatch.start_ns + dispatch.duration_ns)
    name = f"{dispatch.signal_name} ({dispatch.sender_name})"
    if dispatch.method != "send":
        name += f" {dispatch.method}"
    events.append(_slice(name, "dispatch", span, tid))
    if dispatch.loop is not None:
        events.append(_instant(f"loop stopped: {dispatch.signal_name}", "hazard", span.start, tid))
    for call in dispatch.calls:
        _call_events(call, span, origin, tid, events)


def _call_events(
    call: ReceiverCall, parent: _Span, origin: int, tid: int, events: list[dict[str, Any]]
) -> None:
    span = parent.clamp(origin + call.start_ns, origin + call.start_ns + call.duration_ns)
    args = None
    if call.exception is not None:
        kind = type(call.exception)
        args = {"exception": f"{kind.__module__}.{kind.__qualname__}", "swallowed": call.swallowed}
        if call.swallowed:
            events.append(
                _instant(f"swallowed {kind.__qualname__}: {call.receiver_name}", "hazard", span.end, tid)
            )
    events.append(_slice(call.receiver_name, "receiver", span, tid, args))
    for child in call.dispatches:
        _dispatch_events(child, span, origin, tid, events)


def _slice(
    name: str, category: str, span: _Span, tid: int, args: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A complete event. ``args`` only where they tell something the name does not:
    speedscope shows a slice's args as part of its name."""
    event = {"name": name, "cat": category, "ph": "X", "ts": span.start, "dur": span.end - span.start}
    event.update(pid=RUN_PID, tid=tid)
    if args:
        event["args"] = args
    return event


def _instant(name: str, category: str, at: int, tid: int) -> dict[str, Any]:
    return {"name": name, "cat": category, "ph": "i", "s": "t", "ts": at, "pid": RUN_PID, "tid": tid}


def chrome_trace(events: Iterable[dict[str, Any]], run_name: str = "pytest") -> dict[str, Any]:
    """The trace file's content: ``events`` (nanoseconds) made relative and microseconds, and metadata.

    Events are sorted per track by start, a parent before the children that start
    with it; each track is named and sorted by its id.
    """
    events = list(events)
    origin = min((event["ts"] for event in events), default=0)
    converted = []
    for event in events:
        start = event["ts"] - origin
        event = dict(event, ts=_microseconds(start))
        if "dur" in event:
            event["dur"] = _microseconds(start + event["dur"]) - event["ts"]
        converted.append(event)
    converted.sort(key=lambda event: (event["tid"], event["ts"], -event.get("dur", 0), event["ph"] != "X"))
    tracks = sorted({event["tid"] for event in converted})
    names = {track_id(MAIN_TRACK): MAIN_TRACK}
    metadata: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": RUN_PID, "tid": 0, "args": {"name": run_name}},
    ]
    for tid in tracks:
        name = names.get(tid, f"gw{tid - 2}")
        metadata.append(
            {"name": "thread_name", "ph": "M", "pid": RUN_PID, "tid": tid, "args": {"name": name}}
        )
        metadata.append(
            {"name": "thread_sort_index", "ph": "M", "pid": RUN_PID, "tid": tid, "args": {"sort_index": tid}}
        )
    return {"traceEvents": metadata + converted, "displayTimeUnit": "ms"}


def _microseconds(nanoseconds: int) -> float:
    """Microseconds in steps of 1/1024 (about a nanosecond): binary fractions, which a
    double holds exactly, so a viewer's ``ts + dur`` of a child never passes its
    parent's end by a rounding error."""
    return (nanoseconds * 1024 + 500) // 1000 / 1024


def write_chrome_trace(path: str | os.PathLike[str], events: Iterable[dict[str, Any]]) -> int:
    """Write the run's events to ``path`` (atomically); returns how many events it holds."""
    content = chrome_trace(events)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(content, separators=(",", ":")), encoding="utf-8")
    os.replace(temporary, target)
    return len(content["traceEvents"])
