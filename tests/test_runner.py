"""The Django test runner, through real ``manage.py test`` runs of a small project in subprocesses.

Each run is a fresh interpreter with the project's own settings (``TEST_RUNNER`` set
to :class:`signaltrace.testing.runner.SignalTraceRunner`), as in a user's project.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.test_pytest_plugin import APPS, MODELS, RECEIVERS, SIGNALS

SETTINGS = """
SECRET_KEY = "runner-tests"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "signaltrace", "shop"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
SIGNALTRACE = {"ENABLED": True}
LOGGING_CONFIG = None
TEST_RUNNER = "signaltrace.testing.runner.SignalTraceRunner"
"""

MANAGE = """
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj_settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

TESTS = """
from asgiref.sync import sync_to_async
from django.db.models.signals import post_init
from django.test import TestCase

from shop.models import Order
from shop.signals import order_paid


def count_instance(sender, instance, **kwargs):
    pass


post_init.connect(count_instance, sender=Order, weak=False)  # hidden by IGNORE_SIGNALS


class OrderTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.first = Order.objects.create(number=1)

    def setUp(self):
        self.second = Order.objects.create(number=2)

    def tearDown(self):
        order_paid.send(sender=Order, order=self.second)

    @classmethod
    def tearDownClass(cls):
        order_paid.send(sender=Order, order=Order(number=9))
        super().tearDownClass()

    def test_create(self):
        Order.objects.create(number=3)

    def test_quiet(self):
        pass


class ErrorTests(TestCase):
    def test_error_swallowed(self):
        order_paid.send_robust(sender=Order, order=Order(number=-1))

    async def test_async(self):
        order = Order(number=5)
        if hasattr(order_paid, "asend"):
            await order_paid.asend(sender=Order, order=order)
        else:  # Django 4.2
            await sync_to_async(order_paid.send)(sender=Order, order=order)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The plugin tests' ``shop`` app, with a manage.py, the runner and Django test cases."""
    (tmp_path / "manage.py").write_text(textwrap.dedent(MANAGE))
    (tmp_path / "proj_settings.py").write_text(textwrap.dedent(SETTINGS))
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "__init__.py").write_text("")
    sources = {"models": MODELS, "signals": SIGNALS, "receivers": RECEIVERS, "apps": APPS, "tests": TESTS}
    for name, source in sources.items():
        (shop / f"{name}.py").write_text(textwrap.dedent(source))
    return tmp_path


