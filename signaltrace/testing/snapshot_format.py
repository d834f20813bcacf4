"""A trace as the lines of a signal snapshot: the dispatch tree, with run-varying values fingerprinted.

One line per dispatch, then one per receiver it called, the dispatches that receiver
sent nested under it::

    post_save(sender=auth.User) send depth=0 created=True instance=<auth.User #N1> ...
      -> accounts.signals.create_user_profile
        pre_save(sender=accounts.Profile) send depth=1 instance=<accounts.Profile unsaved> ...

Durations, files and line numbers are never written: they change without the
signals changing. Values that differ between runs of the same code are replaced by
stable stand-ins (:class:`Fingerprinter`): primary keys by their order of first
appearance per model, memory addresses dropped, UUIDs and timestamps by
placeholders, the members of a set of strings sorted (their order follows the hash
seed).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from signaltrace.core import Dispatch, ReceiverCall, Trace

_MODEL = re.compile(r"<([A-Za-z_][\w.]*) pk=([^<>]*)>")
_ADDRESS_SUFFIX = re.compile(r" at 0x[0-9a-fA-F]+")
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_DATETIME_REPR = re.compile(r"datetime\.(?:datetime|date|time|timedelta)\([^()]*(?:\([^()]*\)[^()]*)*\)")
_ISO_TIMESTAMP = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_STRING_SET = re.compile(r"\{('[^'\\]*'(?:, '[^'\\]*')+)\}")


class Fingerprinter:
    """Replaces run-varying values in rendered texts, the same way for one whole snapshot.

    Instances are numbered by first appearance per model label: the first User seen is
    ``<auth.User #N1>`` wherever it appears again, the second ``<auth.User #N2>``,
    whatever their primary keys were in this run. An unsaved instance is
    ``<auth.User unsaved>``; a redacted primary key stays redacted.
    """

    def __init__(self) -> None:
        self._instances: dict[tuple[str, str], int] = {}
        self._per_label: dict[str, int] = {}
        self._uuids: dict[str, int] = {}

    def __call__(self, text: str) -> str:
        text = _ADDRESS_SUFFIX.sub("", text)
        text = _ADDRESS.sub("0x?", text)
        text = _UUID.sub(self._uuid, text)
        text = _DATETIME_REPR.sub("<datetime>", text)
        text = _ISO_TIMESTAMP.sub("<timestamp>", text)
        text = _STRING_SET.sub(_sorted_set, text)
        return _MODEL.sub(self._instance, text)

    def _instance(self, match: re.Match[str]) -> str:
        label, pk = match.group(1), match.group(2)
        if pk == "None":
            return f"<{label} unsaved>"
        if not pk or pk.startswith("*") or "REDACTED" in pk.upper():
            return match.group(0)
        key = (label, pk)
        number = self._instances.get(key)
        if number is None:
            number = self._per_label.get(label, 0) + 1
            self._per_label[label] = number
            self._instances[key] = number
        return f"<{label} #N{number}>"

    def _uuid(self, match: re.Match[str]) -> str:
        number = self._uuids.setdefault(match.group(0).lower(), len(self._uuids) + 1)
        return f"<uuid #N{number}>"


def _sorted_set(match: re.Match[str]) -> str:
    members = sorted(match.group(1).split(", "))
    return "{" + ", ".join(members) + "}"


def snapshot_lines(
    trace: Trace,
    *,
    kwargs: bool = True,
    exclude: Collection[str] = (),
    only: Collection[str] | None = None,
) -> list[str]:
    """The snapshot of ``trace``: its dispatch tree as lines, fingerprinted.

    ``kwargs=False`` leaves the signals' kwargs out. ``exclude`` names signals to leave
    out, ``only`` the signals to keep (names as the trace shows them: ``post_save``,
    ``shop.signals.order_paid``); a dispatch left out takes the dispatches its
    receivers sent with it.
    """
    fingerprint = Fingerprinter()
    dispatches = trace.dispatches
    kept = {id(dispatch) for dispatch in dispatches}
    roots = [d for d in dispatches if d.parent is None or id(d.parent.dispatch) not in kept]
    lines: list[str] = []
    for dispatch in roots:
        _dispatch_lines(dispatch, 0, lines, fingerprint, kwargs, frozenset(exclude), only)
    if trace.dropped:
        lines.append(f"... {trace.dropped} more dispatches not kept (SIGNALTRACE MAX_DISPATCHES)")
    return lines


def _dispatch_lines(
    dispatch: Dispatch,
    indent: int,
    lines: list[str],
    fingerprint: Fingerprinter,
    kwargs: bool,
    exclude: frozenset[str],
    only: Collection[str] | None,
) -> None:
    name = fingerprint(dispatch.signal_name)
    if dispatch.signal_name in exclude or (only is not None and dispatch.signal_name not in only):
        return
    head = f"{name}(sender={fingerprint(dispatch.sender_name)}) {dispatch.method} depth={dispatch.depth}"
    if kwargs and dispatch.kwargs:
        head += " " + " ".join(
            f"{key}={fingerprint(value)}" for key, value in sorted(dispatch.kwargs.items())
        )
    if dispatch.loop is not None:
        head += " [loop stopped]"
    lines.append(" " * indent + head)
    for call in dispatch.calls:
        lines.append(" " * (indent + 2) + "-> " + _call_text(call, fingerprint))
        for child in call.dispatches:
            _dispatch_lines(child, indent + 4, lines, fingerprint, kwargs, exclude, only)


def _call_text(call: ReceiverCall, fingerprint: Fingerprinter) -> str:
    text = fingerprint(call.receiver_name)
    if call.exception is not None:
        kind = type(call.exception)
        text += f" raised {kind.__module__}.{kind.__qualname__}"
        if call.swallowed:
            text += " (swallowed by send_robust)"
    return text


def render_lines(lines: Iterable[str]) -> str:
    """Lines as a block for a message, or ``(no signals)``."""
    block = "\n".join(lines)
    return block if block else "(no signals)"
