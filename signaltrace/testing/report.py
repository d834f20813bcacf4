"""The JSON report of ``pytest --signaltrace-report=PATH``: one summary per test, for CI artifacts.

A test's summary is built from its Trace right after the test ran (so it travels
with the test report from pytest-xdist workers to the controller as plain JSON
types) and the controller writes every summary into one file at the end::

    {"version": 1, "signaltrace": "0.1.0",
     "totals": {"tests", "dispatches", "receiver_calls", "loops", "receiver_errors"},
     "tests": [{"nodeid", "outcome", "worker", "duration_ns", "dispatches", "dropped",
                "max_depth", "receiver_calls",
                "signals": [{"signal", "sender", "count", "receiver_calls", "max_depth"}],
                "slowest_receivers": [{"receiver", "location", "calls", "total_ns", "max_ns"}],
                "loops": [Loop.to_dict()],
                "receiver_errors": [{"signal", "sender", "receiver", "location", "type",
                                     "message", "swallowed"}],
                "slow_deletes": [{"summary", "model", "instance_pk", "rows", "signals_sent",
                                  "receivers": [{"signal", "sender", "receiver", "location"}],
                                  "duration_ns"}]}]}

``slow_deletes`` (one entry per delete that took Django's slow path because delete
receivers listen, see ``signaltrace.SlowDelete``) is present only in the summaries of
tests that made one, so reports of projects without delete receivers keep their shape.

Tests are sorted by node id, so reports of runs with and without xdist compare line by line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from signaltrace import __version__
from signaltrace.core import exception_type_name, str_or_repr

if TYPE_CHECKING:
    from signaltrace.core import SlowDelete, Trace

VERSION = 1
#: Receivers listed per test in ``slowest_receivers``.
SLOWEST = 10


def summarize(trace: Trace) -> dict[str, Any]:
    """A test's summary, JSON types only. ``nodeid``, ``outcome`` and ``worker`` are added by the caller."""
    signals: dict[tuple[str, str], dict[str, Any]] = {}
    receivers: dict[tuple[str, str], dict[str, Any]] = {}
    errors = []
    dispatches = trace.dispatches
    for dispatch in dispatches:
        entry = signals.setdefault(
            (dispatch.signal_name, dispatch.sender_name),
            {
                "signal": dispatch.signal_name,
                "sender": dispatch.sender_name,
                "count": 0,
                "receiver_calls": 0,
                "max_depth": 0,
            },
        )
        entry["count"] += 1
        entry["receiver_calls"] += len(dispatch.calls)
        entry["max_depth"] = max(entry["max_depth"], dispatch.depth)
        for call in dispatch.calls:
            timing = receivers.setdefault(
                (call.receiver_name, call.location),
                {
                    "receiver": call.receiver_name,
                    "location": call.location,
                    "calls": 0,
                    "total_ns": 0,
                    "max_ns": 0,
                },
            )
            timing["calls"] += 1
            timing["total_ns"] += call.duration_ns
            timing["max_ns"] = max(timing["max_ns"], call.duration_ns)
            if call.exception is not None:
                errors.append(
                    {
                        "signal": dispatch.signal_name,
                        "sender": dispatch.sender_name,
                        "receiver": call.receiver_name,
                        "location": call.location,
                        "type": exception_type_name(call.exception),
                        "message": str_or_repr(call.exception),
                        "swallowed": call.swallowed,
                    }
                )
    slowest = sorted(receivers.values(), key=lambda timing: (-timing["total_ns"], timing["receiver"]))
    summary = {
        "duration_ns": trace.duration_ns,
        "dispatches": len(dispatches),
        "dropped": trace.dropped,
        "max_depth": max((dispatch.depth for dispatch in dispatches), default=0),
        "receiver_calls": sum(len(dispatch.calls) for dispatch in dispatches),
        "signals": sorted(
            signals.values(), key=lambda entry: (-entry["count"], entry["signal"], entry["sender"])
        ),
        "slowest_receivers": slowest[:SLOWEST],
        "loops": [loop.to_dict() for loop in trace.loops],
        "receiver_errors": errors,
    }
    slow_deletes = trace.slow_deletes
    if slow_deletes:
        summary["slow_deletes"] = [_slow_delete_entry(delete) for delete in slow_deletes]
    return summary


def _slow_delete_entry(delete: SlowDelete) -> dict[str, Any]:
    return {
        "summary": delete.summary,
        "model": delete.model,
        "instance_pk": delete.instance_pk,
        "rows": [{"model": model, "count": count} for model, count in delete.rows],
        "signals_sent": delete.signals_sent,
        "receivers": [
            {"signal": r.signal, "sender": r.sender, "receiver": r.receiver, "location": r.location}
            for r in delete.receivers
        ],
        "duration_ns": delete.duration_ns,
    }


def build_report(tests: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole report from per-test summaries (in any order)."""
    ordered = sorted(tests, key=lambda test: test["nodeid"])
    return {
        "version": VERSION,
        "signaltrace": __version__,
        "totals": {
            "tests": len(ordered),
            "dispatches": sum(test["dispatches"] for test in ordered),
            "receiver_calls": sum(test["receiver_calls"] for test in ordered),
            "loops": sum(len(test["loops"]) for test in ordered),
            "receiver_errors": sum(len(test["receiver_errors"]) for test in ordered),
        },
        "tests": ordered,
    }


def write_report(path: str | os.PathLike[str], tests: list[dict[str, Any]]) -> Path:
    """Write the report atomically (a reader never sees half a file); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(build_report(tests), indent=2) + "\n", encoding="utf-8")
    partial.replace(target)
    return target
