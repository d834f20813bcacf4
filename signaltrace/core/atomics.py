"""The atomic blocks the application has open, per context, and how each one ended.

:mod:`signaltrace.core.transactions` pushes an :class:`AtomicBlock` when an
``atomic()`` block the application opened is entered and pops it when it exits;
the store reads :data:`open_blocks` when it records a dispatch, to say which
transaction the dispatch ran in. Blocks Django's ``TestCase`` opens for itself
(``Atomic._from_testcase``) are never pushed, so a test does not look as if
everything ran inside a transaction.

Where a context's stack lives: a ``ContextVar`` holds a small mutable cell
``[blocks, thread id]``, the innermost block last, as the frame chain does
(:mod:`signaltrace.core.frames`): ``ContextVar.set`` on every block would cost more
than the rest of the wrapper. It is safe because a block opens and closes in
synchronous code on one thread (Django's ``atomic()`` cannot be held across an
``await``). A context copied into another thread (``sync_to_async``,
``copy_context().run``) sees no blocks there: Django's connections are per thread, so
the blocks open where it was copied are another connection's. It gets a cell of its
own when it opens a block.
"""

from __future__ import annotations

from contextvars import ContextVar
from threading import get_ident
from typing import Any

#: A block's ``state``: still open, released into an enclosing block (a savepoint
#: kept), committed (the outermost application block), or rolled back.
OPEN, RELEASED, COMMITTED, ROLLED_BACK = "open", "released", "committed", "rolled back"


class AtomicBlock:
    """One ``atomic()`` block the application opened on one database alias."""

    __slots__ = (
        "alias",
        "atomic",
        "connection",
        "depth",
        "durable",
        "made",
        "parent",
        "savepoint",
        "state",
        "watched",
    )

    def __init__(
        self, alias: str, atomic: Any, parent: AtomicBlock | None, durable: bool, savepoint: bool = True
    ) -> None:
        self.alias = alias
        #: Django's ``Atomic`` object (one object can be entered several times).
        self.atomic = atomic
        #: The enclosing application block on the same alias, or None (outermost).
        self.parent = parent
        #: 1 for the outermost application block on its alias.
        self.depth = 1 if parent is None else parent.depth + 1
        self.durable = durable
        #: Whether a rollback at its exit stops at its own savepoint. False for
        #: ``atomic(savepoint=False)`` inside another block: its rollback takes the
        #: enclosing block with it.
        self.savepoint = savepoint
        self.state = OPEN
        #: The connection of a block opened before the hooks were installed (adopted):
        #: its exit is not seen, so it leaves the stack once Django no longer lists it.
        self.connection: Any = None
        #: Whether a record points at this block (only then is its outcome read at exit).
        self.watched = False
        #: The public ``Transaction`` last made for it (:func:`~signaltrace.core.effects.transaction_of`).
        self.made: Any = None

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
        block's fate; so does the rollback of a block without a savepoint of its own,
        which reaches up to the nearest enclosing savepoint, or the whole transaction.
        """
        block: AtomicBlock | None = self
        while block is not None:
            if block.state == ROLLED_BACK:
                while block.parent is not None and not block.savepoint:
                    block = block.parent
                return ROLLED_BACK, ("savepoint" if block.parent is not None else "transaction")
            if block.parent is None:
                return (COMMITTED if block.state == COMMITTED else OPEN), None
            block = block.parent
        return OPEN, None  # pragma: no cover - the loop returns at the outermost block


#: ``[the application's open blocks, innermost last; the thread that owns the cell]``.
block_cell: ContextVar[list[Any] | None] = ContextVar("signaltrace_block_cell", default=None)
# Its ``get``, bound once, for modules that import it: CPython 3.12+ calls a method of a
# name imported with ``from`` without the method-call shortcut (it takes the name for a
# module), so ``block_cell.get()`` there makes a bound-method object per call, on every dispatch.
get_block_cell = block_cell.get


def open_blocks() -> list[AtomicBlock] | None:
    """The application's open blocks in this context and thread (read only; None or empty: none)."""
    cell = block_cell.get()
    if cell is None or not cell[0] or cell[1] != get_ident():
        return None
    return cell[0]


def own_blocks() -> list[AtomicBlock]:
    """This context's stack, to push to or pop from: a new, empty one in a thread that
    did not make the cell (another thread's blocks are another connection's)."""
    cell = block_cell.get()
    thread = get_ident()
    if cell is None or cell[1] != thread:
        cell = [[], thread]
        block_cell.set(cell)
    return cell[0]


#: How many adopted blocks may still be on a stack: while any, readers drop those Django closed.
adopted = [0]


def adopt(blocks: list[AtomicBlock], alias: str, atomic: Any, connection: Any) -> None:
    """Push a block Django opened before the hooks were installed (its exit goes unseen)."""
    parent = innermost(blocks, alias) if blocks else None
    durable, savepoint = getattr(atomic, "durable", False), getattr(atomic, "savepoint", True)
    block = AtomicBlock(alias, atomic, parent, durable, savepoint)
    block.connection = connection
    blocks.append(block)
    adopted[0] += 1


def _drop_closed_adopted(blocks: list[AtomicBlock]) -> None:
    for block in [block for block in blocks if block.connection is not None]:
        if not any(atomic is block.atomic for atomic in block.connection.atomic_blocks):
            blocks.remove(block)
            adopted[0] -= 1


def innermost(blocks: list[AtomicBlock], alias: str | None) -> AtomicBlock | None:
    """The innermost open block on ``alias`` (any alias when None). While adopted blocks
    exist, it first drops from ``blocks`` those Django has closed (their exits go unseen)."""
    if adopted[0]:
        _drop_closed_adopted(blocks)
        if not blocks:
            return None
    if alias is None:
        return blocks[-1]
    for block in reversed(blocks):
        if block.alias == alias:
            return block
    return None


def block_for(blocks: list[AtomicBlock], named: dict[str, Any]) -> Any:
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
