"""Signal snapshots through real runs: pytest in subprocesses (pytester), xdist, and ``manage.py test``.

The project under test is the ``shop`` project of tests/test_pytest_plugin.py (Order ->
Receipt receivers). Its test module changes its behaviour through environment
variables, so one file serves every run: ``SNAPSHOT_SHIFT`` creates rows first (other
primary keys, the same snapshot), ``SNAPSHOT_AUDIT`` connects one more receiver (other
signals, a failing snapshot).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.dispatch import Signal

from signaltrace import record
from signaltrace.testing.snapshot import SignalSnapshot, SignalSnapshotError
from signaltrace.testing.snapshot_format import Fingerprinter, snapshot_lines
from tests.test_pytest_plugin import APPS, MODELS, RECEIVERS, SIGNALS, project, run

__all__ = ["project"]  # the fixture, imported for the runs below

SNAPSHOT_PLUGIN = ("-p", "signaltrace.testing.snapshot_plugin")

ORDER_TESTS = """
import os

import pytest
from django.db.models.signals import post_save

from shop.models import Order

pytestmark = pytest.mark.django_db


def audit(sender, instance, **kwargs):
    pass


if os.environ.get("SNAPSHOT_AUDIT"):
    post_save.connect(audit, sender=Order, dispatch_uid="audit")


def test_new_order(signal_snapshot):
    for _ in range(int(os.environ.get("SNAPSHOT_SHIFT", "0"))):
        Order.objects.create(number=0)
    with signal_snapshot():
        Order.objects.create(number=1)


def test_two_blocks(signal_snapshot):
    with signal_snapshot(kwargs=False):
        order = Order.objects.create(number=2)
    with signal_snapshot("delete", kwargs=False):
        order.delete()
"""

NEW_ORDER = [
    "pre_save(sender=shop.Order) send depth=0 instance=<shop.Order unsaved> raw=False "
    "update_fields=None using='default'",
    "post_save(sender=shop.Order) send depth=0 created=True instance=<shop.Order #N1> raw=False "
    "update_fields=None using='default'",
    "  -> shop.receivers.create_receipt",
    "    pre_save(sender=shop.Receipt) send depth=1 instance=<shop.Receipt unsaved> raw=False "
    "update_fields=None using='default'",
    "    post_save(sender=shop.Receipt) send depth=1 created=True instance=<shop.Receipt #N1> raw=False "
    "update_fields=None using='default'",
    "      -> shop.receivers.touch_order",
]


def run_snapshots(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run(pytester, *SNAPSHOT_PLUGIN, *args)


def stored(pytester: pytest.Pytester) -> dict[str, list[str]]:
    data = json.loads((pytester.path / "__signal_snapshots__" / "test_orders.json").read_text())
    assert data["version"] == 1
    return data["snapshots"]


@pytest.fixture
def orders(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The shop project with the snapshot tests, run outside CI unless a test sets ``CI``."""
    for name in ("CI", "SNAPSHOT_SHIFT", "SNAPSHOT_AUDIT", "SIGNALTRACE_SNAPSHOT_UPDATE"):
        monkeypatch.delenv(name, raising=False)
    project.makepyfile(test_orders=ORDER_TESTS)
    return project


# ------------------------------------------------------------------ pytest runs


