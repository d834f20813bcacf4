"""The per-context frame chain: which dispatch's receiver is running now, and its ancestors.

A frame is a small list (fields ``F_*``, owned by this module) made for every
dispatch that has receivers, recording or not. It holds the dispatch's signal,
sender and kwargs, the frame of the receiver that sent it (its parent), the
receiver running in it now, the store's record of the dispatch (if one is
written) and what to restore when the dispatch ends. The chain of parents gives
nesting, depth and the loop guard's view of what is in progress.

Where the current frame lives: a ``ContextVar`` holds a small mutable cell
``[frame, thread id]``. Why a mutable cell and not ``ContextVar.set``/``reset``
around every dispatch: set+reset costs about as much as Django's whole ``send``
with one receiver, and the hooks run on every dispatch. It is safe because:

* synchronous code always restores the cell before returning, so contexts that
  share a cell (asyncio tasks of one thread) never see each other's frames;
* a cell is only used by the thread that made it: a context copied into another
  thread gets a new cell (:func:`adopt_cell`);
* code that holds a frame across ``await`` (``asend``, async receivers) sets a
  cell of its own with ``ContextVar.set``.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from threading import get_ident
from typing import Any

# Frame fields. The hooks fill F_RECEIVER and F_CALL as each receiver runs; F_RECORD
# is the store's dispatch record (None when nothing records or observes it); F_CELL
# and F_TOKEN say what to restore when the dispatch ends.
F_SIGNAL, F_SENDER, F_NAMED, F_PARENT, F_RECEIVER, F_CALL, F_RECORD, F_CELL, F_TOKEN = range(9)
# Cell fields.
CELL_FRAME, CELL_THREAD = 0, 1

Frame = list[Any]

frame_cell: ContextVar[list[Any] | None] = ContextVar("signaltrace_frame_cell", default=None)
# Its methods, bound once, for modules that import them: CPython 3.12+ calls a method of a
# name imported with ``from`` without the method-call shortcut (it takes the name for a
# module), so ``frame_cell.get()`` there makes a bound-method object per call, on every dispatch.
get_frame_cell = frame_cell.get
set_frame_cell = frame_cell.set
reset_frame_cell = frame_cell.reset


def adopt_cell(found: list[Any] | None) -> tuple[list[Any], Token[list[Any] | None] | None]:
    """A cell for this thread, set in this context: ``found`` is None or another thread's.

    The new cell starts from ``found``'s frame: a context copied into this thread
    inside a dispatch (``sync_to_async`` in a receiver) keeps its parent. Such a
    cell, holding a frame, is set only for the dispatch that adopts it: the caller
    resets the returned token when it ends, because asgiref copies a context's
    changes back to the caller, whose later dispatches must not find a finished
    frame. An empty cell stays set (token None), so later dispatches in this
    context find it without setting a ``ContextVar`` again.
    """
    frame = None if found is None else found[CELL_FRAME]
    cell = [frame, get_ident()]
    token = frame_cell.set(cell)
    return cell, (None if frame is None else token)


def instance_of(frame: Frame) -> Any:
    """The ``instance`` kwarg of the frame's dispatch (model signals), or None."""
    return frame[F_NAMED].get("instance")


def depth_of(parent: Frame | None) -> int:
    """How many receivers deep a dispatch sent with ``parent`` as current frame is."""
    depth = 0
    while parent is not None:
        depth += 1
        parent = parent[F_PARENT]
    return depth
