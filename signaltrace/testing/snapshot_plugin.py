"""pytest side of signal snapshots: the ``signal_snapshot`` fixture and ``--signaltrace-snapshot-update``.

Loaded with the main plugin (:mod:`signaltrace.testing.plugin`). Snapshots written or
updated during the run are listed at its end: each test's notes ride on its call
report, which pytest-xdist sends to the controller, so the list is complete there too.
Writes themselves are safe across xdist workers (:mod:`signaltrace.testing.snapshot_store`).
"""

from __future__ import annotations

from typing import Any

import pytest  # noqa: TID251 - a pytest plugin module

from signaltrace.testing.snapshot import SignalSnapshot, set_update_mode

__all__ = ["SignalSnapshot", "signal_snapshot"]

_NOTES = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("signaltrace", "signaltrace: Django signal recording")
    group.addoption(
        "--signaltrace-snapshot-update",
        action="store_true",
        dest="signaltrace_snapshot_update",
        default=False,
        help="Rewrite signal snapshots that differ, and write missing ones even in CI.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("signaltrace_snapshot_update"):
        set_update_mode(True)  # also for SignalSnapshotMixin test cases run by pytest
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(_SnapshotNotes(), "signaltrace-snapshot-notes")


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.getoption("signaltrace_snapshot_update"):
        set_update_mode(False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    notes = item.stash.get(_NOTES, None)
    if notes and call.when == "teardown":
        report.signaltrace_snapshot_notes = list(notes)
        notes.clear()
    return report


class _SnapshotNotes:
    """Collects the notes of written snapshots (local or from xdist workers) and prints them at the end."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        notes = getattr(report, "signaltrace_snapshot_notes", None)
        if isinstance(notes, list):
            self.notes.extend(str(note) for note in notes)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.notes:
            return
        terminalreporter.write_sep("-", "signaltrace snapshots")
        for note in sorted(self.notes):
            terminalreporter.write_line(note)
        terminalreporter.write_line("Review and commit the snapshot files.")


@pytest.fixture
def signal_snapshot(request: pytest.FixtureRequest) -> SignalSnapshot:
    """Record a block's signals and compare them with the test's snapshot.

    Usage::

        def test_signup(client, signal_snapshot):
            with signal_snapshot(exclude=["template_rendered"]):
                client.post("/signup/", {...})
    """
    item = request.node
    notes = item.stash.setdefault(_NOTES, [])
    test_name = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else item.name
    return SignalSnapshot(item.path, test_name, on_note=notes.append)
