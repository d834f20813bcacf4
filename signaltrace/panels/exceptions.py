"""One entry per exception under "Exceptions", however many receivers it passed through.

An exception raised in a nested dispatch propagates up through every receiver that
sent the dispatch below it: a save loop stopped at depth 4 is recorded on the
receivers at depths 3, 2, 1 and 0, as the same exception object. Identity is decided
by that object while the trace's objects are alive (:func:`exception_groups`, when
the panel stores its stats); the stored stats keep only the groups' indexes, JSON.
"""

from __future__ import annotations

from typing import Any

import signaltrace


def exception_groups(trace: signaltrace.Trace) -> list[list[list[int]]]:
    """``[[dispatch, call], ...]`` indexes (as in ``trace.to_dict()``) of the calls that
    recorded each exception object, in start order: the outermost receiver first."""
    groups: dict[int, list[list[int]]] = {}
    for number, dispatch in enumerate(trace.dispatches):
        for position, call in enumerate(dispatch.calls):
            if call.exception is not None:
                groups.setdefault(id(call.exception), []).append([number, position])
    return list(groups.values())


def group_views(
    dispatches: list[dict[str, Any]], groups: list[list[list[int]]] | None
) -> list[dict[str, Any]]:
    """The "Exceptions" entries, from the dispatch views and the stored ``groups``, in
    start order.

    A call in no group (stats stored by an older signaltrace have none) is its own
    entry. Type, message and traceback are the innermost receiver's, where it was
    raised; the verdict is the outermost one's, where it stopped (a ``send_robust``
    up the chain swallows it for every level below).
    """
    calls = {
        (number, position): (dispatch, call)
        for number, dispatch in enumerate(dispatches)
        for position, call in enumerate(dispatch["calls"])
        if call["exception"]
    }
    seen: set[tuple[int, int]] = set()
    grouped = []
    for group in groups or ():
        keys = [key for key in dict.fromkeys(_keys(group)) if key in calls and key not in seen]
        if keys:
            seen.update(keys)
            grouped.append(keys)
    grouped.extend([key] for key in calls if key not in seen)
    return [_entry([calls[key] for key in keys]) for keys in sorted(grouped, key=min)]


def _entry(levels: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """One entry for the ``(dispatch, call)`` views that recorded one exception."""
    levels = sorted(levels, key=lambda level: -level[0]["depth"])
    (dispatch, call), (_, outermost) = levels[0], levels[-1]
    return {
        **call["exception"],
        "dispatch": dispatch,
        "call": call,
        "verdict": outermost["exception"]["verdict"],
        "swallowed": outermost["exception"]["swallowed"],
        "through": len(levels),
        "levels": [
            {"depth": level["depth"], "receiver": level_call["receiver"], "dispatch": level}
            for level, level_call in levels
        ],
    }


def _keys(group: Any) -> list[tuple[int, int]]:
    """The ``(dispatch, call)`` pairs of a stored group, ignoring malformed items."""
    if not isinstance(group, list):
        return []
    return [
        (item[0], item[1])
        for item in group
        if isinstance(item, list) and len(item) == 2 and all(type(index) is int for index in item)
    ]