def test_first_run_writes_the_file_later_runs_match_with_other_primary_keys(
    orders: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_snapshots(orders)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*- signaltrace snapshots -*",
            "wrote signal snapshot __signal_snapshots__/test_orders.json::test_new_order",
            "wrote signal snapshot __signal_snapshots__/test_orders.json::test_two_blocks",
            "wrote signal snapshot __signal_snapshots__/test_orders.json::test_two_blocks.delete",
            "Review and commit the snapshot files.",
        ]
    )
    snapshots = stored(orders)
    assert sorted(snapshots) == ["test_new_order", "test_two_blocks", "test_two_blocks.delete"]
    assert snapshots["test_new_order"] == NEW_ORDER
    assert snapshots["test_two_blocks"][0] == "pre_save(sender=shop.Order) send depth=0"
    assert "  -> shop.receivers.create_receipt" in snapshots["test_two_blocks"]
    assert snapshots["test_two_blocks.delete"] == [  # receipts go on the fast path: no receivers
        "pre_delete(sender=shop.Order) send depth=0",
        "post_delete(sender=shop.Order) send depth=0",
    ]
    text = (orders.path / "__signal_snapshots__" / "test_orders.json").read_text()
    assert "_ns" not in text and "0x" not in text  # no durations, no addresses

    monkeypatch.setenv("SNAPSHOT_SHIFT", "3")  # three orders first: other pks, same snapshot
    again = run_snapshots(orders)
    again.assert_outcomes(passed=2)
    assert "signaltrace snapshots" not in again.stdout.str()
    assert (orders.path / "__signal_snapshots__" / "test_orders.json").read_text() == text


def test_changed_signals_fail_with_a_diff_and_leave_the_file(
    orders: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_snapshots(orders).assert_outcomes(passed=2)
    before = (orders.path / "__signal_snapshots__" / "test_orders.json").read_text()
    monkeypatch.setenv("SNAPSHOT_AUDIT", "1")
    result = run_snapshots(orders)
    result.assert_outcomes(passed=0, failed=2)
    result.stdout.fnmatch_lines(
        [
            "E*SignalSnapshotError: the signals differ from the snapshot "
            "__signal_snapshots__/test_orders.json::test_new_order:",
            "E*--- snapshot",
            "E*+++ this run",
            "E*@@ -4,3 +4,4 @@",
            "E*    pre_save(sender=shop.Receipt) *",
            "E*    post_save(sender=shop.Receipt) *",
            "E*      -> shop.receivers.touch_order",
            "E*+  -> test_orders.audit",
            "E*run pytest with --signaltrace-snapshot-update*",
        ]
    )
    assert "test_two_blocks.delete" not in result.stdout.str()  # the first block failed already
    assert (orders.path / "__signal_snapshots__" / "test_orders.json").read_text() == before


def test_update_option_rewrites_the_records_that_differ(
    orders: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_snapshots(orders).assert_outcomes(passed=2)
    monkeypatch.setenv("SNAPSHOT_AUDIT", "1")
    result = run_snapshots(orders, "--signaltrace-snapshot-update")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "updated signal snapshot __signal_snapshots__/test_orders.json::test_new_order",
            "updated signal snapshot __signal_snapshots__/test_orders.json::test_two_blocks",
        ]
    )
    assert "test_two_blocks.delete" not in result.stdout.str()  # unchanged: not rewritten
    assert stored(orders)["test_new_order"] == [*NEW_ORDER, "  -> test_orders.audit"]
    run_snapshots(orders).assert_outcomes(passed=2)


def test_missing_snapshot_fails_in_ci_and_is_not_written(
    orders: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = run_snapshots(orders)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "E*SignalSnapshotError: no signal snapshot __signal_snapshots__/test_orders.json::test_new_order "
            "(CI is set, so it is not written)*",
        ]
    )
    assert "pre_save(sender=shop.Order) send depth=0" in result.stdout.str()  # what it would have written
    assert not (orders.path / "__signal_snapshots__").exists()

    run_snapshots(orders, "--signaltrace-snapshot-update").assert_outcomes(passed=2)  # explicit: written
    assert stored(orders)["test_new_order"] == NEW_ORDER
    run_snapshots(orders).assert_outcomes(passed=2)


XDIST_TESTS = """
import pytest

from shop.models import Order

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("count", range(24))
def test_orders(signal_snapshot, count):
    with signal_snapshot(kwargs=False):
        for number in range(count % 3 + 1):
            Order.objects.create(number=number)
"""


