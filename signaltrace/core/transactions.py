"""Which transaction each dispatch runs in, and what becomes of ``on_commit`` callbacks.

Installed with the hooks, this wraps four of Django's methods:

* ``Atomic.__enter__``/``__exit__``: push and pop an
  :class:`~signaltrace.core.atomics.AtomicBlock` for every block the application
  opens (``TestCase``'s own blocks are skipped), always, so a ``record()`` block
  opened inside a transaction knows it. That is one ``ContextVar`` read and set per
  block, next to a ``SAVEPOINT`` or ``BEGIN``. At exit, a block that a record points
  at learns its outcome: committed, released, or rolled back.
* ``BaseDatabaseWrapper.on_commit``: while recording or observed, an
  ``on_commit`` registration (also through ``transaction.on_commit`` and Celery's
  ``delay_on_commit``) becomes an :class:`~signaltrace.core.effects.OnCommitCallback`
  finding, linked to the receiver that registered it.
* ``BaseDatabaseWrapper.run_and_clear_commit_hooks``: times the callbacks it
  watches as Django runs them after the commit. They are called through a small
  stand-in that passes every attribute (``__qualname__`` for Django's log line)
  to the callback and raises what it raises.
* ``TestCase.captureOnCommitCallbacks`` (when ``django.test`` is loaded): marks the
  callbacks it runs with ``execute=True``.

A watched callback that leaves Django's list without running (a rollback) is
marked discarded when the block that dropped it exits. Django's return values and
exceptions pass through unchanged; errors of signaltrace's own are logged.
"""

from __future__ import annotations

import sys
import weakref
from contextlib import contextmanager
from threading import Lock, get_ident
from time import perf_counter_ns
from typing import Any

from signaltrace.core import patches
from signaltrace.core.atomics import (
    COMMITTED,
    RELEASED,
    ROLLED_BACK,
    AtomicBlock,
    adopt,
    get_block_cell,
    innermost,
    open_blocks,
    own_blocks,
)
from signaltrace.core.effects import DISCARDED, PENDING, RAN, RAN_AT_ONCE, OnCommitCallback, transaction_of
from signaltrace.core.naming import receiver_info
from signaltrace.core.store import announce, current_receiver, is_watched, keep_finding
from signaltrace.safety import report_internal_error

GROUP = "transactions"
_DEFAULT_ALIAS = "default"
# Watched callbacks still in a connection's list: connection -> [_Registration].
_waiting: weakref.WeakKeyDictionary[Any, list[_Registration]] = weakref.WeakKeyDictionary()
# How many callbacks _waiting holds: the quick "is anything watched" test of every block's exit.
_waiting_count = [0]
_count_lock = Lock()
# At most this many callbacks are watched per connection; older ones are forgotten (still pending).
MAX_WAITING = 1000
# django.db.transaction.get_connection, taken by install_transaction_watch().
_get_connection: Any = None


class _Registration:
    """One ``on_commit`` registration while recording or observed (mutable: its fate changes)."""

    __slots__ = (
        "alias",
        "block",
        "call",
        "duration_ns",
        "exception",
        "fate",
        "func",
        "info",
        "ran_ns",
        "registered_ns",
        "robust",
    )

    def __init__(self, func: Any, robust: bool, alias: str, block: Any, call: Any) -> None:
        self.func = func
        self.info = _callback_info(func)
        self.robust = robust
        self.alias = alias
        #: The AtomicBlock it was registered in, or None (autocommit, or only TestCase's blocks).
        self.block = block
        #: The store's record of the receiver call that registered it (opaque), or None.
        self.call = call
        self.registered_ns = perf_counter_ns()
        self.fate = PENDING
        self.ran_ns: int | None = None
        self.duration_ns: int | None = None
        self.exception: BaseException | None = None

    def public(self, receiver: Any = None, origin: int = 0) -> OnCommitCallback:
        name, file, line = self.info
        transaction = transaction_of(self.block) if self.block is not None else None
        return OnCommitCallback(
            callback=name,
            file=file,
            line=line,
            alias=self.alias,
            robust=self.robust,
            registered_ns=self.registered_ns - origin,
            transaction=transaction,
            fate=self.fate,
            ran_ns=None if self.ran_ns is None else self.ran_ns - origin,
            duration_ns=self.duration_ns,
            exception=self.exception,
            receiver=receiver,
        )

    def settle(self, fate: str, start: int | None = None, end: int | None = None) -> None:
        self.fate = fate
        self.func = None  # no longer matched against Django's list: not kept alive by us
        if start is not None:
            self.ran_ns = start
            self.duration_ns = None if end is None else end - start
        announce(self.public)


