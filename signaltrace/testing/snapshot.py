"""Signal snapshots: the signals a block sent, kept in a reviewed file and compared on every run.

Usage with pytest (the ``signal_snapshot`` fixture is a :class:`SignalSnapshot`)::

    def test_signup(client, signal_snapshot):
        with signal_snapshot():
            client.post("/signup/", {...})

and with ``unittest`` or Django's test cases::

    class SignupTests(SignalSnapshotMixin, TestCase):
        def test_signup(self):
            with self.assertSignalSnapshot():
                self.client.post("/signup/", {...})

The first run writes the record (signal, sender, method, depth, kwargs and the
receivers in order; see :mod:`signaltrace.testing.snapshot_format`) to
``__signal_snapshots__/<test module>.json`` beside the test module
(:mod:`signaltrace.testing.snapshot_store`) and passes with a note; review and
commit that file. Later runs fail with a diff when the signals change. Accept a
change with ``pytest --signaltrace-snapshot-update``, or the environment variable
``SIGNALTRACE_SNAPSHOT_UPDATE=1`` (any test runner). In CI (environment variable
``CI`` set and not empty) a missing record fails the test instead of being written:
a snapshot nobody reviewed checks nothing.

A test's records are named after it (``test_signup``, ``TestLogin::test_login[ada]``,
``SignupTests.test_signup``); a second snapshot in the same test is ``<name>.2``, or
``<name>.<label>`` when the block is given a ``name``.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from signaltrace.core import record
from signaltrace.testing.snapshot_format import render_lines, snapshot_lines
from signaltrace.testing.snapshot_store import (
    SnapshotFileError,
    display_path,
    read_snapshots,
    snapshot_path,
    write_snapshot,
)

if TYPE_CHECKING:
    from signaltrace.core import Trace

__all__ = [
    "SignalSnapshot",
    "SignalSnapshotError",
    "SignalSnapshotMixin",
    "in_ci",
    "set_update_mode",
    "update_requested",
]

#: The environment variable that turns update mode on for any test runner.
UPDATE_VARIABLE = "SIGNALTRACE_SNAPSHOT_UPDATE"
UPDATE_HINT = f"run pytest with --signaltrace-snapshot-update (or set {UPDATE_VARIABLE}=1) to accept them"

_update_mode = False


class SignalSnapshotError(AssertionError):
    """A block's signals differ from its snapshot, or a snapshot is missing in CI."""


def set_update_mode(enabled: bool) -> None:
    """Turn update mode on or off for this process (the pytest option does, for its run)."""
    global _update_mode
    _update_mode = enabled


def update_requested() -> bool:
    """Whether snapshots that differ are rewritten instead of failing."""
    return _update_mode or bool(os.environ.get(UPDATE_VARIABLE))


def in_ci() -> bool:
    """Whether this runs in CI, by the convention CI services share: ``CI`` set, not empty."""
    return bool(os.environ.get("CI"))


