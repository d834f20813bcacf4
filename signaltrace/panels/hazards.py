"""The "Hazards" box and the transaction badges of dispatch rows, from stored stats.

``trace.to_dict()["hazards"]`` (see :class:`signaltrace.core.Hazard`) lists what
escaped or skipped a transaction: a Celery task published or an e-mail sent inside
one, a bulk write that skipped save receivers. Each becomes one entry of the box at
the top of the panel. A dispatch's stored ``"transaction"`` becomes its badges: "in
transaction" (the summary as tooltip) and, when that block was undone, "rolled back".

Values are read defensively (a store holds JSON anything could have written) and
escaped where they are drawn: by the template's autoescaping for the box, by
:func:`~signaltrace.panels.rows.format_html` for the badges.
"""

from __future__ import annotations

from typing import Any

from signaltrace.core import BYPASSED_WRITE, MAIL_BEFORE_COMMIT, TASK_BEFORE_COMMIT, Transaction, short_path

#: The label of each ``Hazard.kind`` in the box.
KIND_LABELS = {
    TASK_BEFORE_COMMIT: "task before commit",
    MAIL_BEFORE_COMMIT: "mail before commit",
    BYPASSED_WRITE: "bypassed write",
}


def hazard_views(trace: dict[str, Any]) -> list[dict[str, str]]:
    """One entry per stored hazard, in the order found: label, message and place."""
    raw = trace.get("hazards")
    views = []
    for hazard in raw if isinstance(raw, list) else ():
        if not isinstance(hazard, dict):
            continue
        kind = str(hazard.get("kind") or "")
        place = str(hazard.get("place") or "")
        views.append(
            {
                "kind": kind,
                "label": KIND_LABELS.get(kind, kind.replace("_", " ") or "hazard"),
                "message": str(hazard.get("message") or ""),
                "location": _short_place(place),
                "full_location": place,
            }
        )
    return views


def _short_place(place: str) -> str:
    """``file:line`` with the file shortened as the panel shows receiver locations."""
    file, colon, line = place.rpartition(":")
    return f"{short_path(file)}:{line}" if colon and file and line.isdigit() else place


def transaction_of(stored: Any) -> Transaction | None:
    """The :class:`~signaltrace.core.Transaction` a stored ``"transaction"`` dict describes.

    None when there is none (a signal sent outside any block that is not a model
    signal, or stats stored before transactions were recorded) or it is malformed.
    """
    if not isinstance(stored, dict) or not isinstance(stored.get("in_atomic"), bool):
        return None
    depth, scope = stored.get("depth"), stored.get("rollback_scope")
    return Transaction(
        alias=str(stored.get("alias") or "default"),
        in_atomic=stored["in_atomic"],
        depth=depth if type(depth) is int else 0,
        durable=stored.get("durable") is True,
        outcome=str(stored.get("outcome") or ""),
        rollback_scope=scope if isinstance(scope, str) else None,
    )


def transaction_badges(stored: Any) -> dict[str, Any] | None:
    """What a dispatch row's badges need: ``in_atomic``, ``rolled_back`` and the ``summary``.

    None for autocommit (and no transaction at all): no badge.
    """
    transaction = transaction_of(stored)
    if transaction is None or not transaction.in_atomic:
        return None
    return {"in_atomic": True, "rolled_back": transaction.rolled_back, "summary": transaction.summary}
