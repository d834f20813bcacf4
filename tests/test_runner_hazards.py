"""``manage.py test --signaltrace-hazards`` (SignalTraceRunner), through real runs of a small project.

The project is tests/test_runner.py's (the plugin tests' ``shop`` app, the runner in
``TEST_RUNNER``) with mail configured and test cases whose receivers or code cause
hazards: the runner's counterpart of the pytest plugin's ``--signaltrace-hazards``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.test_pytest_plugin import APPS, MAIL_SETTINGS, MODELS, RECEIVERS, SIGNALS
from tests.test_runner import MANAGE, SETTINGS

TESTS = """
from django.core.mail import send_mail
from django.db import transaction
from django.db.models.signals import post_save
from django.test import TestCase

from shop.models import Order, Receipt


def mail_receipt(sender, instance, created, **kwargs):
    send_mail("Your receipt", "Thanks", None, ["ada@example.com"])


post_save.connect(mail_receipt, sender=Receipt)


class HazardTests(TestCase):
    def test_clean(self):
        Order.objects.create(number=1)  # the mail goes out in autocommit: no hazard

    def test_mail_in_transaction(self):
        with transaction.atomic():
            Order.objects.create(number=2)

    def test_bulk_create(self):
        Order.objects.bulk_create([Order(number=3)])  # hazard: bulk
"""


def line_of(marker: str) -> int:
    """The line of shop/tests.py that starts or ends with ``marker``."""
    lines = TESTS.splitlines()  # lines[0] is the file's empty first line
    return 1 + lines.index(next(line for line in lines if line.startswith(marker) or line.endswith(marker)))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "manage.py").write_text(textwrap.dedent(MANAGE))
    (tmp_path / "proj_settings.py").write_text(textwrap.dedent(SETTINGS) + MAIL_SETTINGS)
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "__init__.py").write_text("")
    sources = {"models": MODELS, "signals": SIGNALS, "receivers": RECEIVERS, "apps": APPS, "tests": TESTS}
    for name, source in sources.items():
        (shop / f"{name}.py").write_text(textwrap.dedent(source))
    return tmp_path


def manage_test(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py test shop`` with warnings turned into errors, as in CI users' setups."""
    environment = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    environment["PYTHONPATH"] = os.pathsep.join([str(project), str(Path(__file__).resolve().parent.parent)])
    return subprocess.run(
        [sys.executable, "-W", "error", "manage.py", "test", "shop", *args],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_hazards_fail_the_tests_that_had_them(project: Path) -> None:
    plain = manage_test(project)
    assert plain.returncode == 0, plain.stderr
    assert "Ran 3 tests" in plain.stderr

    result = manage_test(project, "--signaltrace-hazards=fail")
    assert result.returncode == 1, result.stderr
    assert "FAILED (failures=2)" in result.stderr
    mail_line = line_of("def mail_receipt(") + 1  # the send_mail line
    failures = result.stderr.split("FAIL: ")[1:]
    assert sorted(failure.split(" ", 1)[0] for failure in failures) == [
        "test_bulk_create",
        "test_mail_in_transaction",
    ]
    mail = next(failure for failure in failures if failure.startswith("test_mail_in_transaction"))
    assert (
        "SignalAssertionError: signaltrace: Expected no signal hazards, but 1 hazard was found:\n"
        "  mail_before_commit at "
    ) in mail
    assert f"shop/tests.py:{mail_line}: shop.tests.mail_receipt (" in mail
    assert "sent an e-mail to 1 recipient at" in mail
    assert "post_save(sender=shop.Receipt) depth=1 receivers: shop.receivers.touch_order, " in mail
    assert "<- hazard: mail_before_commit" in mail
    bulk = next(failure for failure in failures if failure.startswith("test_bulk_create"))
    assert (
        f"  bypassed_write at shop/tests.py:{line_of('# hazard: bulk')}: bulk_create of 1 shop.Order" in bulk
    )


@pytest.mark.parametrize("verbosity", ["1", "0"])
def test_hazards_listed_after_the_run_without_failing(project: Path, verbosity: str) -> None:
    """On standard error, also at ``-v 0``: asked for, the list is the point of the run."""
    result = manage_test(project, "--signaltrace-hazards=warn", "-v", verbosity)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(("signaltrace:", "  "))]
    # In the order the tests ran: unittest sorts a class's test methods by name.
    assert [line.split(" at ", 1)[0] for line in lines] == [
        "signaltrace: hazards in shop.tests.HazardTests.test_bulk_create",
        "  bypassed_write",
        "signaltrace: hazards in shop.tests.HazardTests.test_mail_in_transaction",
        "  mail_before_commit",
        "signaltrace: 2 hazards in 2 tests (--signaltrace-hazards=fail fails them)",
    ]
    assert f"shop/tests.py:{line_of('# hazard: bulk')}: bulk_create of 1 shop.Order rows" in lines[1]
    assert "shop.tests.mail_receipt (" in lines[3]


def test_report_lists_the_hazards(project: Path) -> None:
    result = manage_test(project, "--signaltrace-report=hazards.json")
    assert result.returncode == 0, result.stderr
    assert "0 loops, 0 receiver errors, 2 hazards" in result.stdout
    report = json.loads((project / "hazards.json").read_text())
    assert report["totals"]["hazards"] == 2
    tests = {test["nodeid"]: test for test in report["tests"]}
    assert "hazards" not in tests["shop.tests.HazardTests.test_clean"]
    [hazard] = tests["shop.tests.HazardTests.test_mail_in_transaction"]["hazards"]
    assert (hazard["phase"], hazard["kind"], hazard["count"]) == ("call", "mail_before_commit", 1)
    [hazard] = tests["shop.tests.HazardTests.test_bulk_create"]["hazards"]
    assert (hazard["phase"], hazard["kind"]) == ("call", "bypassed_write")


def test_a_bad_value_is_refused() -> None:
    from signaltrace.testing.runner import SignalTraceRunner

    with pytest.raises(ValueError, match="signaltrace_hazards must be one of fail, warn, off, not 'loud'"):
        SignalTraceRunner(signaltrace_hazards="loud")
