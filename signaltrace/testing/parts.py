"""Record one part (phase) of a test for the report: the step both front ends share.

The pytest plugin and the Django test runner wrap each part of a test (set-up, the
test, teardown, class set-up) in :func:`recorded_part`. The part's Trace is
summarized as soon as the part ends, while the objects it sent signals for still
live, and then dropped: a report keeps summaries, never traces.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from signaltrace.core import record
from signaltrace.safety import report_internal_error
from signaltrace.testing.report import summarize

if TYPE_CHECKING:
    from signaltrace.core import Trace
    from signaltrace.testing.ignored import IgnoredCounter


class Part:
    """What :func:`recorded_part` yields: the open Trace, and the summary once the part ended."""

    __slots__ = ("summary", "trace")

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.summary: dict[str, Any] | None = None


@contextmanager
def recorded_part(counter: IgnoredCounter | None = None) -> Iterator[Part]:
    """Record the block and summarize it when it ends (also when it raises).

    ``counter`` (if given) counts what ``IGNORE_SIGNALS`` hides meanwhile. A failure
    to summarize is logged, never raised into the test run; the summary is then None.
    """
    if counter is not None:
        counter.start()
    ignored = None
    part: Part | None = None
    try:
        with record() as trace:
            part = Part(trace)
            try:
                yield part
            finally:
                ignored = counter.stop() if counter is not None else None
    finally:
        if part is not None:
            try:
                part.summary = summarize(part.trace, ignored)
            except Exception:  # noqa: BLE001 - the report must never break the run
                report_internal_error("summarize")