def _callback_info(func: Any) -> tuple[str, str, int]:
    """``(name, file, line)`` of a callback: a ``partial``'s function, and a Celery task's
    ``delay``/``apply_async`` named after the task."""
    try:
        inner = func
        for _ in range(5):
            wrapped = getattr(inner, "func", None)  # functools.partial
            if wrapped is None or not callable(wrapped):
                break
            inner = wrapped
        name, file, line = receiver_info(inner)
        task = getattr(getattr(inner, "__self__", None), "name", None)
        if type(task) is str and getattr(inner, "__name__", "") in ("delay", "apply_async"):
            name = f"{task}.{inner.__name__}"
        return name, file, line
    except Exception:  # noqa: BLE001
        report_internal_error("on_commit callback name")
        return type(func).__name__, "", 0


class _TimedCallback:
    """Stands in for a watched callback while Django runs the commit hooks: times it."""

    __slots__ = ("_func", "_registration")

    def __init__(self, func: Any, registration: _Registration) -> None:
        self._func = func
        self._registration = registration

    def __call__(self) -> Any:
        start = perf_counter_ns()
        try:
            return self._func()
        except BaseException as error:
            self._registration.exception = error
            raise
        finally:
            # _watched_run() took it out of the waiting list before Django ran it.
            self._registration.settle(RAN, start, perf_counter_ns())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._func, name)

    def __repr__(self) -> str:
        # Django logs a robust callback's failure as its __qualname__, or (a partial) its repr.
        return repr(self._func)


def _forget(registration: _Registration) -> None:
    for connection, waiting in list(_waiting.items()):
        if registration in waiting:
            waiting.remove(registration)
            if not waiting:
                _waiting.pop(connection, None)
            _count_waiting()
            return


def _count_waiting() -> None:
    # Over the mapping's own dict: iterating the WeakKeyDictionary itself sets up an
    # iteration guard, which costs more than the count (this runs per on_commit). Under
    # a lock, so a thread's stale count never overwrites a newer one.
    with _count_lock:
        _waiting_count[0] = sum(map(len, list(_waiting.data.values())))


# ------------------------------------------------------------------ atomic blocks


def _pop(atomic: Any) -> AtomicBlock | None:
    """Take ``atomic``'s innermost block off this context's stack (None if it is not there)."""
    blocks = own_blocks()
    for index in range(len(blocks) - 1, -1, -1):
        if blocks[index].atomic is atomic:
            return blocks.pop(index)
    return None


def _make_enter(django_enter: Any) -> Any:
    def __enter__(self: Any) -> Any:
        result = django_enter(self)  # raises: no block was opened, none is pushed
        if getattr(self, "_from_testcase", False):
            return result
        try:
            alias = self.using or _DEFAULT_ALIAS
            # own_blocks(), its common case inlined: this runs for every block, idle or not.
            cell = get_block_cell()
            blocks = cell[0] if cell is not None and cell[1] == get_ident() else own_blocks()
            parent = innermost(blocks, alias) if blocks else None
            blocks.append(AtomicBlock(alias, self, parent, self.durable, self.savepoint))
        except Exception:  # noqa: BLE001
            report_internal_error("atomic block")
        return result

    __enter__.__wrapped__ = django_enter  # type: ignore[attr-defined]
    return __enter__


