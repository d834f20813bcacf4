"""The JSON report of a test run, shared by the pytest plugin and the Django test runner.

One builder, two front ends: each front end records the parts of a test (its
phases) with ``record()``, turns each part's Trace into a :func:`summarize` dict
right after the part ends (names are read while the test's objects still live),
and hands the test's parts to :func:`entry_of_test`. At the end of the run,
:func:`write_report` aggregates the entries into the suite summary and writes one
file; :func:`text_summary` gives the few lines printed at the end of the run.

Phases: ``class_setup`` (``setUpClass``, ``setUpTestData``; the Django runner),
``setup`` (fixtures, ``setUp``), ``call`` (the test), ``teardown`` and
``class_teardown`` (the Django runner). Under pytest, class-scoped fixtures and
``setUpClass`` run in the setup phase of a class's first test, and a unittest
test case's ``setUp``/``tearDown`` in its call phase: pytest runs them there.

Part summaries hold every tally (signals by sender, receivers under their signal)
as plain JSON types, so they travel from pytest-xdist workers to the controller;
trimming to the top few happens once, when the report is built. The schema is
documented in docs/report.md; :data:`VERSION` changes when a key changes meaning or
goes away, not when one is added (``hazards`` was added to version 2).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from signaltrace import __version__
from signaltrace.core import exception_type_name, str_or_repr

if TYPE_CHECKING:
    from signaltrace.core import Hazard, SlowDelete, Trace

#: The report's schema version (docs/report.md).
VERSION = 2
#: The parts of a test, in the order they run.
PHASES = ("class_setup", "setup", "call", "teardown", "class_teardown")
#: ``summary``: per-test counts and the top few; ``full``: every tally of every phase.
DETAILS = ("summary", "full")
#: Items in each section of the suite summary.
TOP = 10
#: Signals (by sender) and receivers listed per test with ``detail="summary"``.
TEST_TOP = 3
#: Receivers listed per phase with ``detail="full"`` (the slowest by total time).
PHASE_RECEIVERS = 10

_COUNTS = ("dispatches", "empty_dispatches", "receiver_calls", "dropped", "ignored_dispatches")


# ------------------------------------------------------------------ one part of a test


def summarize(trace: Trace, ignored: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One part (phase) of a test, JSON types only, every tally kept.

    ``ignored`` is what :class:`~signaltrace.testing.ignored.IgnoredCounter` counted
    for the dispatches ``IGNORE_SIGNALS`` kept out of the trace meanwhile.
    """
    signals: dict[tuple[str, str], list[Any]] = {}
    receivers: dict[tuple[str, str, str], list[Any]] = {}
    errors = []
    dispatches = trace.dispatches
    for dispatch in dispatches:
        calls = dispatch.calls
        tally = signals.get((dispatch.signal_name, dispatch.sender_name))
        if tally is None:
            tally = signals[(dispatch.signal_name, dispatch.sender_name)] = [0, 0, 0, 0]
        tally[0] += 1
        tally[1] += 0 if calls else 1
        tally[2] += len(calls)
        tally[3] = max(tally[3], dispatch.depth)
        for call in calls:
            timing = receivers.get((dispatch.signal_name, call.receiver_name, call.location))
            if timing is None:
                timing = receivers[(dispatch.signal_name, call.receiver_name, call.location)] = [0, 0, 0]
            timing[0] += 1
            timing[1] += call.duration_ns
            timing[2] = max(timing[2], call.duration_ns)
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
    ignored = dict(ignored or {})
    part: dict[str, Any] = {
        "duration_ns": trace.duration_ns,
        "dispatches": len(dispatches),
        "empty_dispatches": sum(tally[1] for tally in signals.values()),
        "receiver_calls": sum(tally[2] for tally in signals.values()),
        "dropped": trace.dropped,
        "ignored_dispatches": sum(entry["dispatches"] for entry in ignored.get("signals", [])),
        "max_depth": max((dispatch.depth for dispatch in dispatches), default=0),
        "signals": [
            {
                "signal": s,
                "sender": sender,
                "count": t[0],
                "empty": t[1],
                "receiver_calls": t[2],
                "max_depth": t[3],
            }
            for (s, sender), t in sorted(signals.items(), key=lambda item: (-item[1][0], item[0]))
        ],
        "receivers": [
            {"signal": s, "receiver": r, "location": loc, "calls": t[0], "total_ns": t[1], "max_ns": t[2]}
            for (s, r, loc), t in sorted(receivers.items(), key=lambda item: (-item[1][1], item[0]))
        ],
        "loops": [loop.to_dict() for loop in trace.loops],
        "receiver_errors": errors,
        "hazards": _hazard_entries(trace.hazards),
    }
    if ignored.get("signals"):
        part["ignored"] = ignored["signals"]
    slow_deletes = trace.slow_deletes
    if slow_deletes:
        part["slow_deletes"] = [_slow_delete_entry(delete) for delete in slow_deletes]
    return part


