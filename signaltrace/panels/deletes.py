"""The panel's slow-delete rows: deletes that lost Django's fast path to delete receivers.

``trace.to_dict()["slow_deletes"]`` (see :class:`signaltrace.SlowDelete`) lists each
delete with its rows per model, the signals Django sent, the receivers that forced the
slow path and the indexes of the dispatches sent while it ran. Here each becomes a row
of the dispatch tree, placed just above the first dispatch it contains and drawn on
both time axes; the dispatches it contains are marked so they read as its children.

Stats stored before slow deletes were recorded have no such key: no rows. Values are
read defensively (a store holds JSON that anything could have written) and escaped by
:func:`~signaltrace.panels.rows.format_html` when drawn.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from signaltrace.core import short_path
from signaltrace.panels.axes import RequestAxis, SignalsAxis, format_ms
from signaltrace.panels.rows import Markup, format_html, join, svg

#: Class added to the dispatch rows sent inside a slow delete.
MEMBER_CLASS = "st-in-delete"


def delete_spans(trace: dict[str, Any]) -> list[tuple[int, int]]:
    """``(start_ns, end_ns)`` of each stored slow delete, for the time axes."""
    return [(_int(d.get("start_ns")), _end(d)) for d in _raw_deletes(trace)]


def delete_views(
    trace: dict[str, Any], dispatches: list[dict[str, Any]], axes: tuple[RequestAxis, SignalsAxis]
) -> list[dict[str, Any]]:
    """One view per slow delete, in start order, and its member dispatches marked.

    ``dispatches`` are the dispatch views (same order as the trace's dispatches); each
    one sent inside a delete gets :data:`MEMBER_CLASS` and the delete's number.
    """
    raw = sorted(_raw_deletes(trace), key=lambda d: _int(d.get("start_ns")))
    starts = [dispatch["start_ns"] for dispatch in dispatches]
    views = []
    for number, delete in enumerate(raw, start=1):
        view = _delete_view(number, delete, dispatches, starts, axes)
        for index in view["members"]:
            member = dispatches[index]
            if MEMBER_CLASS not in member["classes"].split():
                member["classes"] = f"{member['classes']} {MEMBER_CLASS}".strip()
                member["delete"] = number
        views.append(view)
    return views


def _delete_view(
    number: int,
    delete: dict[str, Any],
    dispatches: list[dict[str, Any]],
    starts: list[int],
    axes: tuple[RequestAxis, SignalsAxis],
) -> dict[str, Any]:
    start_ns, duration_ns = _int(delete.get("start_ns")), _int(delete.get("duration_ns"))
    members = sorted({i for i in _list(delete.get("dispatches")) if type(i) is int and 0 <= i < len(starts)})
    # Above its first dispatch; a delete whose dispatches were dropped goes where it started.
    position = members[0] if members else bisect_left(starts, start_ns)
    rows = [
        {"model": str(row.get("model") or ""), "count": _int(row.get("count"))}
        for row in _list(delete.get("rows"))
        if isinstance(row, dict)
    ]
    receivers = [_receiver_view(found) for found in _list(delete.get("receivers")) if isinstance(found, dict)]
    summary = str(delete.get("summary") or "") or _summary(delete, rows)
    depth = dispatches[members[0]]["depth"] if members else 0
    words = [summary, *(found["receiver"] for found in receivers), *(found["signal"] for found in receivers)]
    return {
        "number": number,
        "summary": summary,
        "rows": rows,
        "signals_sent": _int(delete.get("signals_sent")),
        "receivers": receivers,
        "duration": format_ms(duration_ns),
        "start_ns": start_ns,
        "bars": [axis.bar(start_ns, duration_ns) for axis in axes],
        "members": members,
        "member_ids": [dispatches[index]["id"] for index in members],
        "position": position,
        "depth_class": f"st-depth-{min(depth, 12)}",
        "filter": " ".join(words).lower(),
    }


def _receiver_view(found: dict[str, Any]) -> dict[str, str]:
    file, line = found.get("file"), found.get("line")
    return {
        "receiver": str(found.get("receiver") or ""),
        "signal": str(found.get("signal") or ""),
        "sender": str(found.get("sender") or ""),
        "location": f"{short_path(str(file))}:{line}" if file else "",
        "full_location": f"{file}:{line}" if file else "",
    }


def _summary(delete: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The core's ``SlowDelete.summary``, rebuilt when a stored entry lacks it."""
    model, pk = str(delete.get("model") or "?"), delete.get("instance_pk")
    target = model if pk is None else f"{model} #{pk}"
    counted = ", ".join(f"{row['count']} {row['model']}" for row in rows)
    return f"delete of {target}: {counted}; {_int(delete.get('signals_sent'))} signals"


# ---------------------------------------------------------------------------- markup


def _contained(view: dict[str, Any]) -> str:
    """``8 dispatches below (#5 to #12) ran inside it``: how the rows under it belong to it."""
    ids = view["member_ids"]
    if not ids:
        return "no dispatch of it was recorded"
    count = len(ids)
    span = f"#{ids[0]}" if count == 1 else f"#{ids[0]} to #{ids[-1]}"
    return f"the {count} dispatch{'es' if count != 1 else ''} below ({span}) ran inside it"


_RECEIVERS_HEAD = Markup(
    "<thead><tr><th>Receiver that forced it</th><th>Signal</th><th>Sender</th><th>Location</th></tr></thead>"
)
_ROWS_HEAD = Markup("<thead><tr><th>Model</th><th>Rows selected into memory</th></tr></thead>")


def _body(view: dict[str, Any]) -> Markup:
    rows = join(
        [
            format_html(
                '<tr><td><code>{}</code></td><td class="st-num">{}</td></tr>', row["model"], row["count"]
            )
            for row in view["rows"]
        ]
    )
    receivers = join(
        [
            format_html(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td>"
                '<td class="st-loc" title="{}">{}</td></tr>',
                found["receiver"],
                found["signal"],
                found["sender"],
                found["full_location"],
                found["location"],
            )
            for found in view["receivers"]
        ]
    )
    return format_html(
        '<p class="st-muted">Delete receivers listen, so Django could not delete with one query per model: '
        "it selected the rows listed here into memory and sent <code>pre_delete</code> and "
        "<code>post_delete</code> for each.</p>"
        "<p>{} signal{} sent · {} · {}.</p>"
        '<table class="st-calls st-delete-rows">{}<tbody>{}</tbody></table>'
        '<table class="st-calls st-delete-receivers">{}<tbody>{}</tbody></table>',
        view["signals_sent"],
        "s" if view["signals_sent"] != 1 else "",
        view["duration"],
        _contained(view),
        _ROWS_HEAD,
        rows,
        _RECEIVERS_HEAD,
        receivers,
    )


def delete_row(view: dict[str, Any], units: int, gaps: Markup) -> Markup:
    """One ``<details>`` row of the tree for a slow delete: summary, waterfall, details."""
    count = len(view["receivers"])
    return format_html(
        '<details class="st-delete" data-st-filter="{}" data-st-delete="{}">'
        '<summary class="st-row"><span class="st-id">D{}</span>'
        '<span class="st-delete-summary {}"><span class="st-badge st-delete-badge">slow delete</span> '
        '<code>{}</code><span class="st-via">{}</span></span>'
        '<span class="st-num" title="receivers that forced the slow path">{}</span>'
        '<span class="st-num">{}</span>{}</summary>'
        '<div class="st-body">{}</div></details>\n',
        view["filter"],
        view["number"],
        view["number"],
        view["depth_class"],
        view["summary"],
        _contained(view),
        count,
        view["duration"],
        svg(units, gaps, lambda axis: [_bar(view["bars"][axis])]),
        _body(view),
    )


def _bar(bar: dict[str, str]) -> Markup:
    # ``x`` and ``width`` are numbers the axes formatted.
    return Markup(
        f'<rect class="st-bar-delete" x="{bar["x"]}" width="{bar["width"]}" y="0" height="10"></rect>'
    )


# --------------------------------------------------------------------- stored values


def _raw_deletes(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [delete for delete in _list(trace.get("slow_deletes")) if isinstance(delete, dict)]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def _end(delete: dict[str, Any]) -> int:
    return _int(delete.get("start_ns")) + _int(delete.get("duration_ns"))