def _make_exit(django_exit: Any) -> Any:
    def __exit__(self: Any, exc_type: Any, exc_value: Any, traceback: Any) -> Any:
        # Popped first: what runs after the commit (on_commit callbacks) is outside it.
        cell = get_block_cell()  # open_blocks(), inlined
        block = None
        if cell is not None and cell[0] and not getattr(self, "_from_testcase", False):
            blocks = cell[0]
            # The innermost block, in the thread that owns the cell: the common case.
            if blocks[-1].atomic is self and cell[1] == get_ident():
                block = blocks.pop()
            else:
                block = _pop(self)
        if (block is None or not block.watched) and not _waiting_count[0]:
            return django_exit(self, exc_type, exc_value, traceback)
        return _watched_exit(self, block, exc_type, exc_value, traceback, django_exit)

    __exit__.__wrapped__ = django_exit  # type: ignore[attr-defined]
    return __exit__


def _watched_exit(
    atomic: Any, block: AtomicBlock | None, exc_type: Any, exc_value: Any, traceback: Any, django_exit: Any
) -> Any:
    connection = rolled_back = None
    try:
        connection = _get_connection(atomic.using)
        rolled_back = exc_type is not None or connection.needs_rollback or connection.closed_in_transaction
    except Exception:  # noqa: BLE001
        report_internal_error("atomic block")
    try:
        result = django_exit(atomic, exc_type, exc_value, traceback)
    except BaseException:
        # The commit (or the release) failed and Django rolled back, unless the commit
        # went through and an on_commit callback raised after it: Django leaves this
        # flag set when a hook raises (it is cleared once all hooks have run).
        committed = (
            block is not None
            and block.parent is None
            and getattr(connection, "run_commit_hooks_on_set_autocommit_on", False) is True
        )
        rolled_back = not committed
        raise
    finally:
        try:
            if block is not None and rolled_back is not None:
                block.state = (
                    ROLLED_BACK if rolled_back else (COMMITTED if block.parent is None else RELEASED)
                )
            if connection is not None and _waiting_count[0]:
                _settle_dropped(connection)
        except Exception:  # noqa: BLE001
            report_internal_error("atomic block")
    return result


def _listed(connection: Any) -> dict[int, int]:
    """How many times each callback (by ``id``) is in ``connection``'s list now.

    Callbacks are matched by the function, not by Django's entry: a savepoint rollback
    rebuilds the entries. The same function registered twice is counted twice.
    """
    counts: dict[int, int] = {}
    for entry in connection.run_on_commit:
        key = id(entry[1])
        counts[key] = counts.get(key, 0) + 1
    return counts


def _settle_dropped(connection: Any) -> None:
    """Mark the watched callbacks a rollback took out of ``connection``'s list as discarded.

    When a function is listed fewer times than it is watched, its latest registrations
    are the dropped ones (a savepoint rollback drops what was registered inside it).
    """
    waiting = _waiting.get(connection)
    if not waiting:
        return
    listed = _listed(connection)
    dropped = []
    for found in waiting:
        key = id(found.func)
        if listed.get(key, 0) > 0:
            listed[key] -= 1
        else:
            dropped.append(found)
    if not dropped:
        return
    now = perf_counter_ns()
    for found in dropped:
        waiting.remove(found)
        found.settle(DISCARDED, now)
    if not waiting:
        _waiting.pop(connection, None)
    _count_waiting()


# ------------------------------------------------------------------ on_commit