def test_xdist_workers_write_one_file_without_losing_records(orders: pytest.Pytester) -> None:
    orders.makepyfile(test_orders=XDIST_TESTS)
    result = run_snapshots(orders, "-n", "2")
    result.assert_outcomes(passed=24)
    result.stdout.fnmatch_lines(["created: 2/2 workers", "*- signaltrace snapshots -*"])
    assert result.stdout.str().count("wrote signal snapshot") == 24
    snapshots = stored(orders)
    assert sorted(snapshots) == sorted(f"test_orders[{count}]" for count in range(24))
    for count in range(24):
        dispatches = [line for line in snapshots[f"test_orders[{count}]"] if line.startswith("post_save(")]
        assert len(dispatches) == count % 3 + 1
    assert not list((orders.path / "__signal_snapshots__").glob(".*.tmp"))

    again = run_snapshots(orders, "-n", "2")
    again.assert_outcomes(passed=24)
    assert "signaltrace snapshots" not in again.stdout.str()


# ------------------------------------------------------------------ manage.py test with the mixin

MANAGE = """
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj_settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

RUNNER_SETTINGS = """
SECRET_KEY = "snapshot-tests"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "signaltrace", "shop"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING_CONFIG = None
"""

MIXIN_TESTS = """
import os

from django.db.models.signals import post_save
from django.test import TestCase

from shop.models import Order
from signaltrace.testing.snapshot import SignalSnapshotMixin


def audit(sender, instance, **kwargs):
    pass


if os.environ.get("SNAPSHOT_AUDIT"):
    post_save.connect(audit, sender=Order, dispatch_uid="audit")


class OrderTests(SignalSnapshotMixin, TestCase):
    def test_new_order(self):
        for _ in range(int(os.environ.get("SNAPSHOT_SHIFT", "0"))):
            Order.objects.create(number=0)
        with self.assertSignalSnapshot() as trace:
            Order.objects.create(number=1)
        self.assertEqual(len(trace.dispatches), 4)
