"""The dispatch tree's rows as HTML, built by :func:`format_html`.

A request can send thousands of signals, and Django's template engine spends about
10 µs per rendered variable: 2,000 dispatches took over a second through the
template, and still 0.3 s through Django's own ``format_html``, whose lazy-aware
``escape`` dominates. :func:`format_html` here works the same way (every argument
escaped unless it is markup this module built) with the standard library's
``html.escape``, which is what Django's ``escape`` calls.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from django.utils.safestring import SafeString, mark_safe


class Markup(str):
    """HTML built by :func:`format_html` from escaped parts; never wrap user text in it."""

    __slots__ = ()


_TRUSTED = (Markup, int, float)
_NO_GAPS = _EMPTY = Markup()


def format_html(template: str, *args: Any) -> Markup:
    """``template.format(*args)`` with each argument escaped, unless it is :class:`Markup` or a number."""
    return Markup(
        template.format(*(arg if isinstance(arg, _TRUSTED) else html.escape(str(arg)) for arg in args))
    )


def join(fragments: list[Markup]) -> Markup:
    """Concatenate fragments :func:`format_html` produced (so already escaped)."""
    return Markup("".join(fragments))


def _bar(css: str, bar: dict[str, str], y: int, height: int) -> Markup:
    # No escaping needed, and none spent (thousands of bars): ``css`` is one of this
    # module's class names, ``x`` and ``width`` numbers formatted by the axes.
    return Markup(
        f'<rect class="{css}" x="{bar["x"]}" width="{bar["width"]}" y="{y}" height="{height}"></rect>'
    )


def _call_css(call: dict[str, Any]) -> str:
    return (
        "st-bar-call"
        + (" st-bar-slow" if call["slow"] else "")
        + (" st-bar-error" if call["exception"] else "")
    )


def _verdict(exception: dict[str, Any]) -> Markup:
    css = "st-swallowed" if exception["swallowed"] else "st-raised"
    return format_html('<span class="st-badge {}">{}</span>', css, exception["verdict"])


def svg(units: int, gaps: Markup, bars: Callable[[int], list[Markup]]) -> Markup:
    """A waterfall cell: ``bars(axis)`` on the request axis (0) and the signals-only one
    (1); the panel shows one of them. ``gaps`` marks the compressed gaps on the latter."""
    return Markup(  # only markup built here: bars and gaps are Markup, units an int
        f'<svg class="st-wf" viewBox="0 0 {units:d} 10" preserveAspectRatio="none" aria-hidden="true">'
        f'<g class="st-ax-request">{join(bars(0))}</g>'
        f'<g class="st-ax-signals">{gaps}{join(bars(1))}</g></svg>'
    )


def _waterfall(dispatch: dict[str, Any], units: int, gaps: Markup) -> Markup:
    def bars(axis: int) -> list[Markup]:
        drawn = [_bar("st-bar-dispatch", dispatch["bars"][axis], 0, 10)]
        drawn.extend(_bar(_call_css(call), call["bars"][axis], 2, 6) for call in dispatch["calls"])
        return drawn

    return svg(units, gaps, bars)


def _signal_cell(dispatch: dict[str, Any]) -> Markup:
    parts = [format_html("{}", dispatch["signal"])]
    if dispatch["loop"]:
        parts.append(format_html(' <span class="st-badge st-raised">{}</span>', "loop"))
    if dispatch["errors"]:
        label = f"{dispatch['errors']} error{'s' if dispatch['errors'] != 1 else ''}"
        parts.append(format_html(' <span class="st-badge st-raised">{}</span>', label))
    if dispatch["slow"]:
        parts.append(format_html(' <span class="st-badge st-slow-badge">{}</span>', "slow"))
    if dispatch.get("delete"):
        parts.append(format_html(' <span class="st-badge st-delete-badge">in D{}</span>', dispatch["delete"]))
    transaction = dispatch.get("transaction")
    if transaction:
        parts.append(
            format_html(
                ' <span class="st-badge st-tx-badge" title="{}">in transaction</span>', transaction["summary"]
            )
        )
        if transaction["rolled_back"]:
            parts.append(
                format_html(
                    ' <span class="st-badge st-raised st-rollback-badge" title="{}">rolled back</span>',
                    transaction["summary"],
                )
            )
    if dispatch["via"]:
        parts.append(format_html('<span class="st-via">via {}</span>', dispatch["via"]))
    return format_html('<span class="st-signal {}">{}</span>', dispatch["depth_class"], join(parts))


def _call_rows(call: dict[str, Any], units: int) -> Markup:
    css = "st-call" + (" st-slow" if call["slow"] else "") + (" st-error" if call["exception"] else "")
    nested = (
        format_html(' <span class="st-muted">sent {}</span>', call["nested"]) if call["nested"] else Markup()
    )
    uid = (
        format_html("<code>{}</code>", call["dispatch_uid"]) if call["dispatch_uid"] is not None else Markup()
    )
    row = format_html(
        '<tr class="{}"><td><code>{}</code>{}</td><td class="st-loc" title="{}">{}</td><td>{}</td>'
        '<td>{}</td><td class="st-num">{}</td><td class="st-wf-cell">{}</td></tr>',
        css,
        call["receiver"],
        nested,
        call["full_location"],
        call["location"],
        uid,
        "async" if call["is_async"] else "sync",
        call["duration"],
        svg(units, _NO_GAPS, lambda axis: [_bar(_call_css(call), call["bars"][axis], 1, 8)]),
    )
    exception = call["exception"]
    if not exception:
        return row
    return format_html(
        '{}<tr class="st-call-exception"><td colspan="6">{} <code>{}</code>: {}</td></tr>',
        row,
        _verdict(exception),
        exception["type"],
        exception["message"],
    )


_CALLS_HEAD = Markup(
    "<thead><tr><th>Receiver</th><th>Location</th><th>dispatch_uid</th><th>Async</th><th>Duration</th>"
    '<th class="st-wf-cell"><span class="st-ax-request">On the request\'s time axis</span>'
    '<span class="st-ax-signals">On the signals-only time axis</span></th></tr></thead>'
)


def _body(dispatch: dict[str, Any], units: int, gaps: Markup) -> Markup:
    parts = []
    if dispatch["kwargs"]:
        items = [
            format_html("<dt>{}</dt><dd><code>{}</code></dd>", name, value)
            for name, value in dispatch["kwargs"]
        ]
        parts.append(format_html('<dl class="st-kwargs">{}</dl>', join(items)))
    if dispatch["calls"]:
        rows = join([_call_rows(call, units) for call in dispatch["calls"]])
        parts.append(format_html('<table class="st-calls">{}<tbody>{}</tbody></table>', _CALLS_HEAD, rows))
    else:
        parts.append(
            format_html('<p class="st-muted">{}</p>', "Sent, but no receiver was connected for this sender.")
        )
    return join(parts)


def dispatch_row(dispatch: dict[str, Any], units: int, gaps: Markup = _NO_GAPS) -> Markup:
    """One ``<details>`` row: the summary line with its waterfall, and its receivers."""
    return format_html(
        '<details class="st-dispatch {}" data-st-filter="{}" data-st-id="{}"{}>'
        '<summary class="st-row"><span class="st-id">{}</span>{}<span class="st-sender">{}</span>'
        '<span class="st-method">{}</span><span class="st-num">{}</span><span class="st-num">{}</span>'
        "{}</summary>"
        '<div class="st-body">{}</div></details>\n',
        dispatch["classes"],
        dispatch["filter"],
        dispatch["id"],
        format_html(' data-st-delete="{}"', dispatch["delete"]) if dispatch.get("delete") else _EMPTY,
        dispatch["id"],
        _signal_cell(dispatch),
        dispatch["sender"],
        dispatch["method"],
        dispatch["receivers"],
        dispatch["duration"],
        _waterfall(dispatch, units, gaps),
        _body(dispatch, units, gaps),
    )


def gap_marks(gaps: str) -> Markup:
    """The SVG of the signals-only axis's compressed gaps (a path ``d``), drawn in every row."""
    return format_html('<path class="st-gap" d="{}"></path>', gaps) if gaps else _NO_GAPS


def tree(
    dispatches: list[dict[str, Any]],
    units: int,
    gaps: str = "",
    before: dict[int, list[Markup]] | None = None,
) -> SafeString:
    """All rows, in start order (which is the tree's pre-order), safe for a template.

    ``gaps`` is the SVG path of the signals-only axis's compressed gaps, drawn in every row.
    ``before`` maps a dispatch's position to rows built elsewhere (slow deletes) that go
    just above it; a position past the last dispatch puts them at the end.
    """
    marks = gap_marks(gaps)
    before = before or {}
    rows: list[Markup] = []
    for position, dispatch in enumerate(dispatches):
        rows.extend(before.get(position, ()))
        rows.append(dispatch_row(dispatch, units, marks))
    for position in sorted(p for p in before if p >= len(dispatches)):
        rows.extend(before[position])
    return mark_safe(join(rows))
