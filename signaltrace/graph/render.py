"""The signal map as text: plain text, Mermaid, Graphviz DOT or JSON."""

from __future__ import annotations

import json

from signaltrace.graph.signal_map import (
    ANY_SENDER,
    SignalMap,
    is_signal_node,
    node_parts,
    receiver_key,
    signal_key,
)

FORMATS = ("text", "mermaid", "dot", "json")


def render(signal_map: SignalMap, output_format: str, trace_name: str | None = None) -> str:
    """The map in one of :data:`FORMATS`."""
    renderers = {"text": render_text, "mermaid": render_mermaid, "dot": render_dot, "json": render_json}
    return renderers[output_format](signal_map, trace_name)


def render_text(signal_map: SignalMap, trace_name: str | None = None) -> str:
    """Receivers grouped by signal, then sender; then observed edges and cycles."""
    connections = signal_map.connections
    signal_count = len({conn.signal for conn in connections})
    lines = [f"Signal map: {len(connections)} receivers on {signal_count} signals"]
    current_signal = current_sender = None
    for conn in connections:
        if conn.signal != current_signal:
            lines += ["", conn.signal]
            current_signal, current_sender = conn.signal, None
        if conn.sender != current_sender:
            lines.append(f"  {ANY_SENDER if conn.sender == ANY_SENDER else 'sender ' + conn.sender}")
            current_sender = conn.sender
        notes = [signal_map.locations.get(conn.receiver, "")]
        if conn.count > 1:
            notes.append(f"connected x{conn.count}")
        if conn.dispatch_uid is not None:
            notes.append(f"dispatch_uid={conn.dispatch_uid!r}")
        if conn.is_async:
            notes.append("async")
        if not conn.weak:
            notes.append("strong reference")
        lines.append(f"    {conn.receiver}  " + "  ".join(note for note in notes if note))
    if trace_name is not None:
        lines += ["", f"Observed in {trace_name}:"]
        for (signal, sender, receiver), count in sorted(signal_map.observed_calls.items()):
            lines.append(f"  {signal}({sender}) -> {receiver}  called x{count}")
        for (receiver, signal, sender), count in sorted(signal_map.observed_sends.items()):
            lines.append(f"  {receiver} -> {signal}({sender})  sent x{count}")
        cycles = signal_map.cycles()
        lines += ["", "Cycles:" if cycles else "Cycles: none"]
        lines += ["  " + " -> ".join(cycle) for cycle in cycles]
    return "\n".join(lines) + "\n"


def _node_ids(signal_map: SignalMap) -> dict[str, str]:
    return {key: f"n{number}" for number, key in enumerate(sorted(signal_map.edges()))}


def _label(signal_map: SignalMap, key: str) -> tuple[str, str]:
    """(title, detail) of a node: the signal and sender, or the receiver and its location."""
    name, sender = node_parts(key)
    return (name, sender) if sender is not None else (name, signal_map.locations.get(name, ""))


def _observed_edges(signal_map: SignalMap) -> dict[tuple[str, str], str]:
    edges = {}
    for (signal, sender, receiver), count in signal_map.observed_calls.items():
        edges[(signal_key(signal, sender), receiver_key(receiver))] = f"called x{count}"
    for (receiver, signal, sender), count in signal_map.observed_sends.items():
        edges[(receiver_key(receiver), signal_key(signal, sender))] = f"sent x{count}"
    return edges


def _mermaid_text(text: str) -> str:
    for raw, entity in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(raw, entity)
    return text


def render_mermaid(signal_map: SignalMap, trace_name: str | None = None) -> str:
    """A Mermaid flowchart: signal nodes, receiver nodes; observed edges dotted and labelled."""
    ids = _node_ids(signal_map)
    lines = ["flowchart LR"]
    for key, node in ids.items():
        title, detail = (_mermaid_text(part) for part in _label(signal_map, key))
        text = f"{title}<br/>{detail}" if detail else title
        lines.append(
            f'  {node}{"([" if is_signal_node(key) else "["}"{text}"{"])" if is_signal_node(key) else "]"}'
        )
    observed = _observed_edges(signal_map)
    for (source, target), label in _unobserved_static_edges(signal_map, observed):
        arrow = f'-->|"{_mermaid_text(label)}"|' if label else "-->"
        lines.append(f"  {ids[source]} {arrow} {ids[target]}")
    for (source, target), label in sorted(observed.items()):
        lines.append(f'  {ids[source]} -.->|"{_mermaid_text(label)}"| {ids[target]}')
    return "\n".join(lines) + "\n"


def _unobserved_static_edges(
    signal_map: SignalMap, observed: dict[tuple[str, str], str]
) -> list[tuple[tuple[str, str], str]]:
    """Connected (signal, sender) -> receiver edges that the trace did not also observe, sorted,
    each with its label: "connected x3" for a receiver connected several times, else ""."""
    counts: dict[tuple[str, str], int] = {}
    for conn in signal_map.connections:
        edge = (signal_key(conn.signal, conn.sender), receiver_key(conn.receiver))
        if edge not in observed:
            counts[edge] = counts.get(edge, 0) + conn.count
    return [(edge, f"connected x{count}" if count > 1 else "") for edge, count in sorted(counts.items())]


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_dot(signal_map: SignalMap, trace_name: str | None = None) -> str:
    """Graphviz DOT: signals as ellipses, receivers as boxes, observed edges dashed."""
    ids = _node_ids(signal_map)
    lines = ["digraph signals {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for key, node in ids.items():
        title, detail = _label(signal_map, key)
        label = _dot_text(f"{title}\n{detail}" if detail else title)
        shape = "ellipse" if is_signal_node(key) else "box"
        lines.append(f'  {node} [label="{label}", shape={shape}];')
    observed = _observed_edges(signal_map)
    for (source, target), label in _unobserved_static_edges(signal_map, observed):
        attributes = f' [style=solid, label="{_dot_text(label)}"]' if label else ""
        lines.append(f"  {ids[source]} -> {ids[target]}{attributes};")
    for (source, target), label in sorted(observed.items()):
        lines.append(f'  {ids[source]} -> {ids[target]} [style=dashed, label="{_dot_text(label)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_json(signal_map: SignalMap, trace_name: str | None = None) -> str:
    """Connections, observed edges and cycles as JSON."""
    data = {
        "connections": [conn.to_dict() for conn in signal_map.connections],
        "observed": {
            "calls": [
                {"signal": signal, "sender": sender, "receiver": receiver, "count": count}
                for (signal, sender, receiver), count in sorted(signal_map.observed_calls.items())
            ],
            "sends": [
                {"receiver": receiver, "signal": signal, "sender": sender, "count": count}
                for (receiver, signal, sender), count in sorted(signal_map.observed_sends.items())
            ],
        },
        "cycles": signal_map.cycles(),
    }
    return json.dumps(data, indent=2) + "\n"