def _hazard_entries(hazards: Iterable[Hazard]) -> list[dict[str, Any]]:
    """``{kind, place, message, count}`` per distinct hazard, in the order first found: a bulk
    write in a loop is one entry, not one per call."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for hazard in hazards:
        key = (hazard.kind, hazard.place, hazard.message)
        entry = found.get(key)
        if entry is None:
            found[key] = {"kind": hazard.kind, "place": hazard.place, "message": hazard.message, "count": 1}
        else:
            entry["count"] += 1
    return list(found.values())


def _merged_hazards(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Hazard entries of several parts, the same hazard counted once with the counts added."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for entry in entries:
        _add(found, (entry["kind"], entry["place"], entry["message"]), entry, ("count",))
    return list(found.values())


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


def merge_parts(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Several summaries of one phase (``_pre_setup`` and ``setUp``, say) as one."""
    parts = list(parts)
    if len(parts) == 1:
        return dict(parts[0])
    merged: dict[str, Any] = {key: sum(part[key] for part in parts) for key in ("duration_ns", *_COUNTS)}
    merged["max_depth"] = max((part["max_depth"] for part in parts), default=0)
    signals: dict[tuple[str, str], dict[str, Any]] = {}
    receivers: dict[tuple[str, str, str], dict[str, Any]] = {}
    for part in parts:
        for entry in part["signals"]:
            _add(signals, (entry["signal"], entry["sender"]), entry, ("count", "empty", "receiver_calls"))
        for entry in part["receivers"]:
            key = (entry["signal"], entry["receiver"], entry["location"])
            _add(receivers, key, entry, ("calls", "total_ns"))
    merged["signals"] = sorted(signals.values(), key=lambda e: (-e["count"], e["signal"], e["sender"]))
    merged["receivers"] = sorted(
        receivers.values(), key=lambda e: (-e["total_ns"], e["signal"], e["receiver"])
    )
    for key in ("loops", "receiver_errors", "ignored", "slow_deletes"):
        items = [item for part in parts for item in part.get(key, [])]
        if items or key in ("loops", "receiver_errors"):
            merged[key] = items
    merged["hazards"] = _merged_hazards(item for part in parts for item in part.get("hazards", []))
    return merged


def _add(into: dict[Any, dict[str, Any]], key: Any, entry: Mapping[str, Any], sums: tuple[str, ...]) -> None:
    """Add ``entry``'s counts to the tally at ``key``; maxima stay maxima."""
    tally = into.get(key)
    if tally is None:
        into[key] = dict(entry)
        return
    for name in sums:
        tally[name] += entry[name]
    for name in ("max_depth", "max_ns"):
        if name in entry:
            tally[name] = max(tally[name], entry[name])


# ------------------------------------------------------------------ one test