"""


def manage_test(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CI", "DJANGO_SETTINGS_MODULE", "SNAPSHOT_AUDIT", "SNAPSHOT_SHIFT")
    }
    environment.update(env)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), environment.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "manage.py", "test", "-v", "1", "shop"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def django_project(tmp_path: Path) -> Path:
    (tmp_path / "manage.py").write_text(textwrap.dedent(MANAGE))
    (tmp_path / "proj_settings.py").write_text(textwrap.dedent(RUNNER_SETTINGS))
    shop = tmp_path / "shop"
    shop.mkdir()
    sources = {"__init__": "", "models": MODELS, "signals": SIGNALS, "receivers": RECEIVERS, "apps": APPS}
    sources["tests"] = MIXIN_TESTS
    for name, source in sources.items():
        (shop / f"{name}.py").write_text(textwrap.dedent(source))
    return tmp_path


def test_mixin_under_djangos_runner_writes_matches_and_fails_with_a_diff(django_project: Path) -> None:
    snapshot_file = django_project / "shop" / "__signal_snapshots__" / "tests.json"

    first = manage_test(django_project)
    assert first.returncode == 0, first.stderr
    assert "signaltrace: wrote signal snapshot" in first.stderr
    assert "OrderTests.test_new_order" in first.stderr
    records = json.loads(snapshot_file.read_text())["snapshots"]
    assert records["OrderTests.test_new_order"] == NEW_ORDER

    second = manage_test(django_project, SNAPSHOT_SHIFT="2")
    assert second.returncode == 0, second.stderr
    assert "signaltrace:" not in second.stderr

    changed = manage_test(django_project, SNAPSHOT_AUDIT="1")
    assert changed.returncode == 1, changed.stderr
    assert "SignalSnapshotError: the signals differ from the snapshot" in changed.stderr
    assert "+  -> shop.tests.audit" in changed.stderr

    in_ci = manage_test(django_project, SNAPSHOT_AUDIT="1", CI="1")
    assert in_ci.returncode == 1, in_ci.stderr  # still differs; CI does not write either

    updated = manage_test(django_project, SNAPSHOT_AUDIT="1", SIGNALTRACE_SNAPSHOT_UPDATE="1")
    assert updated.returncode == 0, updated.stderr
    assert "signaltrace: updated signal snapshot" in updated.stderr
    assert json.loads(snapshot_file.read_text())["snapshots"]["OrderTests.test_new_order"][-1] == (
        "  -> shop.tests.audit"
    )

    snapshot_file.unlink()
    missing = manage_test(django_project, CI="true")
    assert missing.returncode == 1, missing.stderr
    assert "no signal snapshot" in missing.stderr
    assert not snapshot_file.exists()


# ------------------------------------------------------------------ the format, in this process


def test_fingerprinter_numbers_instances_by_first_appearance_per_model() -> None:
    fingerprint = Fingerprinter()
    assert fingerprint("<auth.User pk=42>") == "<auth.User #N1>"
    assert fingerprint("[<auth.User pk=7>, <auth.User pk=42>]") == "[<auth.User #N2>, <auth.User #N1>]"
    assert fingerprint("<shop.Order pk=42>") == "<shop.Order #N1>"
    assert fingerprint("<auth.User pk=None>") == "<auth.User unsaved>"
    assert fingerprint("Signal at 0x7f3947a0fc20") == "Signal"
    assert fingerprint("<object 0x7f3947a0fc20>") == "<object 0x?>"
    assert fingerprint("frozenset({'name', 'bio', 'age'})") == "frozenset({'age', 'bio', 'name'})"
    assert fingerprint("{'b': 1, 'a': 2}") == "{'b': 1, 'a': 2}"  # a dict keeps its order
    uuid = "12345678-1234-5678-1234-567812345678"
    assert fingerprint(f"UUID('{uuid}') {uuid.upper()}") == "UUID('<uuid #N1>') <uuid #N1>"
    assert fingerprint("datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)") == "<datetime>"
    assert fingerprint("'2024-05-01T12:00:00.123+00:00'") == "'<timestamp>'"


@pytest.mark.django_db
def test_lines_nest_receivers_and_their_dispatches_and_filter_signals() -> None:
    ping = Signal()

    def on_ping(sender, **kwargs):
        User.objects.create(username="nested")

    def fails(sender, **kwargs):
        raise ValueError("no")

    ping.connect(on_ping, weak=False)
    ping.connect(fails, weak=False)
    try:
        with record() as trace:
            ping.send_robust(sender="tests", user=User(pk=None))
    finally:
        ping.disconnect(on_ping)
        ping.disconnect(fails)
    lines = snapshot_lines(trace, exclude=["pre_save"])
    on_ping_name = f"{__name__}.{on_ping.__qualname__}"
    assert lines[0].endswith(" send_robust depth=0 user=<auth.User unsaved>")
    assert lines[1:] == [
        f"  -> {on_ping_name}",
        "    post_save(sender=auth.User) send depth=1 created=True instance=<auth.User #N1> raw=False "
        "update_fields=None using='default'",
        f"  -> {__name__}.{fails.__qualname__} raised builtins.ValueError (swallowed by send_robust)",
    ]
    assert snapshot_lines(trace, only=["post_save"], kwargs=False) == []  # only roots' subtrees


def test_signal_snapshot_reports_a_file_that_is_not_a_snapshot(tmp_path: Path) -> None:
    test_file = tmp_path / "test_x.py"
    (tmp_path / "__signal_snapshots__").mkdir()
    (tmp_path / "__signal_snapshots__" / "test_x.json").write_text("[1, 2]")
    snapshots = SignalSnapshot(test_file, "test_a", update=False)
    with pytest.raises(SignalSnapshotError, match="is not a signal snapshot file"):
        snapshots.check("test_a", [])
