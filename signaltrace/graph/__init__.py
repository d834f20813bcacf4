"""The signal map: who listens to what, and who sends what (``manage.py signaltrace graph``).

:mod:`signaltrace.graph.signal_map` builds it from the receivers connected now and,
optionally, a saved trace; :mod:`signaltrace.graph.render` prints it. :mod:`signaltrace.graph.delete_paths`
draws what a model's delete reaches: its delete receivers and its cascades.
"""

from signaltrace.graph.delete_paths import DeleteStep, delete_path, render_deletes
from signaltrace.graph.render import FORMATS, render, render_dot, render_json, render_mermaid, render_text
from signaltrace.graph.signal_map import (
    ANY_SENDER,
    Connection,
    SignalMap,
    build_map,
    is_signal_node,
    load_trace,
    node_label,
    node_parts,
    receiver_key,
    signal_key,
    static_connections,
)

__all__ = [
    "ANY_SENDER",
    "FORMATS",
    "Connection",
    "DeleteStep",
    "SignalMap",
    "build_map",
    "delete_path",
    "is_signal_node",
    "load_trace",
    "node_label",
    "node_parts",
    "receiver_key",
    "render",
    "render_deletes",
    "render_dot",
    "render_json",
    "render_mermaid",
    "render_text",
    "signal_key",
    "static_connections",
]
