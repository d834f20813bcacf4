"""The waterfall's two time axes, both mapping a trace's nanoseconds onto axis units.

* :class:`RequestAxis`: the whole request, from the toolbar's start to its end.
* :class:`SignalsAxis`: from the first dispatch to the end of the last one, with the
  long gaps between dispatches (a password hash, a slow query) compressed to a fixed
  width and marked with their real duration. On a 474 ms sign-up whose signals take
  3 ms, the request axis draws every bar as a sliver; this one spreads them out.

:func:`default_axis` picks the signals-only axis when the signals take less than a
tenth of the request. Both axes are computed from the stored JSON stats, on read.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import pairwise
from typing import Any

#: Width of the waterfall's SVG coordinate system (the SVG stretches to the cell).
AXIS_UNITS = 1000
#: Shortest bar drawn, in axis units, so instant dispatches still show.
MIN_BAR_UNITS = 2.0
#: Drawn width of one compressed gap.
GAP_UNITS = 16.0
#: All compressed gaps together take at most this share of the axis.
MAX_GAPS_SHARE = 0.2
#: At most this many gaps are compressed (the longest); shorter ones stay to scale.
MAX_GAPS = 12
#: A gap is compressed only when longer than this share of the time inside dispatches.
MIN_GAP_SHARE = 0.05
#: Closest two gap labels in the axis header, in axis units.
LABEL_SPACING = 150.0
#: Below this share of the request spent in signals, the signals-only axis is the default.
SIGNALS_ONLY_BELOW = 0.1


def format_ms(duration_ns: float) -> str:
    """``0.042 ms``, ``4.31 ms``, ``12.3 ms``, ``1204 ms``: about three significant digits."""
    ms = duration_ns / 1_000_000
    if ms < 1:
        return f"{ms:.3f} ms"
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms:.0f} ms"


class RequestAxis:
    """The request's time axis: nanoseconds since the toolbar's start, to scale."""

    name = "request"

    def __init__(self, total_ns: int) -> None:
        self.total_ns = max(total_ns, 1)

    def position(self, ns: float) -> float:
        """Where ``ns`` (since the start of the trace) falls, in axis units."""
        return min(max(ns, 0) / self.total_ns, 1.0) * AXIS_UNITS

    def bar(self, start_ns: int, duration_ns: int) -> dict[str, str]:
        """``x`` and ``width`` of a bar, at least :data:`MIN_BAR_UNITS` wide and inside the axis."""
        start = self.position(start_ns)
        x = min(start, AXIS_UNITS - MIN_BAR_UNITS)
        width = max(self.position(start_ns + duration_ns) - start, MIN_BAR_UNITS)
        return {"x": f"{x:.2f}", "width": f"{min(width, AXIS_UNITS - x):.2f}"}

    def ticks(self) -> list[dict[str, str]]:
        return [
            {"percent": f"{share * 100:.0f}", "label": format_ms(self.total_ns * share)}
            for share in (0, 0.25, 0.5, 0.75, 1)
        ]


class SignalsAxis(RequestAxis):
    """First dispatch to last, long gaps between dispatches compressed.

    The map from nanoseconds to units is piecewise linear through ``self.points``:
    to scale inside and between dispatches, and :data:`GAP_UNITS` (or less, when
    there are many) for each compressed gap, whatever its real length.
    """

    name = "signals"

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        busy = _merge(spans) or [(0, 0)]
        self.first_ns, self.last_ns = busy[0][0], busy[-1][1]
        super().__init__(self.last_ns - self.first_ns)
        busy_ns = sum(end - start for start, end in busy)
        between = [(end, start) for (_, end), (start, _) in pairwise(busy)]
        long_enough = [gap for gap in between if gap[1] - gap[0] > MIN_GAP_SHARE * busy_ns]
        compressed = sorted(sorted(long_enough, key=lambda gap: gap[0] - gap[1])[:MAX_GAPS])
        gap_units = min(GAP_UNITS, AXIS_UNITS * MAX_GAPS_SHARE / len(compressed)) if compressed else 0.0
        kept_ns = self.total_ns - sum(end - start for start, end in compressed)
        scale = (AXIS_UNITS - gap_units * len(compressed)) / max(kept_ns, 1)
        self.points: list[tuple[int, float]] = [(self.first_ns, 0.0)]
        self.gaps: list[dict[str, Any]] = []
        for start, end in compressed:
            x = self.points[-1][1] + (start - self.points[-1][0]) * scale
            self.points += [(start, x), (end, x + gap_units)]
            self.gaps.append({"x": x, "width": gap_units, "duration_ns": end - start})
        self.points.append((self.last_ns, float(AXIS_UNITS)))
        self._starts = [ns for ns, _ in self.points]

    def position(self, ns: float) -> float:
        if ns <= self.first_ns:
            return 0.0
        if ns >= self.last_ns:
            return float(AXIS_UNITS)
        index = bisect_right(self._starts, ns) - 1
        (ns0, x0), (ns1, x1) = self.points[index], self.points[index + 1]
        return x0 + (ns - ns0) / (ns1 - ns0) * (x1 - x0) if ns1 > ns0 else x0

    def gap_path(self) -> str:
        """An SVG path ``d`` drawing every compressed gap as a band across a row."""
        return " ".join(f"M{gap['x']:.2f} 0h{gap['width']:.2f}v10h-{gap['width']:.2f}z" for gap in self.gaps)

    def markers(self) -> list[dict[str, Any]]:
        """The gaps for the axis header: place in percent and real duration.

        A label is written under a gap (moved inwards near the ends) when it keeps
        :data:`LABEL_SPACING` from the labels of longer gaps; every gap's tooltip has it.
        """
        markers = []
        labels: list[float] = []
        for gap in sorted(self.gaps, key=lambda gap: -gap["duration_ns"]):
            center = gap["x"] + gap["width"] / 2
            label_x = min(max(center, LABEL_SPACING / 2), AXIS_UNITS - LABEL_SPACING / 2)
            labelled = all(abs(label_x - other) >= LABEL_SPACING for other in labels)
            if labelled:
                labels.append(label_x)
            markers.append(
                {
                    "left": f"{gap['x'] / AXIS_UNITS * 100:.2f}",
                    "width": f"{gap['width'] / AXIS_UNITS * 100:.2f}",
                    "label_x": f"{label_x / AXIS_UNITS * 100:.2f}",
                    "label": format_ms(gap["duration_ns"]),
                    "labelled": labelled,
                }
            )
        return sorted(markers, key=lambda marker: float(marker["left"]))


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching ``(start, end)`` spans joined, in order."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def default_axis(signal_ns: int, request_ns: int) -> str:
    """``"signals"`` when the signals took less than a tenth of the request, else ``"request"``."""
    return "signals" if signal_ns < SIGNALS_ONLY_BELOW * request_ns else "request"
