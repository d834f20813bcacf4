"""Delete paths: which receivers run when a model is deleted, cascades included.

``manage.py signaltrace graph --deletes app_label.Model`` walks what Django's
``Collector`` would walk: the model's delete receivers, then every relation pointing
at it with its ``on_delete``, into the models a ``CASCADE`` reaches. A model with
``pre_delete`` or ``post_delete`` receivers loses Django's fast delete: its rows are
loaded and sent two signals each (see ``signaltrace.SlowDelete``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db.models import signals

from signaltrace.core import receiver_info, short_path

DELETE_SIGNALS = (("pre_delete", signals.pre_delete), ("post_delete", signals.post_delete))


@dataclass(frozen=True)
class DeleteReceiverRow:
    signal: str
    receiver: str
    file: str
    line: int


@dataclass
class DeleteStep:
    """One model on a delete path, reached through ``via`` (``Model.field``) with ``on_delete``."""

    model: str
    on_delete: str = ""
    via: str = ""
    auto_created: bool = False
    receivers: list[DeleteReceiverRow] = field(default_factory=list)
    cascades: list[DeleteStep] = field(default_factory=list)
    seen_before: bool = False  # reached again through another relation (a cycle): not expanded

    @property
    def slow(self) -> bool:
        """Whether delete receivers take this model off Django's fast delete path."""
        return bool(self.receivers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "on_delete": self.on_delete,
            "via": self.via,
            "auto_created": self.auto_created,
            "slow_path": self.slow,
            "seen_before": self.seen_before,
            "receivers": [
                {"signal": r.signal, "receiver": r.receiver, "file": r.file, "line": r.line}
                for r in self.receivers
            ],
            "cascades": [step.to_dict() for step in self.cascades],
        }


def resolve_model(label: str) -> Any:
    """The model class for ``app_label.Model`` (case-insensitive); LookupError when unknown."""
    try:
        return apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise LookupError(f"No model {label!r}: name it as app_label.Model (auth.User).") from exc


def delete_receivers(model: Any) -> list[DeleteReceiverRow]:
    """The receivers Django calls for a delete of ``model`` (sender-specific and any-sender)."""
    if model._meta.auto_created:
        return []  # Django sends no delete signals for auto-created m2m tables
    rows = []
    for name, signal in DELETE_SIGNALS:
        if not signal.has_listeners(model):
            continue
        live = signal._live_receivers(model)
        for group in live if isinstance(live, tuple) else (live,):  # (sync, async) on Django 5.0+
            for receiver in group:
                dotted, file, line = receiver_info(receiver)
                rows.append(DeleteReceiverRow(name, dotted, file, line))
    return rows


def _relations_to(model: Any) -> list[Any]:
    """Relations whose rows a delete of ``model`` reaches, as Django's collector finds them."""
    return [
        related
        for related in model._meta.get_fields(include_hidden=True)
        if related.auto_created and not related.concrete and (related.one_to_one or related.one_to_many)
    ]


def delete_path(model: Any, _seen: set[Any] | None = None, on_delete: str = "", via: str = "") -> DeleteStep:
    """The tree of what deleting ``model`` reaches: receivers, then cascades (cycles cut)."""
    seen = set() if _seen is None else _seen
    step = DeleteStep(model._meta.label, on_delete, via, bool(model._meta.auto_created))
    if model in seen:
        step.seen_before = True
        return step
    seen.add(model)
    step.receivers = delete_receivers(model)
    for related in _relations_to(model):
        handler = getattr(related.field.remote_field.on_delete, "__name__", "?")
        child_model = related.related_model
        child_via = f"{child_model._meta.object_name}.{related.field.name}"
        if handler == "CASCADE":
            step.cascades.append(delete_path(child_model, seen, handler, child_via))
        elif handler != "DO_NOTHING":
            step.cascades.append(DeleteStep(child_model._meta.label, handler, child_via))
    return step


def _text_lines(step: DeleteStep, indent: int) -> list[str]:
    pad = "  " * indent
    if indent == 0:
        head = f"delete {step.model}"
    else:
        head = f"-> {step.model} ({step.on_delete} via {step.via})"
    if step.seen_before:
        head += "  (already above)"
    elif step.auto_created:
        head += "  auto-created m2m table: no signals"
    elif step.on_delete in ("", "CASCADE"):
        head += "  slow path: rows loaded, 2 signals per row" if step.slow else "  no delete receivers"
    lines = [pad + head]
    for row in step.receivers:
        location = f"{short_path(row.file)}:{row.line}" if row.file else ""
        lines.append(f"{pad}    {row.signal}  {row.receiver}  {location}".rstrip())
    for child in step.cascades:
        lines += _text_lines(child, indent + 1)
    return lines


def render_deletes_text(paths: list[DeleteStep]) -> str:
    lines = ["Delete paths (receivers Django calls per deleted row; CASCADE followed)", ""]
    for path in paths:
        lines += [*_text_lines(path, 0), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_deletes_json(paths: list[DeleteStep]) -> str:
    return json.dumps({"version": 1, "delete_paths": [path.to_dict() for path in paths]}, indent=2) + "\n"


def _mermaid_id(prefix: str, text: str, ids: dict[str, str]) -> str:
    return ids.setdefault(f"{prefix}:{text}", f"{prefix}{len(ids)}")


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;")


def render_deletes_mermaid(paths: list[DeleteStep]) -> str:
    ids: dict[str, str] = {}
    lines = ["flowchart LR"]
    emitted: set[str] = set()

    def walk(step: DeleteStep) -> str:
        node = _mermaid_id("m", step.model, ids)
        if node not in emitted:
            emitted.add(node)
            shape = (
                f'{node}[["delete {_mermaid_label(step.model)}"]]' if step.slow else f'{node}["{step.model}"]'
            )
            lines.append(f"    {shape}")
            for row in step.receivers:
                receiver = _mermaid_id("r", row.receiver, ids)
                if receiver not in emitted:
                    emitted.add(receiver)
                    lines.append(f'    {receiver}("{_mermaid_label(row.receiver)}")')
                lines.append(f"    {node} -- {row.signal} --> {receiver}")
        for child in step.cascades:
            child_node = walk(child)
            lines.append(f"    {node} -. {child.on_delete} .-> {child_node}")
        return node

    for path in paths:
        walk(path)
    return "\n".join(lines) + "\n"


DELETE_FORMATS = {"text": render_deletes_text, "json": render_deletes_json, "mermaid": render_deletes_mermaid}


def render_deletes(labels: list[str], output_format: str) -> str:
    """The delete paths of the models named ``app_label.Model``; LookupError for an unknown one,
    ValueError for a format without a delete view (dot)."""
    if output_format not in DELETE_FORMATS:
        raise ValueError(f"--deletes prints text, json or mermaid, not {output_format}.")
    paths = [delete_path(resolve_model(label)) for label in labels]
    return DELETE_FORMATS[output_format](paths)