def _make_on_commit(django_on_commit: Any) -> Any:
    def on_commit(self: Any, func: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_watched():
            return django_on_commit(self, func, *args, **kwargs)
        return _watched_on_commit(self, func, args, kwargs, django_on_commit)

    on_commit.__wrapped__ = django_on_commit  # type: ignore[attr-defined]
    return on_commit


def _watched_on_commit(connection: Any, func: Any, args: Any, kwargs: Any, django_on_commit: Any) -> Any:
    try:
        robust = bool(kwargs.get("robust", args[0] if args else False))
        alias = connection.alias
        in_block = connection.in_atomic_block
        listed = len(connection.run_on_commit)
        blocks = open_blocks()
        block = innermost(blocks, alias) if blocks else None
        if block is not None:
            block.watch()
        call, _named, _info = current_receiver()
        found = _Registration(func, robust, alias, block, call)
    except Exception:  # noqa: BLE001
        report_internal_error("on_commit")
        return django_on_commit(connection, func, *args, **kwargs)
    if not in_block:
        return _ran_at_once(connection, func, args, kwargs, found, django_on_commit)
    result = django_on_commit(connection, func, *args, **kwargs)
    try:
        if len(connection.run_on_commit) > listed:
            waiting = _waiting.setdefault(connection, [])
            if len(waiting) >= MAX_WAITING:
                waiting.pop(0).func = None  # forgotten: stays pending
            waiting.append(found)
            _count_waiting()
        keep_finding(found, public=found.public)
    except Exception:  # noqa: BLE001
        report_internal_error("on_commit")
    return result


def _ran_at_once(
    connection: Any, func: Any, args: Any, kwargs: Any, found: _Registration, django_on_commit: Any
) -> Any:
    """Outside a transaction Django runs the callback now, or refuses it (not callable,
    or no transaction and no autocommit): a refusal is not kept."""
    start = perf_counter_ns()
    kept = True
    try:
        return django_on_commit(connection, func, *args, **kwargs)
    except BaseException as error:
        kept = _ran_before(connection, func)
        found.exception = error
        raise
    finally:
        try:
            found.func = None
            if kept:
                found.fate, found.ran_ns, found.duration_ns = RAN_AT_ONCE, start, perf_counter_ns() - start
                keep_finding(found, public=found.public)
        except Exception:  # noqa: BLE001
            report_internal_error("on_commit")


def _ran_before(connection: Any, func: Any) -> bool:
    """Whether Django called ``func`` before the error its ``on_commit`` raised (else it refused it)."""
    try:
        return callable(func) and bool(connection.get_autocommit())
    except Exception:  # noqa: BLE001 - no connection: Django could not have run it either
        return False


def _make_run_hooks(django_run: Any) -> Any:
    def run_and_clear_commit_hooks(self: Any) -> Any:
        waiting = _waiting.get(self) if _waiting_count[0] else None
        if not waiting:
            return django_run(self)
        return _watched_run(self, waiting, django_run)

    run_and_clear_commit_hooks.__wrapped__ = django_run  # type: ignore[attr-defined]
    return run_and_clear_commit_hooks


def _watched_run(connection: Any, waiting: list[_Registration], django_run: Any) -> Any:
    running: list[_Registration] = []
    try:
        by_func: dict[int, list[_Registration]] = {}
        for found in waiting:
            by_func.setdefault(id(found.func), []).append(found)
        hooks = []
        for entry in connection.run_on_commit:
            matches = by_func.get(id(entry[1]))
            if not matches:
                hooks.append(entry)
            else:
                found = matches.pop(0)
                running.append(found)
                hooks.append((entry[0], _TimedCallback(entry[1], found), *entry[2:]))
        connection.run_on_commit = hooks
        # Out of Django's list now: a block a callback opens must not find them "dropped".
        for found in running:
            waiting.remove(found)
        if not waiting:
            _waiting.pop(connection, None)
        _count_waiting()
    except Exception:  # noqa: BLE001
        report_internal_error("on_commit hooks")
    try:
        return django_run(connection)
    finally:
        # A callback that raised (not robust) stops Django's loop: the rest never run.
        try:
            now = perf_counter_ns()
            for found in running:
                if found.fate == PENDING:
                    found.settle(DISCARDED, now)
        except Exception:  # noqa: BLE001
            report_internal_error("on_commit hooks")


# ------------------------------------------------------------------ TestCase


def _make_capture(django_capture: Any) -> Any:
    capture = django_capture.__func__

    @contextmanager
    def captureOnCommitCallbacks(cls: Any, *, using: str = _DEFAULT_ALIAS, execute: bool = False) -> Any:
        since = perf_counter_ns()
        callbacks: list[Any] = []
        try:
            # Django runs the callbacks (execute=True) as its block ends, error or not.
            with capture(cls, using=using, execute=execute) as callbacks:
                yield callbacks
        finally:
            if execute and _waiting_count[0]:
                _settle_captured(using, callbacks, since)

    captureOnCommitCallbacks.__wrapped__ = capture  # type: ignore[attr-defined]
    return classmethod(captureOnCommitCallbacks)


def _settle_captured(using: str, callbacks: list[Any], since: int) -> None:
    """Mark ran the watched callbacks ``captureOnCommitCallbacks(execute=True)`` ran: those
    registered since it started, as many times as it ran each."""
    try:
        from django.db import connections

        waiting = _waiting.get(connections[using])
        if not waiting:
            return
        ran: dict[int, int] = {}
        for callback in callbacks:
            ran[id(callback)] = ran.get(id(callback), 0) + 1
        settled = []
        for found in waiting:
            key = id(found.func)
            if found.registered_ns >= since and ran.get(key, 0) > 0:
                ran[key] -= 1
                settled.append(found)
        now = perf_counter_ns()
        for found in settled:
            _forget(found)
            found.settle(RAN, now)
    except Exception:  # noqa: BLE001
        report_internal_error("captureOnCommitCallbacks")


# ------------------------------------------------------------------ install


def install_transaction_watch() -> None:
    """Wrap Django's atomic blocks and ``on_commit`` (idempotent). Called by ``install()``."""
    global _get_connection
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.transaction import Atomic, get_connection

    _get_connection = get_connection
    patches.wrap(GROUP, Atomic, "__enter__", _make_enter)
    patches.wrap(GROUP, Atomic, "__exit__", _make_exit)
    patches.wrap(GROUP, BaseDatabaseWrapper, "on_commit", _make_on_commit)
    patches.wrap(GROUP, BaseDatabaseWrapper, "run_and_clear_commit_hooks", _make_run_hooks)
    watch_test_case()
    adopt_open_blocks()


def adopt_open_blocks() -> None:
    """Push the application's blocks Django has open in this thread on an alias the stack
    knows no block of: blocks opened before :func:`install_transaction_watch` (a
    ``record()`` inside ``atomic()``, the first to install the hooks).

    Their exits are Django's own (``with`` took ``__exit__`` as they opened): what ran in
    them says "in an atomic block" at its depth, and stays ``open``.
    """
    if not patches.is_wrapped(GROUP):
        return
    try:
        from django.conf import settings
        from django.db import connections

        if not settings.configured:  # no connection yet; reading them would configure Django
            return

        for connection in connections.all(initialized_only=True):
            atomics = [
                atomic
                for atomic in getattr(connection, "atomic_blocks", ())
                if not getattr(atomic, "_from_testcase", False)
            ]
            if not atomics:
                continue
            known = open_blocks()
            alias = connection.alias
            if known and innermost(known, alias) is not None:
                continue
            blocks = own_blocks()
            for atomic in atomics:
                adopt(blocks, alias, atomic, connection)
    except Exception:  # noqa: BLE001
        report_internal_error("atomic block")


def watch_test_case() -> None:
    """Wrap ``TestCase.captureOnCommitCallbacks`` once ``django.test`` is loaded (idempotent)."""
    testcases = sys.modules.get("django.test.testcases")
    if testcases is not None and patches.is_wrapped(GROUP):
        patches.wrap(GROUP, testcases.TestCase, "captureOnCommitCallbacks", _make_capture)


def uninstall_transaction_watch() -> None:
    """Put Django's methods back (idempotent). Blocks already open stay on their stacks."""
    patches.restore(GROUP)
    _waiting.clear()
    _count_waiting()
