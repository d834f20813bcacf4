"""The tree's rows for ``on_commit`` callbacks and writes that skipped save receivers.

``trace.to_dict()`` lists each callback registered with ``on_commit`` and its fate
(see :class:`signaltrace.core.OnCommitCallback`), and each ``bulk_create``,
``bulk_update`` or ``update`` whose model has save receivers that therefore did not
run (:class:`signaltrace.core.BypassedWrite`). Like a slow delete
(:mod:`signaltrace.panels.deletes`), each becomes a row of the dispatch tree, drawn on
both time axes: callbacks are *C1*, *C2*…, at the moment they were registered, with
their run after the commit on the same waterfall; bypassed writes are *B1*, *B2*….

A row made inside a receiver goes under that receiver's dispatch, one level deeper,
among the dispatches the receiver sent, in time order; any other row goes at the top
level where it happened. Which receiver call made it is decided by object identity
while the trace is alive (:func:`effect_owners`, when the panel stores its stats) and
stored as ``[dispatch, call]`` indexes; stats without them put every row at the top
level. Values are read defensively (a store holds JSON anything could have written)
and escaped by :func:`~signaltrace.panels.rows.format_html` when drawn.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

import signaltrace
from signaltrace.core import short_path
from signaltrace.panels.axes import RequestAxis, SignalsAxis, format_ms
from signaltrace.panels.hazards import transaction_of
from signaltrace.panels.rows import Markup, format_html, join, svg

Axes = tuple[RequestAxis, SignalsAxis]

#: The stats key of :func:`effect_owners`' result, and its two lists.
OWNERS_KEY = "effect_owners"
CALLBACKS, WRITES = "on_commit_callbacks", "bypassed_writes"


def effect_owners(trace: signaltrace.Trace) -> dict[str, list[list[int] | None]]:
    """For each callback and each bypassed write (as in ``trace.to_dict()``), the
    ``[dispatch, call]`` indexes of the receiver call that made it, or None."""
    index = {id(dispatch): number for number, dispatch in enumerate(trace.dispatches)}

    def owner(found: Any) -> list[int] | None:
        call = found.receiver
        dispatch = getattr(call, "dispatch", None)
        if dispatch is None or id(dispatch) not in index:
            return None  # outside any receiver, or its dispatch was not kept
        position = next((i for i, other in enumerate(dispatch.calls) if other is call), None)
        return None if position is None else [index[id(dispatch)], position]

    return {
        CALLBACKS: [owner(found) for found in trace.on_commit_callbacks],
        WRITES: [owner(found) for found in trace.bypassed_writes],
    }


def effect_spans(trace: dict[str, Any]) -> list[tuple[int, int]]:
    """``(start_ns, end_ns)`` of what the rows draw, for the time axes: each callback's
    registration (an instant) and its run, each bypassed write."""
    spans = []
    for callback in _dicts(trace.get(CALLBACKS)):
        registered = _int(callback.get("registered_ns"))
        spans.append((registered, registered))
        ran = _ran_ns(callback)
        if ran is not None:
            spans.append((ran, ran + _int(callback.get("duration_ns"))))
    spans.extend(
        (_int(write.get("start_ns")), _int(write.get("start_ns")) + _int(write.get("duration_ns")))
        for write in _dicts(trace.get(WRITES))
    )
    return spans


def effect_rows(
    stats: dict[str, Any], dispatches: list[dict[str, Any]], axes: Axes, units: int, gaps: Markup
) -> list[tuple[int, int, Markup]]:
    """``(position, start_ns, row)`` for every callback and bypassed write of ``stats``.

    ``dispatches`` are the dispatch views, in the trace's order; ``position`` is that of
    the dispatch the row goes just above (``len(dispatches)``: at the end).
    """
    trace = stats.get("trace") or {}
    owners = stats.get(OWNERS_KEY)
    owners = owners if isinstance(owners, dict) else {}
    starts = [dispatch["start_ns"] for dispatch in dispatches]
    rows = []
    callbacks = _with_owners(trace.get(CALLBACKS), owners.get(CALLBACKS), dispatches)
    for number, (callback, owner) in enumerate(callbacks, start=1):
        view = _callback_view(number, callback, owner, axes)
        rows.append(_placed(view, owner, starts, callback_row(view, units, gaps)))
    writes = _with_owners(trace.get(WRITES), owners.get(WRITES), dispatches)
    for number, (write, owner) in enumerate(writes, start=1):
        view = _write_view(number, write, owner, axes)
        rows.append(_placed(view, owner, starts, write_row(view, units, gaps)))
    return rows


def _with_owners(
    raw: Any, owners: Any, dispatches: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Each stored item with the view of its owner (dispatch, call and depth), if valid."""
    owners = owners if isinstance(owners, list) else []
    paired = []
    for position, item in enumerate(raw if isinstance(raw, list) else ()):
        if not isinstance(item, dict):
            continue
        found = owners[position] if position < len(owners) else None
        owner = None
        if isinstance(found, list) and len(found) == 2 and all(type(i) is int and i >= 0 for i in found):
            number, call = found
            if number < len(dispatches) and call < len(dispatches[number]["calls"]):
                owner = {
                    "index": number,
                    "dispatch": dispatches[number],
                    "call": dispatches[number]["calls"][call],
                }
        paired.append((item, owner))
    return paired


