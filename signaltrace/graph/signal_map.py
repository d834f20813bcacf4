"""The signal map behind ``manage.py signaltrace graph``: who listens to what, and who sends what.

Static edges come from the receivers connected right now (after every app's
``ready()``): signal and sender -> receiver. Observed edges come from a saved
trace (``trace.to_dict()`` as JSON): the receivers each dispatch called, and
receiver -> signal and sender for every dispatch sent inside a receiver. A save
loop therefore shows up as a cycle. Rendered as text, Mermaid, Graphviz DOT or JSON.
"""

from __future__ import annotations

import json
import os
import sys
import sysconfig
import weakref
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from inspect import iscoroutinefunction
from typing import Any

from django.dispatch import Signal

from signaltrace.core import discover_signals, make_id

ANY_SENDER = "any sender"


@dataclass(frozen=True)
class Connection:
    """One receiver connected to one signal for one sender (or any sender)."""

    signal: str
    sender: str
    receiver: str
    file: str
    line: int
    dispatch_uid: str | None
    is_async: bool
    weak: bool
    # How many identical connections this row stands for: e.g. a bound method of several
    # instances of one class, each connected by its own ``__init__``.
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "sender": self.sender,
            "receiver": self.receiver,
            "file": self.file,
            "line": self.line,
            "dispatch_uid": self.dispatch_uid,
            "is_async": self.is_async,
            "weak": self.weak,
            "count": self.count,
        }


@dataclass
class SignalMap:
    """Connections, plus what a trace observed, as one directed graph."""

    connections: list[Connection] = field(default_factory=list)
    # (signal, sender, receiver) -> how many calls the trace saw.
    observed_calls: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # (receiver, signal, sender) -> how many dispatches the receiver sent.
    observed_sends: dict[tuple[str, str, str], int] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)
    # The ``--signal`` globs that matched no known signal (neither connected nor in the trace).
    unmatched_signals: list[str] = field(default_factory=list)

    def edges(self) -> dict[str, set[str]]:
        """Adjacency between node keys: ``s:signal|sender`` and ``r:receiver``."""
        graph: dict[str, set[str]] = {}
        for conn in self.connections:
            graph.setdefault(signal_key(conn.signal, conn.sender), set()).add(receiver_key(conn.receiver))
        for signal, sender, receiver in self.observed_calls:
            graph.setdefault(signal_key(signal, sender), set()).add(receiver_key(receiver))
        for receiver, signal, sender in self.observed_sends:
            graph.setdefault(receiver_key(receiver), set()).add(signal_key(signal, sender))
        for targets in list(graph.values()):
            for target in targets:
                graph.setdefault(target, set())
        return graph

    def cycles(self) -> list[list[str]]:
        """One cycle per strongly connected component that has one, as node labels."""
        graph = self.edges()
        found = []
        for component in _components(graph):
            signals = [key for key in component if is_signal_node(key)]
            start = min(signals or component)  # read from a dispatch, like a loop error
            if len(component) == 1 and start not in graph[start]:
                continue
            found.append([node_label(key) for key in _cycle_through(graph, component, start)])
        return sorted(found)


def signal_key(signal: str, sender: str) -> str:
    """The graph's node key of a (signal, sender) pair."""
    return f"s:{signal}|{sender}"


def receiver_key(receiver: str) -> str:
    """The graph's node key of a receiver."""
    return f"r:{receiver}"


def is_signal_node(key: str) -> bool:
    """Whether a node key is a (signal, sender) node rather than a receiver."""
    return key.startswith("s:")


def node_parts(key: str) -> tuple[str, str | None]:
    """(signal, sender) of a signal node; (receiver, None) of a receiver node."""
    if is_signal_node(key):
        signal, sender = key[2:].split("|", 1)
        return signal, sender
    return key[2:], None


