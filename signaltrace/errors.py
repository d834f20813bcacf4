"""Exceptions raised by signaltrace.

Everything signaltrace raises on purpose derives from :class:`SignalTraceError`.
Internal failures are never raised into the host application: they are logged on
the ``signaltrace`` logger instead (see :mod:`signaltrace.safety`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from signaltrace.core.loops import Loop


class SignalTraceError(Exception):
    """Base class of every exception signaltrace raises on purpose."""


class SignalLoopError(SignalTraceError, RuntimeError):
    """A signal dispatch re-entered itself: a save loop or a recursive signal.

    Raised before the looping dispatch calls any receiver, long before Python's
    recursion limit. ``loop`` describes what cycled; ``cycle`` is its steps.
    """

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.cycle = loop.cycle
        super().__init__(loop.message)