def _placed(
    view: dict[str, Any], owner: dict[str, Any] | None, starts: list[int], row: Markup
) -> tuple[int, int, Markup]:
    """Just above the first dispatch that started after it; never above its owner's dispatch."""
    position = bisect_right(starts, view["start_ns"])
    if owner is not None:
        position = max(position, owner["index"] + 1)
    return position, view["start_ns"], row


def _owner_fields(owner: dict[str, Any] | None, stored_by: Any) -> dict[str, Any]:
    """Who made it (the receiver, its place, its dispatch) and the row's indentation."""
    if owner is not None:
        depth = owner["dispatch"]["depth"] + 1
        call = owner["call"]
        receiver, location, full = call["receiver"], call["location"], call["full_location"]
        dispatch_id = owner["dispatch"]["id"]
    else:
        depth, dispatch_id = 0, None
        stored_by = stored_by if isinstance(stored_by, dict) else {}
        receiver = str(stored_by.get("receiver") or "")
        location, full = _location(stored_by)
    return {
        "receiver": receiver,
        "receiver_location": location,
        "receiver_full_location": full,
        "dispatch_id": dispatch_id,
        "depth_class": f"st-depth-{min(depth, 12)}",
    }


def _by(view: dict[str, Any]) -> str:
    """``by app.receivers.notify in #12``: the receiver that made a row, and its dispatch."""
    if not view["receiver"]:
        return ""
    where = f" in #{view['dispatch_id']}" if view["dispatch_id"] is not None else ""
    return f"by {view['receiver']}{where}"


# ---------------------------------------------------------------- on_commit callbacks

#: The fates of a callback that ran.
RAN_FATES = ("ran", "ran at once")

#: Per fate: the badge's words and class, and what it means (``{ran_at}``, ``{duration}``).
_FATES = {
    "ran": (
        "ran after commit",
        "st-fate-ran",
        "ran after its transaction committed, at {ran_at}, for {duration}.",
    ),
    "discarded": (
        "discarded",
        "st-fate-discarded",
        "never ran: a rollback discarded it, or an earlier callback raised.",
    ),
    "pending": (
        "pending",
        "st-fate-pending",
        "not run: its transaction had not committed when the request ended "
        "(under TestCase, until captureOnCommitCallbacks(execute=True) runs it).",
    ),
    "ran at once": (
        "ran at once",
        "st-fate-at-once",
        "no transaction was open, so Django ran it at once, for {duration}.",
    ),
}