def node_label(key: str) -> str:
    """``post_save(auth.User)`` for a signal node, the dotted path for a receiver."""
    name, sender = node_parts(key)
    return name if sender is None else f"{name}({sender})"


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively (graphs may be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                result.append(component)
    return result


def _cycle_through(graph: dict[str, set[str]], component: set[str], start: str) -> list[str]:
    """A shortest path from ``start`` back to itself inside ``component`` (breadth-first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child not in component:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [start]


# ---------------------------------------------------------------- static map


def _senders_by_id() -> dict[int, Any]:
    """Objects a sender id may stand for, where Django kept no reference (before 6.0)."""
    from django.apps import apps

    return {id(model): model for model in apps.get_models(include_auto_created=True)}


def _sender_of(entry: tuple[Any, ...], known: dict[int, Any]) -> str:
    from signaltrace.core import sender_name

    sender_id = entry[0][1]
    if sender_id == id(None):
        return ANY_SENDER
    if len(entry) == 4 and isinstance(entry[2], weakref.ReferenceType):  # Django 6.0+
        sender = entry[2]()
        if sender is not None:
            return sender_name(sender)
    if sender_id in known:
        return sender_name(known[sender_id])
    return f"<sender at {sender_id:#x}>"


def static_connections(signals: list[Signal] | None = None) -> list[Connection]:
    """Every live receiver of every discovered signal, by signal and sender, each group's
    receivers in the order Django calls them (the order they were connected)."""
    from signaltrace.core import receiver_info, signal_name

    known = _senders_by_id()
    found = []
    for signal in discover_signals() if signals is None else signals:
        name = signal_name(signal)
        for entry in list(signal.receivers):
            ref = entry[1]
            weak = isinstance(ref, weakref.ReferenceType)
            receiver = ref() if weak else ref
            if receiver is None:
                continue
            receiver_name, file, line = receiver_info(receiver)
            key = entry[0][0]
            found.append(
                Connection(
                    signal=name,
                    sender=_sender_of(entry, known),
                    receiver=receiver_name,
                    file=file,
                    line=line,
                    dispatch_uid=None if key == make_id(receiver) else str(key),
                    is_async=bool(entry[-1]) if len(entry) > 2 else iscoroutinefunction(receiver),
                    weak=weak,
                )
            )
    return sorted(found, key=lambda c: (c.signal, c.sender != ANY_SENDER, c.sender))


def build_map(
    trace: dict[str, Any] | None = None,
    signals: list[str] | None = None,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
) -> SignalMap:
    """The static map, filtered by signal and receiver globs, plus a trace's observed edges.

    Identical rows (a bound method of several instances, say) are merged into one with a
    ``count``; ``unmatched_signals`` lists the ``signals`` globs that matched no signal."""

    def wanted_signal(name: str) -> bool:
        return not signals or any(fnmatchcase(name, pattern) for pattern in signals)

    def wanted_receiver(name: str) -> bool:
        if include and not any(fnmatchcase(name, pattern) for pattern in include):
            return False
        return not (exclude and any(fnmatchcase(name, pattern) for pattern in exclude))

    result = SignalMap()
    rows: dict[Connection, int] = {}  # identical rows merged, in the order Django calls them
    for conn in static_connections():
        if wanted_signal(conn.signal) and wanted_receiver(conn.receiver):
            rows[conn] = rows.get(conn, 0) + 1
            result.locations[conn.receiver] = (
                f"{display_path(conn.file, conn.receiver)}:{conn.line}" if conn.file else ""
            )
    result.connections = [conn if count == 1 else replace(conn, count=count) for conn, count in rows.items()]
    if trace is not None:
        _add_trace(result, trace, wanted_signal, wanted_receiver)
    if signals:
        from signaltrace.core import signal_name

        known = {signal_name(signal) for signal in discover_signals()}
        known.update(dispatch["signal"] for dispatch in (trace or {}).get("dispatches", []))
        result.unmatched_signals = [
            pattern for pattern in signals if not any(fnmatchcase(name, pattern) for name in known)
        ]
    return result


def display_path(file: str, receiver: str = "") -> str:
    """A receiver's file as the map shows it: relative to its ``sys.path`` entry (what
    :func:`signaltrace.core.short_path` gives, ``accounts/signals.py``), else relative to
    the directory its top-level package was imported from (an editable install, whose
    source directory is not on ``sys.path``), else to site-packages or the standard
    library. The path as stored only when none of these holds it."""
    from signaltrace.core import short_path

    shown = short_path(file)
    if not os.path.isabs(shown):
        return shown
    root = _import_root(file, receiver)
    if root is None:
        roots = [root for root in _install_dirs() if _is_under(file, root)]
        root = max(roots, key=len) if roots else None
    return os.path.relpath(file, root) if root is not None else shown


def _is_under(file: str, directory: str) -> bool:
    return file.startswith(directory.rstrip(os.sep) + os.sep)


def _import_root(file: str, receiver: str) -> str | None:
    """The directory ``receiver``'s top-level module was imported from, if ``file`` is in it."""
    module = sys.modules.get(receiver.split(".", 1)[0]) if receiver else None
    if module is None:
        return None
    for directory in getattr(module, "__path__", None) or []:  # a package
        if isinstance(directory, str) and _is_under(file, directory):
            return os.path.dirname(directory.rstrip(os.sep))
    module_file = getattr(module, "__file__", None)
    if isinstance(module_file, str) and os.path.abspath(module_file) == os.path.abspath(file):
        return os.path.dirname(module_file)
    return None


def _install_dirs() -> list[str]:
    """site-packages and the standard library, whether or not they are on ``sys.path``."""
    found = []
    for name in ("purelib", "platlib", "stdlib", "platstdlib"):
        try:
            found.append(sysconfig.get_path(name))
        except KeyError:
            continue
    return [directory for directory in found if directory]


def _add_trace(result: SignalMap, trace: dict[str, Any], wanted_signal: Any, wanted_receiver: Any) -> None:
    dispatches = {d["id"]: d for d in trace.get("dispatches", [])}
    for dispatch in dispatches.values():
        signal, sender = dispatch["signal"], dispatch["sender"]
        if not wanted_signal(signal):
            continue
        for call in dispatch.get("calls", []):
            receiver = call["receiver"]
            if not wanted_receiver(receiver):
                continue
            key = (signal, sender, receiver)
            result.observed_calls[key] = result.observed_calls.get(key, 0) + 1
            if call.get("file"):
                location = f"{display_path(call['file'], receiver)}:{call.get('line')}"
                result.locations.setdefault(receiver, location)
        parent = dispatch.get("parent")
        if parent is None or parent.get("dispatch") not in dispatches:
            continue
        calls = dispatches[parent["dispatch"]].get("calls", [])
        if not 0 <= parent.get("call", -1) < len(calls):
            continue
        receiver = calls[parent["call"]]["receiver"]
        if wanted_receiver(receiver):
            key = (receiver, signal, sender)
            result.observed_sends[key] = result.observed_sends.get(key, 0) + 1


def load_trace(path: str) -> dict[str, Any]:
    """A trace saved as ``json.dump(trace.to_dict(), file)``; ValueError if it is not one."""
    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    if not isinstance(data, dict) or not isinstance(data.get("dispatches"), list):
        raise ValueError(f"{path} is not a signaltrace trace (trace.to_dict() as JSON)")
    return data
