"""Size and time of ``--signaltrace-report`` on a generated 400-test suite, before and after.

Writes a small Django project with 400 tests (a checkout touching users, groups,
orders and their lines; creates; a custom signal; quiet tests) into a temporary
folder and runs pytest on it in subprocesses:

* ``bare``: ``-p no:signaltrace``, the plugin not loaded;
* ``before``: the report of the last commit (``git archive HEAD signaltrace``), which
  records each test's call phase and lists every signal and the ten slowest receivers
  per test;
* ``summary`` and ``full``: this checkout's report with ``--signaltrace-report-detail``.

Runs are interleaved ``--rounds`` times; the median wall time is printed with the
report's size. Usage: ``python benchmarks/report_size.py [--rounds 5] [--tests 400]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = """
SECRET_KEY = "report-size"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "shop"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
"""

MODELS = """
from django.db import models


class Order(models.Model):
    number = models.IntegerField(default=0)
    paid = models.BooleanField(default=False)


class Receipt(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE)


class Line(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE)
    amount = models.IntegerField(default=1)
"""

APPS = """
from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"

    def ready(self):
        from shop import receivers  # noqa: F401
"""

RECEIVERS = """
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import Signal, receiver

from shop.models import Line, Order, Receipt

order_paid = Signal()


@receiver(post_save, sender=Order)
def create_receipt(sender, instance, created, **kwargs):
    if created:
        Receipt.objects.create(order=instance)


@receiver(post_save, sender=Line)
@receiver(post_delete, sender=Line)
def total_order(sender, instance, **kwargs):
    instance.order.number = sum(line.amount for line in instance.order.line_set.all())
    instance.order.save()


@receiver(m2m_changed)
def audit_groups(sender, instance, action, **kwargs):
    pass


@receiver(order_paid)
def notify_accounting(sender, order, **kwargs):
    order.paid = True
"""

TESTS = """
import pytest
from django.contrib.auth.models import Group, User

from shop.models import Line, Order
from shop.receivers import order_paid

pytestmark = pytest.mark.django_db
N = {per_kind}


@pytest.mark.parametrize("number", range(N))
def test_create(number):
    Order.objects.create(number=number)


@pytest.mark.parametrize("number", range(N))
def test_checkout(number):
    user = User.objects.create_user(f"user{{number}}")
    user.groups.add(Group.objects.create(name=f"group{{number}}"))
    order = Order.objects.create(number=number)
    for amount in (1, 2, 3):
        Line.objects.create(order=order, amount=amount)
    order.line_set.first().delete()
    order.paid = True
    order.save()
    assert Order.objects.filter(paid=True).count() == 1


@pytest.mark.parametrize("number", range(N))
def test_paid(number):
    order_paid.send(sender=Order, order=Order(number=number))


@pytest.mark.parametrize("number", range(N))
def test_quiet(number):
    assert number >= 0
"""

INI = """
[pytest]
DJANGO_SETTINGS_MODULE = proj_settings
"""


def write_project(folder: Path, tests: int) -> None:
    (folder / "pytest.ini").write_text(INI)
    (folder / "proj_settings.py").write_text(SETTINGS)
    shop = folder / "shop"
    shop.mkdir()
    (shop / "__init__.py").write_text("")
    for name, source in {"models": MODELS, "apps": APPS, "receivers": RECEIVERS}.items():
        (shop / f"{name}.py").write_text(textwrap.dedent(source))
    (folder / "test_suite.py").write_text(TESTS.format(per_kind=tests // 4))


def last_commit(folder: Path) -> Path:
    """The last commit's ``signaltrace`` package, extracted (git state untouched)."""
    archive = subprocess.run(
        ["git", "archive", "HEAD", "signaltrace"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def run(project: Path, python_path: list[Path], *args: str) -> float:
    environment = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    environment["PYTHONPATH"] = os.pathsep.join(str(path) for path in python_path)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stdout + result.stderr)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tests", type=int, default=400)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        base = Path(temporary)
        project = base / "project"
        project.mkdir()
        write_project(project, options.tests)
        before = last_commit(base / "before")
        variants = {
            "bare": ([project], ["-p", "no:signaltrace"], None),
            "before": ([before, project], ["--signaltrace-report=before.json"], "before.json"),
            "summary": ([ROOT, project], ["--signaltrace-report=summary.json"], "summary.json"),
            "full": (
                [ROOT, project],
                ["--signaltrace-report=full.json", "--signaltrace-report-detail=full"],
                "full.json",
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(options.rounds):
            for name, (path, args, _report) in variants.items():
                times[name].append(run(project, path, *args))
        bare = statistics.median(times["bare"])
        print(f"{options.tests} tests, {options.rounds} rounds, median wall time of the whole pytest run")
        print(f"{'variant':<10}{'report':>12}{'wall':>10}{'vs bare':>10}")
        for name, (_path, _args, report) in variants.items():
            wall = statistics.median(times[name])
            size = f"{(project / report).stat().st_size / 1024:.0f} KB" if report else "-"
            print(f"{name:<10}{size:>12}{wall:>9.2f}s{wall / bare:>9.3f}x")


if __name__ == "__main__":
    main()