def _callback_view(
    number: int, callback: dict[str, Any], owner: dict[str, Any] | None, axes: Axes
) -> dict[str, Any]:
    registered = _int(callback.get("registered_ns"))
    ran = _ran_ns(callback)
    duration = _int(callback.get("duration_ns"))
    fate = str(callback.get("fate") or "")
    transaction = transaction_of(callback.get("transaction"))
    label, css, meaning = _FATES.get(fate, (fate or "unknown", "st-fate-unknown", "{fate}."))
    if fate == "discarded" and transaction is not None and transaction.rolled_back:
        label, meaning = "discarded by rollback", "never ran: its transaction was rolled back."
    location, full_location = _location(callback)
    view = {
        "number": number,
        "callback": str(callback.get("callback") or ""),
        "location": location,
        "full_location": full_location,
        "fate": fate,
        "fate_label": label,
        "fate_class": css,
        "meaning": meaning.format(
            ran_at=format_ms(ran or 0), duration=format_ms(duration), fate=fate or "unknown fate"
        ),
        "transaction": transaction.summary if transaction is not None else "none",
        "robust": callback.get("robust") is True,
        "exception": str(callback.get("exception") or ""),
        "registered_at": format_ms(registered),
        "duration": format_ms(duration) if ran is not None else "",
        "start_ns": registered,
        "bars": [_callback_bars(axis, registered, ran, duration) for axis in axes],
        **_owner_fields(owner, callback.get("registered_by")),
    }
    view["filter"] = " ".join(["on_commit", view["callback"], view["receiver"], label]).lower()
    return view


def _ran_ns(callback: dict[str, Any]) -> int | None:
    """When it ran, for the fates that ran it (a discarded callback has a time, no run)."""
    ran = callback.get("ran_ns")
    return ran if type(ran) is int and callback.get("fate") in RAN_FATES else None


def _callback_bars(axis: RequestAxis, registered: int, ran: int | None, duration: int) -> dict[str, Any]:
    """Its registration (a mark), the wait for the commit and its run (None if it did not run)."""
    return {
        "mark": axis.bar(registered, 0),
        "wait": axis.bar(registered, ran - registered) if ran is not None and ran > registered else None,
        "run": axis.bar(ran, duration) if ran is not None else None,
    }


def _callback_body(view: dict[str, Any]) -> Markup:
    registered_by = (
        format_html(
            ' by <code>{}</code> <span class="st-loc" title="{}">{}</span>',
            view["receiver"],
            view["receiver_full_location"],
            view["receiver_location"],
        )
        if view["receiver"]
        else Markup(" outside any receiver")
    )
    exception = (
        format_html("<dt>Exception</dt><dd><code>{}</code></dd>", view["exception"])
        if view["exception"]
        else Markup()
    )
    return format_html(
        '<dl class="st-kwargs">'
        '<dt>Callback</dt><dd><code>{}</code> <span class="st-loc" title="{}">{}</span></dd>'
        "<dt>Registered</dt><dd>at {}{}</dd>"
        "<dt>Transaction</dt><dd>{}</dd>"
        "<dt>Fate</dt><dd>{}</dd>"
        "<dt>Robust</dt><dd>{}</dd>{}</dl>",
        view["callback"],
        view["full_location"],
        view["location"],
        view["registered_at"],
        registered_by,
        view["transaction"],
        view["meaning"],
        "yes" if view["robust"] else "no",
        exception,
    )


def callback_row(view: dict[str, Any], units: int, gaps: Markup) -> Markup:
    """One ``<details>`` row of the tree for an ``on_commit`` callback."""
    exception = (
        format_html(' <span class="st-badge st-raised">raised {}</span>', view["exception"])
        if view["exception"]
        else Markup()
    )

    def bars(axis: int) -> list[Markup]:
        drawn = view["bars"][axis]
        css = "st-bar-commit" + (" st-bar-error" if view["exception"] else "")
        shown = [_rect("st-bar-wait", drawn["wait"], 4, 2)] if drawn["wait"] else []
        shown.append(_rect("st-bar-registered", drawn["mark"], 0, 10))
        if drawn["run"]:
            shown.append(_rect(css, drawn["run"], 1, 8))
        return shown

    return format_html(
        '<details class="st-effect st-commit {}" data-st-filter="{}" data-st-effect="C{}">'
        '<summary class="st-row"><span class="st-id">C{}</span>'
        '<span class="st-effect-summary {}"><span class="st-badge st-commit-badge">on_commit</span> '
        '<code>{}</code> <span class="st-badge {}">{}</span>{}<span class="st-via">{}</span></span>'
        '<span class="st-num"></span><span class="st-num">{}</span>{}</summary>'
        '<div class="st-body">{}</div></details>\n',
        view["fate_class"],
        view["filter"],
        view["number"],
        view["number"],
        view["depth_class"],
        view["callback"],
        view["fate_class"],
        view["fate_label"],
        exception,
        _by(view),
        view["duration"],
        svg(units, gaps, bars),
        _callback_body(view),
    )


