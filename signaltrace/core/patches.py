"""Replace a method of a Django class with a wrapper, and put it back: one place for both.

Used by the watches that are not ``Signal`` hooks (transactions, side effects). A
wrapper is put in place once per owner and name; :func:`restore` puts Django's
method back unless another library wrapped ours since, in which case ours stays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
# group -> [(owner, name, original attribute, ours)], in the order they were put in place.
_applied: dict[str, list[tuple[Any, str, Any, Any]]] = {}


def wrap(group: str, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` with ``make(original)`` as part of ``group`` (idempotent per group).

    ``original`` is the attribute from ``owner.__dict__`` (a ``classmethod`` stays one:
    ``make`` gets and returns the descriptor).
    """
    with _lock:
        applied = _applied.setdefault(group, [])
        if any(entry[0] is owner and entry[1] == name for entry in applied):
            return
        original = owner.__dict__[name]
        ours = make(original)
        setattr(owner, name, ours)
        applied.append((owner, name, original, ours))


def restore(group: str) -> None:
    """Put back every original of ``group`` still covered by our wrapper (idempotent)."""
    with _lock:
        for owner, name, original, ours in reversed(_applied.pop(group, [])):
            if owner.__dict__.get(name) is ours:
                setattr(owner, name, original)


def is_wrapped(group: str) -> bool:
    return bool(_applied.get(group))
