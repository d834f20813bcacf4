"""The atomic blocks the application has open, per context, and how each one ended.

:mod:`signaltrace.core.transactions` pushes an :class:`AtomicBlock` when an
``atomic()`` block the application opened is entered and pops it when it exits;
the store reads :data:`open_blocks` when it records a dispatch, to say which
transaction the dispatch ran in. Blocks Django's ``TestCase`` opens for itself
(``Atomic._from_testcase``) are never pushed, so a test does not look as if
everything ran inside a transaction.

A context's stack is an immutable tuple in a ``ContextVar`` (None when empty), the
innermost block last: one read per dispatch, and contexts copied into other
threads or tasks (``sync_to_async``) see the blocks open where they were copied.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

#: A block's ``state``: still open, released into an enclosing block (a savepoint
#: kept), committed (the outermost application block), or rolled back.
OPEN, RELEASED, COMMITTED, ROLLED_BACK = "open", "released", "committed", "rolled back"


class AtomicBlock:
    """One ``atomic()`` block the application opened on one database alias."""

    __slots__ = ("alias", "atomic", "depth", "durable", "end_ns", "parent", "start_ns", "state", "watched")

    def __init__(
        self, alias: str, atomic: Any, parent: AtomicBlock | None, durable: bool, start_ns: int
    ) -> None:
        self.alias = alias
        #: Django's ``Atomic`` object (one object can be entered several times).
        self.atomic = atomic
        #: The enclosing application block on the same alias, or None (outermost).
        self.parent = parent
        #: 1 for the outermost application block on its alias.
        self.depth = 1 if parent is None else parent.depth + 1
        self.durable = durable
        self.start_ns = start_ns
        self.end_ns: int | None = None
        self.state = OPEN
        #: Whether a record points at this block (only then is its outcome read at exit).
        self.watched = False

    def watch(self) -> None:
        """Ask for this block's outcome, and its enclosing blocks' (a released savepoint
        takes theirs)."""
        block: AtomicBlock | None = self
        while block is not None and not block.watched:
            block.watched = True
            block = block.parent

    def outcome(self) -> tuple[str, str | None]:
        """``(outcome, rollback scope)`` as known now, for what ran inside this block.

        Outcome: ``committed``, ``rolled back`` or ``open``; scope ``savepoint`` or
        ``transaction`` when rolled back. A released savepoint takes its enclosing
        block's fate.
        """
        block: AtomicBlock | None = self
        while block is not None:
            if block.state == ROLLED_BACK:
                return ROLLED_BACK, ("savepoint" if block.parent is not None else "transaction")
            if block.parent is None:
                return (COMMITTED if block.state == COMMITTED else OPEN), None
            block = block.parent
        return OPEN, None  # pragma: no cover - the loop returns at the outermost block


#: The application's open blocks in this context, innermost last; None when there are none.
open_blocks: ContextVar[tuple[AtomicBlock, ...] | None] = ContextVar("signaltrace_open_blocks", default=None)


def innermost(blocks: tuple[AtomicBlock, ...], alias: str | None) -> AtomicBlock | None:
    """The innermost open block on ``alias`` (any alias when None)."""
    if alias is None:
        return blocks[-1]
    for block in reversed(blocks):
        if block.alias == alias:
            return block
    return None


def block_for(blocks: tuple[AtomicBlock, ...], named: dict[str, Any]) -> Any:
    """What a dispatch with kwargs ``named`` ran in, while ``blocks`` are open.

    A model signal (it has ``using``) runs in the innermost block on that alias, or in
    autocommit (the alias itself is returned); any other signal in the innermost block.
    The block is marked watched, so its outcome is read when it exits.
    """
    using = named.get("using")
    block = innermost(blocks, using if type(using) is str else None)
    if block is None:
        return using if type(using) is str else None
    if not block.watched:
        block.watch()
    return block