# -------------------------------------------------------------------- bypassed writes


def _write_view(
    number: int, write: dict[str, Any], owner: dict[str, Any] | None, axes: Axes
) -> dict[str, Any]:
    start, duration = _int(write.get("start_ns")), _int(write.get("duration_ns"))
    receivers = [
        {
            "receiver": str(found.get("receiver") or ""),
            "signal": str(found.get("signal") or ""),
            "sender": str(found.get("sender") or ""),
            **dict(zip(("location", "full_location"), _location(found), strict=True)),
        }
        for found in _dicts(write.get("receivers"))
    ]
    location, full_location = _location(write)
    summary = str(write.get("summary") or "") or (
        f"{write.get('operation') or '?'} of {_int(write.get('rows'))} {write.get('model') or '?'} rows"
    )
    view = {
        "number": number,
        "summary": summary,
        "operation": str(write.get("operation") or ""),
        "receivers": receivers,
        "location": location,
        "full_location": full_location,
        "duration": format_ms(duration),
        "start_ns": start,
        "bars": [axis.bar(start, duration) for axis in axes],
        **_owner_fields(owner, write.get("receiver")),
    }
    words = [summary, view["receiver"], *(found["receiver"] for found in receivers)]
    view["filter"] = " ".join(words).lower()
    return view


_SKIPPED_HEAD = Markup(
    "<thead><tr><th>Receiver that did not run</th><th>Signal</th><th>Sender</th>"
    "<th>Location</th></tr></thead>"
)


def _write_body(view: dict[str, Any]) -> Markup:
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
    made_in = (
        format_html(
            ', in <code>{}</code> <span class="st-loc" title="{}">{}</span>',
            view["receiver"],
            view["receiver_full_location"],
            view["receiver_location"],
        )
        if view["receiver"]
        else Markup()
    )
    return format_html(
        '<p class="st-muted">Django sends no <code>pre_save</code> or <code>post_save</code> for '
        "<code>{}</code>: the receivers listed here did not run for these rows. Save each object, "
        "or do in the same place what the receivers do.</p>"
        '<p>Called at <span class="st-loc" title="{}">{}</span>{} · {}.</p>'
        '<table class="st-calls st-skipped-receivers">{}<tbody>{}</tbody></table>',
        view["operation"] or "this write",
        view["full_location"],
        view["location"] or "?",
        made_in,
        view["duration"],
        _SKIPPED_HEAD,
        receivers,
    )


def write_row(view: dict[str, Any], units: int, gaps: Markup) -> Markup:
    """One ``<details>`` row of the tree for a write that skipped save receivers."""
    return format_html(
        '<details class="st-effect st-bypass" data-st-filter="{}" data-st-effect="B{}">'
        '<summary class="st-row"><span class="st-id">B{}</span>'
        '<span class="st-effect-summary {}"><span class="st-badge st-bypass-badge">bypassed write</span> '
        '<code>{}</code><span class="st-via">{}</span></span>'
        '<span class="st-num" title="receivers that did not run">{}</span>'
        '<span class="st-num">{}</span>{}</summary>'
        '<div class="st-body">{}</div></details>\n',
        view["filter"],
        view["number"],
        view["number"],
        view["depth_class"],
        view["summary"],
        _by(view) or f"called at {view['location'] or '?'}",
        len(view["receivers"]),
        view["duration"],
        svg(units, gaps, lambda axis: [_rect("st-bar-bypass", view["bars"][axis], 0, 10)]),
        _write_body(view),
    )


# ---------------------------------------------------------------------------- helpers


def _rect(css: str, bar: dict[str, str], y: int, height: int) -> Markup:
    # ``css`` is one of this module's class names; ``x`` and ``width`` numbers the axes formatted.
    return Markup(
        f'<rect class="{css}" x="{bar["x"]}" width="{bar["width"]}" y="{y}" height="{height}"></rect>'
    )


def _location(item: dict[str, Any]) -> tuple[str, str]:
    """The short and the full ``file:line`` of a stored item."""
    file = item.get("file")
    if not file:
        return "", ""
    line = item.get("line")
    return f"{short_path(str(file))}:{line}", f"{file}:{line}"


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if type(value) is int else 0