def manage_test(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    environment["PYTHONPATH"] = os.pathsep.join([str(project), str(Path(__file__).resolve().parent.parent)])
    return subprocess.run(
        [sys.executable, "manage.py", "test", "shop", *args],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def phases(test: dict[str, Any]) -> dict[str, int]:
    """A summary entry's dispatches by phase (phases without any are left out)."""
    return dict(test["phases"])


def test_report_records_every_part_of_every_test(project: Path) -> None:
    result = manage_test(project, "--signaltrace-report=artifacts/signals.json")
    assert result.returncode == 0, result.stderr
    assert "Ran 4 tests" in result.stderr and "OK" in result.stderr
    path = project / "artifacts" / "signals.json"
    lines = [line for line in result.stdout.splitlines() if line.startswith(("signaltrace:", "  "))]
    assert lines[0].startswith("signaltrace: 4 tests, ") and "0 loops, 1 receiver errors" in lines[0]
    assert (
        lines[-1] == f"  report (summary detail, {path.stat().st_size / 1024:.0f} KB): artifacts/signals.json"
    )
    assert len(lines) <= 10

    report = json.loads(path.read_text())
    assert report["version"] == 2 and report["detail"] == "summary"
    tests = {test["nodeid"]: test for test in report["tests"]}
    assert list(tests) == [
        "shop.tests.ErrorTests.test_async",
        "shop.tests.ErrorTests.test_error_swallowed",
        "shop.tests.OrderTests.test_create",
        "shop.tests.OrderTests.test_quiet",
    ]
    # Each Order created sends pre_save and post_save for it and for its Receipt.
    create = tests["shop.tests.OrderTests.test_create"]
    assert phases(create) == {"class_setup": 4, "setup": 4, "call": 4, "teardown": 1}
    assert phases(tests["shop.tests.OrderTests.test_quiet"]) == {
        "setup": 4,
        "teardown": 1,
        "class_teardown": 1,
    }
    assert create["outcome"] == "passed" and "worker" not in create
    assert create["ignored_dispatches"] == 3 * 2 * 2  # pre_init and post_init per instance
    swallowed = tests["shop.tests.ErrorTests.test_error_swallowed"]
    assert [(e["phase"], e["receiver"], e["swallowed"]) for e in swallowed["receiver_errors"]] == [
        ("call", "shop.receivers.notify_accounting", True)
    ]
    assert phases(tests["shop.tests.ErrorTests.test_async"]) == {"call": 1}
    assert report["totals"]["receiver_errors"] == 1 and report["totals"]["tests"] == 4

    summary = report["summary"]
    top = {entry["signal"]: entry for entry in summary["top_signals"]["items"]}
    assert top["shop.signals.order_paid"]["dispatches"] == 5  # two teardowns, the class's, two ErrorTests
    by_total = {(e["signal"], e["receiver"]) for e in summary["receivers_by_total"]["items"]}
    assert ("post_save", "shop.receivers.create_receipt") in by_total
    no_receivers = {(e["signal"], e["sender"]): e["dispatches"] for e in summary["no_receivers"]["items"]}
    assert no_receivers["pre_save", "shop.Order"] == 4
    assert summary["busiest_tests"]["items"][0]["nodeid"] == "shop.tests.OrderTests.test_create"
    ignored = {entry["signal"]: entry for entry in summary["ignored"]["items"]}
    (hidden,) = ignored["post_init"]["receivers"]
    assert hidden["receiver"] == "shop.tests.count_instance" and hidden["calls"] > 0


def test_full_detail(project: Path) -> None:
    result = manage_test(project, "--signaltrace-report=full.json", "--signaltrace-report-detail=full")
    assert result.returncode == 0, result.stderr
    report = json.loads((project / "full.json").read_text())
    assert report["detail"] == "full"
    (create,) = [test for test in report["tests"] if test["nodeid"].endswith("test_create")]
    class_setup = create["phases"]["class_setup"]
    assert [(e["signal"], e["sender"], e["count"]) for e in class_setup["signals"]] == [
        ("post_save", "shop.Order", 1),
        ("post_save", "shop.Receipt", 1),
        ("pre_save", "shop.Order", 1),
        ("pre_save", "shop.Receipt", 1),
    ]
    assert {e["receiver"] for e in class_setup["receivers"]} == {
        "shop.receivers.create_receipt",
        "shop.receivers.touch_order",
    }


def test_signaltrace_switch_fails_swallowed_errors(project: Path) -> None:
    result = manage_test(project, "--signaltrace", "--parallel=2")
    assert result.returncode == 1
    assert "signaltrace: recording needs one process; running with --parallel=1" in result.stdout
    assert "FAIL: test_error_swallowed (shop.tests.ErrorTests" in result.stderr
    assert "signaltrace.testing.assertions.SignalAssertionError: signaltrace:" in result.stderr
    assert "FAILED (failures=1)" in result.stderr
    assert not list(project.glob("*.json"))


def test_without_options_the_runner_is_djangos(project: Path) -> None:
    result = manage_test(project)
    assert result.returncode == 0, result.stderr
    assert "signaltrace" not in result.stdout
    help_text = subprocess.run(
        [sys.executable, "manage.py", "test", "--help"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project), "DJANGO_SETTINGS_MODULE": "proj_settings"},
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    for option in ("--signaltrace ", "--signaltrace-report PATH", "--signaltrace-report-detail"):
        assert option in help_text