def entry_of_test(
    nodeid: str, outcome: str, worker: str | None, phases: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """A test's entry, before trimming: its parts by phase (in :data:`PHASES` order) and totals."""
    ordered = {phase: dict(phases[phase]) for phase in PHASES if phase in phases}
    parts = list(ordered.values())
    entry: dict[str, Any] = {"nodeid": nodeid, "outcome": outcome, "worker": worker}
    entry["duration_ns"] = sum(part["duration_ns"] for part in parts)
    for key in _COUNTS:
        entry[key] = sum(part[key] for part in parts)
    entry["max_depth"] = max((part["max_depth"] for part in parts), default=0)
    entry["phases"] = ordered
    return entry


def _problems(phases: Mapping[str, Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    return [{"phase": phase, **item} for phase, part in phases.items() for item in part.get(key, [])]


def _trimmed(entry: Mapping[str, Any], detail: str) -> dict[str, Any]:
    """The entry as the report shows it: counts and the top few, or every tally (``full``).

    With ``summary``, phases give their dispatch counts, the top lists are arrays
    (``[signal, sender, count]``, ``[signal, receiver, calls, total_ns]``), and
    ``worker`` (None), ``loops``, ``receiver_errors``, ``hazards`` and ``slow_deletes`` (empty)
    are left out, and ``slow_deletes`` lists the first few summaries (``delete of shop.Line #1: ...``).
    """
    phases = entry["phases"]
    shown = {key: value for key, value in entry.items() if key != "phases"}
    if detail == "full":
        shown["phases"] = {
            phase: {**part, "receivers": part["receivers"][:PHASE_RECEIVERS]}
            for phase, part in phases.items()
        }
    else:
        if shown["worker"] is None:
            del shown["worker"]
        shown["phases"] = {phase: part["dispatches"] for phase, part in phases.items() if part["dispatches"]}
        combined = merge_parts(phases.values()) if phases else {"signals": [], "receivers": []}
        shown["top_signals"] = [
            [e["signal"], e["sender"], e["count"]] for e in combined["signals"][:TEST_TOP]
        ]
        shown["top_receivers"] = [
            [e["signal"], e["receiver"], e["calls"], e["total_ns"]] for e in combined["receivers"][:TEST_TOP]
        ]
    for key in ("loops", "receiver_errors", "hazards"):
        problems = _problems(phases, key)
        if problems or detail == "full":
            shown[key] = problems
    slow_deletes = _problems(phases, "slow_deletes")
    if slow_deletes and detail == "full":
        shown["slow_deletes"] = slow_deletes
    elif slow_deletes:
        shown["slow_deletes"] = [delete["summary"] for delete in slow_deletes[:TEST_TOP]]
    return shown


# ------------------------------------------------------------------ the suite


def _top(items: list[dict[str, Any]], key: Any) -> dict[str, Any]:
    return {"count": len(items), "items": sorted(items, key=key)[:TOP]}


def suite_summary(
    tests: list[Mapping[str, Any]], hidden_receivers: Mapping[str, list[dict[str, Any]]] | None = None
) -> dict[str, Any]:
    """The suite-level sections, each bounded to :data:`TOP` items (``count`` says how many there were).

    ``hidden_receivers`` maps an ignored signal's name to the receivers connected to
    it when the run ended: receivers ``IGNORE_SIGNALS`` kept out of every trace.
    """
    signals: dict[str, dict[str, Any]] = {}
    receivers: dict[tuple[str, str, str], dict[str, Any]] = {}
    unheard: dict[tuple[str, str], dict[str, Any]] = {}
    ignored: dict[str, dict[str, Any]] = {}
    hazards: dict[tuple[str, str], dict[str, Any]] = {}
    for test in tests:
        seen_signals: set[str] = set()
        seen_unheard: set[tuple[str, str]] = set()
        seen_hazards: set[tuple[str, str]] = set()
        for part in test["phases"].values():
            for entry in part.get("hazards", []):
                key = (entry["kind"], entry["place"])
                tally = hazards.setdefault(
                    key,
                    {"kind": key[0], "place": key[1], "message": entry["message"], "count": 0, "tests": 0},
                )
                tally["count"] += entry["count"]
                if key not in seen_hazards:
                    seen_hazards.add(key)
                    tally["tests"] += 1
            for entry in part["signals"]:
                name = entry["signal"]
                tally = signals.setdefault(
                    name, {"signal": name, "dispatches": 0, "empty": 0, "receiver_calls": 0, "tests": 0}
                )
                tally["dispatches"] += entry["count"]
                tally["empty"] += entry["empty"]
                tally["receiver_calls"] += entry["receiver_calls"]
                if name not in seen_signals:
                    seen_signals.add(name)
                    tally["tests"] += 1
                if entry["empty"]:
                    key = (name, entry["sender"])
                    empty = unheard.setdefault(
                        key, {"signal": name, "sender": entry["sender"], "dispatches": 0, "tests": 0}
                    )
                    empty["dispatches"] += entry["empty"]
                    if key not in seen_unheard:
                        seen_unheard.add(key)
                        empty["tests"] += 1
            for entry in part["receivers"]:
                _add(
                    receivers,
                    (entry["signal"], entry["receiver"], entry["location"]),
                    entry,
                    ("calls", "total_ns"),
                )
            for entry in part.get("ignored", []):
                _add_ignored(ignored, entry)
    for name, connected in (hidden_receivers or {}).items():
        tally = ignored.setdefault(name, {"signal": name, "dispatches": 0, "senders": [], "receivers": []})
        calls = {item["receiver"]: item["calls"] for item in tally["receivers"]}
        tally["receivers"] = [{**item, "calls": calls.pop(item["receiver"], 0)} for item in connected] + [
            {"receiver": receiver, "location": "", "calls": count} for receiver, count in calls.items()
        ]
    for tally in ignored.values():
        tally["senders"] = sorted(tally["senders"], key=lambda e: (-e["dispatches"], e["sender"]))[:TOP]
        tally["receivers"] = sorted(tally["receivers"], key=lambda e: (-e["calls"], e["receiver"]))[:TOP]
    timings = list(receivers.values())
    return {
        "top_signals": _top(list(signals.values()), lambda e: (-e["dispatches"], e["signal"])),
        "receivers_by_total": _top(timings, lambda e: (-e["total_ns"], e["signal"], e["receiver"])),
        "receivers_by_max": _top(timings, lambda e: (-e["max_ns"], e["signal"], e["receiver"])),
        "no_receivers": _top(list(unheard.values()), lambda e: (-e["dispatches"], e["signal"], e["sender"])),
        "busiest_tests": _top(
            [
                {"nodeid": t["nodeid"], "dispatches": t["dispatches"], "receiver_calls": t["receiver_calls"]}
                for t in tests
                if t["dispatches"]
            ],
            lambda e: (-e["dispatches"], e["nodeid"]),
        ),
        "ignored": _top(list(ignored.values()), lambda e: (-e["dispatches"], e["signal"])),
        "hazards": _top(list(hazards.values()), lambda e: (-e["count"], e["kind"], e["place"])),
    }


def _add_ignored(into: dict[str, dict[str, Any]], entry: Mapping[str, Any]) -> None:
    tally = into.setdefault(
        entry["signal"], {"signal": entry["signal"], "dispatches": 0, "senders": [], "receivers": []}
    )
    tally["dispatches"] += entry["dispatches"]
    senders = {item["sender"]: item for item in tally["senders"]}
    for item in entry.get("senders", []):
        known = senders.setdefault(item["sender"], {"sender": item["sender"], "dispatches": 0})
        known["dispatches"] += item["dispatches"]
    tally["senders"] = list(senders.values())
    receivers = {item["receiver"]: item for item in tally["receivers"]}
    for item in entry.get("receivers", []):
        known = receivers.setdefault(item["receiver"], {"receiver": item["receiver"], "calls": 0})
        known["calls"] += item["calls"]
    tally["receivers"] = list(receivers.values())


def build_report(
    tests: list[Mapping[str, Any]],
    detail: str = "summary",
    hidden_receivers: Mapping[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The whole report from test entries (in any order; :func:`entry_of_test`)."""
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {', '.join(DETAILS)}, not {detail!r}")
    ordered = sorted(tests, key=lambda test: test["nodeid"])
    shown = [_trimmed(test, detail) for test in ordered]
    totals: dict[str, int] = {"tests": len(ordered)}
    for key in _COUNTS:
        totals[key] = sum(test[key] for test in ordered)
    totals["loops"] = sum(len(test.get("loops", ())) for test in shown)
    totals["receiver_errors"] = sum(len(test.get("receiver_errors", ())) for test in shown)
    totals["hazards"] = sum(entry["count"] for test in shown for entry in test.get("hazards", ()))
    return {
        "version": VERSION,
        "signaltrace": __version__,
        "detail": detail,
        "totals": totals,
        "summary": suite_summary(ordered, hidden_receivers),
        "tests": shown,
    }


def write_report(
    path: str | os.PathLike[str],
    tests: list[Mapping[str, Any]],
    detail: str = "summary",
    hidden_receivers: Mapping[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Build the report and write it atomically (a reader never sees half a file); returns it."""
    report = build_report(tests, detail, hidden_receivers)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(dumps(report), encoding="utf-8")
    partial.replace(target)
    return report


def dumps(report: Mapping[str, Any]) -> str:
    """The report's text: indented, but each test on one line (compact, and diffs line by line)."""
    head = {key: value for key, value in report.items() if key != "tests"}
    text = json.dumps(head, indent=1)[:-2]  # without the closing "\n}"
    tests = ",\n  ".join(json.dumps(test, separators=(",", ":")) for test in report["tests"])
    return f'{text},\n "tests": [\n  {tests}\n ]\n}}\n' if tests else f'{text},\n "tests": []\n}}\n'


# ------------------------------------------------------------------ the text summary


def _ms(nanoseconds: int) -> str:
    if nanoseconds < 1_000_000:
        return f"{nanoseconds / 1e3:.0f} µs"
    return f"{nanoseconds / 1e6:.1f} ms"


def _first(section: Mapping[str, Any], count: int = 3) -> list[dict[str, Any]]:
    return list(section["items"][:count])


def text_summary(report: Mapping[str, Any], path: str | os.PathLike[str]) -> list[str]:
    """At most ten short lines for the end of the run."""
    totals, summary = report["totals"], report["summary"]
    lines = [
        f"signaltrace: {totals['tests']} tests, {totals['dispatches']} dispatches "
        f"({totals['empty_dispatches']} reached no receiver), {totals['receiver_calls']} receiver calls, "
        f"{totals['loops']} loops, {totals['receiver_errors']} receiver errors, "
        f"{totals.get('hazards', 0)} hazards"
    ]
    if summary.get("hazards", {}).get("items"):
        lines.append(
            "  hazards: "
            + ", ".join(
                f"{e['kind']} at {e['place'] or '?'} ({e['count']}x in {e['tests']} tests)"
                for e in _first(summary["hazards"], 2)
            )
        )
    if summary["top_signals"]["items"]:
        lines.append(
            "  top signals: "
            + ", ".join(f"{e['signal']} {e['dispatches']}" for e in _first(summary["top_signals"]))
        )
    for title, section, key in (
        ("slowest receivers (total)", "receivers_by_total", "total_ns"),
        ("slowest receivers (one call)", "receivers_by_max", "max_ns"),
    ):
        if summary[section]["items"]:
            lines.append(
                f"  {title}: "
                + ", ".join(
                    f"{e['signal']} -> {e['receiver']} {_ms(e[key])}" for e in _first(summary[section], 2)
                )
            )
    if summary["no_receivers"]["items"]:
        lines.append(
            "  no receiver: "
            + ", ".join(
                f"{e['signal']} from {e['sender']} {e['dispatches']}x"
                for e in _first(summary["no_receivers"])
            )
        )
    if summary["busiest_tests"]["items"]:
        busiest = summary["busiest_tests"]["items"][0]
        lines.append(f"  busiest test: {busiest['nodeid']} ({busiest['dispatches']} dispatches)")
    for entry in _first(summary["ignored"], 2):
        calls = sum(item["calls"] for item in entry["receivers"])
        lines.append(
            f"  hidden by IGNORE_SIGNALS: {entry['signal']} {entry['dispatches']} dispatches, "
            f"{len(entry['receivers'])} receivers ({calls} calls)"
        )
    size = Path(path).stat().st_size if Path(path).exists() else 0
    lines.append(f"  report ({report['detail']} detail, {size / 1024:.0f} KB): {path}")
    return lines[:10]