class SignalSnapshot:
    """Snapshots of one test: call it for a context manager that records and checks a block.

    ``test_file`` is the test module's file, ``test_name`` the test's name in it. Each
    written or updated record is reported through ``on_note`` (a message).
    """

    def __init__(
        self,
        test_file: str | os.PathLike[str],
        test_name: str,
        *,
        update: bool | None = None,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        self.path = snapshot_path(test_file)
        self.test_name = test_name
        self.update = update
        self.on_note = on_note
        self._count = 0

    def __repr__(self) -> str:
        return f"SignalSnapshot({display_path(self.path)!r}, {self.test_name!r})"

    def __call__(
        self,
        name: str | None = None,
        *,
        kwargs: bool = True,
        exclude: Collection[str] = (),
        only: Collection[str] | None = None,
    ) -> AbstractContextManager[Trace]:
        """Record the block and compare its signals with the record ``name`` (default: the test's).

        ``kwargs=False`` leaves kwargs out; ``exclude`` / ``only`` name signals to leave
        out / to keep (``exclude=["template_rendered"]`` for a view test). A block that
        raises is not compared. The context manager yields the block's Trace.
        """
        self._count += 1
        if name is not None:
            record_name = f"{self.test_name}.{name}"
        elif self._count == 1:
            record_name = self.test_name
        else:
            record_name = f"{self.test_name}.{self._count}"
        return _SnapshotBlock(self, record_name, {"kwargs": kwargs, "exclude": exclude, "only": only})

    def check(self, record_name: str, lines: list[str]) -> None:
        """Compare ``lines`` with the stored record: pass, write it, or raise :class:`SignalSnapshotError`."""
        __tracebackhide__ = True
        where = f"{display_path(self.path)}::{record_name}"
        try:
            stored = read_snapshots(self.path).get(record_name)
        except SnapshotFileError as error:
            raise SignalSnapshotError(str(error)) from None
        if stored == lines:
            return
        update = update_requested() if self.update is None else self.update
        if stored is None and not update and in_ci():
            raise SignalSnapshotError(
                f"no signal snapshot {where} (CI is set, so it is not written); "
                f"run the test locally or with --signaltrace-snapshot-update, then review and commit "
                f"{display_path(self.path)}. The block sent:\n{render_lines(lines)}"
            )
        if stored is not None and not update:
            raise SignalSnapshotError(
                f"the signals differ from the snapshot {where}:\n{_diff(stored, lines)}\n{UPDATE_HINT}"
            )
        try:
            write_snapshot(self.path, record_name, lines)
        except (OSError, SnapshotFileError) as error:
            raise SignalSnapshotError(f"cannot write the signal snapshot {where}: {error}") from None
        self._note(f"{'updated' if stored is not None else 'wrote'} signal snapshot {where}")

    def _note(self, message: str) -> None:
        if self.on_note is not None:
            self.on_note(message)


class _SnapshotBlock:
    """The context manager of one snapshot: records the block, then checks it if it did not raise.

    A class rather than a generator, so that pytest hides its frame
    (``__tracebackhide__``) and a failure points at the test's ``with`` statement.
    """

    def __init__(self, snapshots: SignalSnapshot, record_name: str, options: dict[str, Any]) -> None:
        self.snapshots = snapshots
        self.record_name = record_name
        self.options = options
        self._recording: AbstractContextManager[Trace] | None = None
        self._trace: Trace | None = None

    def __enter__(self) -> Trace:
        self._recording = record()
        self._trace = self._recording.__enter__()
        return self._trace

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        __tracebackhide__ = True
        assert self._recording is not None and self._trace is not None
        self._recording.__exit__(kind, error, tb)
        if kind is None:
            self.snapshots.check(self.record_name, snapshot_lines(self._trace, **self.options))


def _diff(stored: list[str], current: list[str]) -> str:
    """A unified diff of the two signal sequences, from the stored one to this run's."""
    lines = difflib.unified_diff(stored, current, "snapshot", "this run", lineterm="", n=3)
    return "\n".join(lines)


def _print_note(message: str) -> None:
    print(f"signaltrace: {message}", file=sys.stderr)


class SignalSnapshotMixin:
    """``self.assertSignalSnapshot()`` for ``unittest.TestCase`` and Django's test cases.

    Records are named ``Class.test_method`` in ``__signal_snapshots__/<module>.json``
    beside the test module; written records are reported on standard error. Update
    mode: ``SIGNALTRACE_SNAPSHOT_UPDATE=1``.
    """

    def assertSignalSnapshot(
        self,
        name: str | None = None,
        *,
        kwargs: bool = True,
        exclude: Collection[str] = (),
        only: Collection[str] | None = None,
    ) -> AbstractContextManager[Trace]:
        """Record the block and compare its signals with its snapshot (as :meth:`SignalSnapshot.__call__`)."""
        snapshots = self.__dict__.get("_signaltrace_snapshots")
        if snapshots is None:
            test_file = sys.modules[type(self).__module__].__file__ or ""
            method = getattr(self, "_testMethodName", "test")
            snapshots = SignalSnapshot(
                Path(test_file), f"{type(self).__qualname__}.{method}", on_note=_print_note
            )
            self.__dict__["_signaltrace_snapshots"] = snapshots
        return snapshots(name, kwargs=kwargs, exclude=exclude, only=only)
