"""The pytest plugin, through real pytest runs of a small Django project (pytester, in subprocesses).

Each run is a fresh interpreter: the project under test configures its own Django
settings, as a user's project would, while this test session keeps ``tests.settings``.
"""

from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from signaltrace.testing import DjangoAssertSignals, SignalAssertions, plugin

SETTINGS = """
SECRET_KEY = "plugin-tests"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "signaltrace", "shop"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
SIGNALTRACE = {"ENABLED": True}  # the loop guard on in every run, as without --signaltrace
# Django < 5 renders the error report for mail_admins when send_robust logs a failure,
# which adds a template_rendered dispatch to the exact listings below.
LOGGING_CONFIG = None
"""

MODELS = """
from django.db import models


class Order(models.Model):
    number = models.IntegerField(default=0)
    paid = models.BooleanField(default=False)


class Receipt(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE)
"""

SIGNALS = """
from django.dispatch import Signal

order_paid = Signal()
"""

RECEIVERS = """
from django.db.models.signals import post_save
from django.dispatch import receiver

from shop.models import Order, Receipt
from shop.signals import order_paid


@receiver(post_save, sender=Order)
def create_receipt(sender, instance, created, **kwargs):
    if created:
        Receipt.objects.create(order=instance)
    elif instance.paid:
        for receipt in instance.receipt_set.all():
            receipt.save()


@receiver(order_paid)
def notify_accounting(sender, order, **kwargs):
    if order.number < 0:
        raise ValueError(f"bad order number {order.number}")
    if order.paid:
        order.receipt_set.get().save()


@receiver(post_save, sender=Receipt)
def touch_order(sender, instance, **kwargs):
    if instance.order.paid:
        instance.order.save()
"""


def line_of(receiver: str) -> int:
    """The line a receiver is reported at: its decorator's, as in ``code.co_firstlineno``."""
    lines = RECEIVERS.splitlines()  # lines[0] is the empty first line: index == line number - 1
    return lines.index(next(line for line in lines if line.startswith(f"def {receiver}(")))


APPS = """
from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"

    def ready(self):
        from shop import receivers  # noqa: F401
"""

INI = """
[pytest]
DJANGO_SETTINGS_MODULE = proj_settings
asyncio_default_fixture_loop_scope = function
"""

HAS_XDIST = importlib.util.find_spec("xdist") is not None


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A Django project with a ``shop`` app: Order -> Receipt receivers, a custom signal, a loop.

    The settings come from its pytest.ini, as in a user's project: this session's own
    ``DJANGO_SETTINGS_MODULE`` (set by pytest-django) must not leak into the runs.
    """
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    pytester.makeini(INI)
    pytester.makepyfile(proj_settings=SETTINGS)
    shop = pytester.mkpydir("shop")
    for name, source in {"models": MODELS, "signals": SIGNALS, "receivers": RECEIVERS, "apps": APPS}.items():
        (shop / f"{name}.py").write_text(textwrap.dedent(source))
    return pytester


def literal(*lines: str, prefix: str = "") -> list[str]:
    """fnmatch patterns for ``lines``: ``[`` is literal, ``*`` stays a wildcard."""
    return [prefix + "".join("[[]" if char == "[" else char for char in line) for line in lines]


def raised(*lines: str) -> list[str]:
    """Patterns for ``lines`` as pytest prints an exception raised at a test's ``with`` statement."""
    return literal(*lines, prefix="E       ")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # Faker's plugin (installed with factory_boy) takes most of a run's start-up time;
    # pytest-randomly would shuffle the inner tests, whose failures are matched in order.
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:faker", "-p", "no:randomly", *args
    )


# ------------------------------------------------------------------ fixtures


def test_fixtures_pass_and_fail_with_exact_text(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_shop="""
        import pytest
        from django.db.models.signals import post_save

        from shop.models import Order, Receipt
        from shop.receivers import create_receipt
        from shop.signals import order_paid
        from signaltrace.testing.plugin import DjangoAssertSignals

        pytestmark = pytest.mark.django_db


        def test_order_creates_one_receipt(django_assert_signals: DjangoAssertSignals):
            assert isinstance(django_assert_signals, DjangoAssertSignals)
            with (
                django_assert_signals.sent(post_save, sender=Order, times=1, created=True),
                django_assert_signals.sent("post_save", sender="shop.Receipt", times=1),
                django_assert_signals.receiver_called(create_receipt, times=1),
                django_assert_signals.max_depth(1),
                django_assert_signals.no_loops(),
                django_assert_signals.no_receiver_errors(),
                django_assert_signals(max_depth=1, max_dispatches=4) as trace,
            ):
                Order.objects.create(number=1)
            assert Receipt.objects.count() == 1
            assert len(trace.dispatches) == 4


        def test_signal_trace_records_the_test(signal_trace):
            Order.objects.create(number=2)
            order_paid.send(sender=Order, order=Order(number=2))
            names = [d.signal_name for d in signal_trace.roots]
            assert names == ["pre_save", "post_save", "shop.signals.order_paid"]


        def test_wrong_count(django_assert_signals):
            with django_assert_signals.sent(post_save, sender=Order, times=2):
                Order.objects.create(number=3)
        """
    )
    result = run(project)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        raised(
            "signaltrace.testing.assertions.SignalAssertionError: "
            "Expected post_save(sender=shop.Order) to be sent 2 times, but it was sent once.",
            "Dispatched signals (4):",
            "  pre_save(sender=shop.Order) depth=0 receivers: none",
            "  post_save(sender=shop.Order) depth=0 receivers: shop.receivers.create_receipt  <- matches",
            "    pre_save(sender=shop.Receipt) depth=1 receivers: none",
            "    post_save(sender=shop.Receipt) depth=1 receivers: shop.receivers.touch_order",
            "Hint: QuerySet.update(), bulk_create() and bulk_update() write rows without sending "
            "pre_save or post_save; save each instance, or assert on what the code really sends.",
            "(add -v option to show kwargs, locations and timings)",
        ),
        consecutive=True,
    )


def test_verbose_failure_shows_kwargs_locations_and_timings(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_shop="""
        import pytest
        from shop.models import Order
        from shop.signals import order_paid


        @pytest.mark.django_db
        def test_error(django_assert_signals):
            with django_assert_signals.no_receiver_errors():
                order_paid.send_robust(sender=Order, order=Order(number=-1))
        """
    )
    result = run(project, "-v")
    result.assert_outcomes(failed=1)
    where = f"*shop/receivers.py:{line_of('notify_accounting')}"
    result.stdout.fnmatch_lines(
        raised(
            "signaltrace.testing.assertions.SignalAssertionError: "
            "Expected no receiver errors, but 1 receiver raised:",
            f"  shop.receivers.notify_accounting ({where}) raised ValueError: bad order number -1 "
            "in shop.signals.order_paid(sender=shop.Order) [swallowed by send_robust]",
            "Dispatched signals (1):",
            "  shop.signals.order_paid(sender=shop.Order) via send_robust depth=0 receivers: "
            "shop.receivers.notify_accounting [raised ValueError, swallowed]",
            "      kwargs: order=<shop.Order pk=None>",
            f"      shop.receivers.notify_accounting at {where} took *.* ms",
            "        raised ValueError: bad order number -1",
        ),
        consecutive=True,
    )
    assert "add -v option" not in result.stdout.str()


def test_fixture_type_is_the_assertion_class() -> None:
    """Annotations with DjangoAssertSignals (from the plugin or signaltrace.testing) name the
    class whose methods, signatures and docstrings the fixture has."""
    assert DjangoAssertSignals is SignalAssertions
    assert plugin.DjangoAssertSignals is SignalAssertions


# ------------------------------------------------------------------ --signaltrace and the marker

SIGNALTRACE_TESTS = """
import pytest
from django.db import transaction
from shop.models import Order, Receipt
from shop.signals import order_paid

pytestmark = pytest.mark.django_db


def test_clean():
    Order.objects.create(number=1)


def test_swallowed_error():
    order_paid.send_robust(sender=Order, order=Order(number=-5))


def test_error_the_test_expects():
    with pytest.raises(ValueError):
        order_paid.send(sender=Order, order=Order(number=-6))


def test_loop_swallowed():
    order = Order.objects.create(number=7)
    Order.objects.filter(pk=order.pk).update(paid=True)
    order.refresh_from_db()
    order_paid.send_robust(sender=Order, order=order)


@pytest.mark.signaltrace(allow_receiver_errors=True)
def test_errors_allowed():
    order_paid.send_robust(sender=Order, order=Order(number=-8))


@pytest.mark.signaltrace(enabled=False)
def test_opted_out():
    order_paid.send_robust(sender=Order, order=Order(number=-9))
"""


def test_signaltrace_option_fails_swallowed_errors_and_loops(project: pytest.Pytester) -> None:
    project.makepyfile(test_shop=SIGNALTRACE_TESTS)
    plain = run(project)
    plain.assert_outcomes(passed=6)

    result = run(project, "--signaltrace")
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines(
        literal(
            "*_ test_swallowed_error _*",
            "signaltrace: Expected no receiver errors swallowed by send_robust, but 1 receiver raised:",
            f"  shop.receivers.notify_accounting (*shop/receivers.py:{line_of('notify_accounting')}) "
            "raised ValueError: bad order number -5 "
            "in shop.signals.order_paid(sender=shop.Order) [swallowed by send_robust]",
            "Dispatched signals (1):",
            "  shop.signals.order_paid(sender=shop.Order) via send_robust depth=0 receivers: "
            "shop.receivers.notify_accounting [raised ValueError, swallowed]",
            "(add -v option to show kwargs, locations and timings)",
        ),
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        literal(
            "*_ test_loop_swallowed _*",
            "signaltrace: Expected no signal loops, but 1 loop was stopped:",
            "  Signal loop detected: *post_save(shop.Receipt #1)* [raised, swallowed by send_robust]",
            "Expected no receiver errors swallowed by send_robust, but 1 receiver raised:",
            "  shop.receivers.notify_accounting (*) raised SignalLoopError: Signal loop detected: * "
            "in shop.signals.order_paid(sender=shop.Order) [swallowed by send_robust]",
        ),
        consecutive=True,
    )
    result.stdout.fnmatch_lines(["*loop stopped here"])
    result.stdout.fnmatch_lines(
        ["FAILED test_shop.py::test_swallowed_error*", "FAILED test_shop.py::test_loop_swallowed*"]
    )

    ini = project.path / "tox.ini"
    ini.write_text(ini.read_text() + "\nsignaltrace = true\n")
    run(project).assert_outcomes(passed=4, failed=2)


def test_marker_limits_without_the_option(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_shop="""
        import pytest
        from shop.models import Order
        from shop.signals import order_paid

        pytestmark = pytest.mark.django_db


        @pytest.mark.signaltrace(max_depth=1, max_dispatches=4)
        def test_within_limits():
            Order.objects.create(number=1)


        @pytest.mark.signaltrace(max_depth=0)
        def test_too_deep():
            Order.objects.create(number=2)


        @pytest.mark.signaltrace(max_dispatches=3)
        def test_too_many():
            Order.objects.create(number=3)


        @pytest.mark.signaltrace
        def test_swallowed_error():
            order_paid.send_robust(sender=Order, order=Order(number=-1))


        def test_unmarked_is_not_checked():
            order_paid.send_robust(sender=Order, order=Order(number=-2))


        @pytest.mark.signaltrace(max_deep=1)
        def test_typo():
            pass


        @pytest.mark.signaltrace(max_depth=-1)
        def test_bad_value():
            pass
        """
    )
    result = run(project)
    result.assert_outcomes(passed=2, failed=5)
    for lines in (
        [
            "*_ test_too_deep _*",
            "signaltrace: Expected signal dispatches at most 0 deep, but 2 went deeper; "
            "pre_save(sender=shop.Receipt) reached depth 1.",
            "Dispatched signals (4):",
            "  pre_save(sender=shop.Order) depth=0 receivers: none",
            "  post_save(sender=shop.Order) depth=0 receivers: shop.receivers.create_receipt",
            "    pre_save(sender=shop.Receipt) depth=1 receivers: none  <- deeper than 0",
            "    post_save(sender=shop.Receipt) depth=1 receivers: shop.receivers.touch_order"
            "  <- deeper than 0",
        ],
        [
            "*_ test_too_many _*",
            "signaltrace: Expected at most 3 signal dispatches, but 4 were sent.",
        ],
        [
            "*_ test_swallowed_error _*",
            "signaltrace: Expected no receiver errors swallowed by send_robust, but 1 receiver raised:",
        ],
        [
            "*_ test_typo _*",
            "@pytest.mark.signaltrace takes only keyword arguments among allow_loops, "
            "allow_receiver_errors, enabled, hazards, max_depth, max_dispatches; got max_deep",
        ],
        ["*_ test_bad_value _*", "@pytest.mark.signaltrace: Expected a count >= 0, got -1"],
    ):
        result.stdout.fnmatch_lines(literal(*lines), consecutive=True)
    assert "test_unmarked_is_not_checked" not in result.stdout.str()


def test_marker_is_registered(project: pytest.Pytester) -> None:
    result = run(project, "--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.signaltrace(max_depth=None, max_dispatches=None, allow_loops=False, "
            "allow_receiver_errors=False, hazards=None, enabled=True): "
            "record this test's signals and fail it past these limits "
            "(hazards: fail, warn or off, overriding --signaltrace-hazards)."
        ]
    )
    project.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.signaltrace(max_depth=1)
        def test_marked():
            pass
        """
    )
    strict = run(project, "--strict-markers")
    strict.assert_outcomes(passed=1)


# ------------------------------------------------------------------ hazards

# Django 6.1 warns when mail is sent without MAILERS; older versions ignore the setting.
MAIL_SETTINGS = """
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
"""

HAZARD_TESTS = """
import pytest
from django.core.mail import send_mail
from django.db import transaction
from django.db.models.signals import post_save
from shop.models import Order, Receipt

pytestmark = pytest.mark.django_db


def mail_receipt(sender, instance, created, **kwargs):
    send_mail("Your receipt", "Thanks", None, ["ada@example.com"])


post_save.connect(mail_receipt, sender=Receipt)


def test_clean():
    Order.objects.create(number=1)  # the mail goes out in autocommit: no hazard


def test_mail_in_transaction():
    with transaction.atomic():
        Order.objects.create(number=2)


def test_bulk_create():
    Order.objects.bulk_create([Order(number=3), Order(number=4)])  # hazard: bulk


@pytest.mark.signaltrace(hazards="off")
def test_opted_out():
    Order.objects.bulk_create([Order(number=5)])


@pytest.mark.signaltrace(enabled=False)
def test_disabled():
    Order.objects.bulk_create([Order(number=6)])
"""


def hazard_project(project: pytest.Pytester) -> pytest.Pytester:
    """The plugin project with mail configured and HAZARD_TESTS as test_hazards.py."""
    project.makepyfile(proj_settings=SETTINGS + MAIL_SETTINGS, test_hazards=HAZARD_TESTS)
    return project


def hazard_line(marker: str) -> int:
    """The line of test_hazards.py that starts or ends with ``marker``."""
    # pytester drops HAZARD_TESTS' empty first line: index in these lines == line number.
    lines = HAZARD_TESTS.splitlines()
    return lines.index(next(line for line in lines if line.startswith(marker) or line.endswith(marker)))


def test_no_hazards_fixture_fails_with_each_hazard_s_message_and_place(project: pytest.Pytester) -> None:
    project.makepyfile(
        proj_settings=SETTINGS + MAIL_SETTINGS,
        test_shop="""
        import pytest
        from django.db import transaction

        from shop.models import Order

        pytestmark = pytest.mark.django_db


        def test_clean(django_assert_signals):
            with django_assert_signals.no_hazards():
                Order.objects.create(number=1)


        def test_bulk(django_assert_signals):
            with django_assert_signals.no_hazards(), transaction.atomic():
                Order.objects.bulk_create([Order(number=2)])
        """,
    )
    result = run(project)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        raised(
            "signaltrace.testing.assertions.SignalAssertionError: "
            "Expected no signal hazards, but 1 hazard was found:",
            "  bypassed_write at *test_shop.py:*: bulk_create of 1 shop.Order rows: "
            "1 post_save receiver did not run "
            f"(shop.receivers.create_receipt (*shop/receivers.py:{line_of('create_receipt')})); "
            "called at *test_shop.py:*. Fix: save() each object, *",
            "No signals were dispatched.",
        ),
        consecutive=True,
    )


def test_hazards_option_fails_or_lists_tests_with_hazards(project: pytest.Pytester) -> None:
    hazard_project(project)
    run(project).assert_outcomes(passed=5)
    mail_line, bulk_line = hazard_line("def mail_receipt(") + 1, hazard_line("# hazard: bulk")  # send_mail

    result = run(project, "--signaltrace-hazards=fail")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(
        literal(
            "*_ test_mail_in_transaction _*",
            "signaltrace: Expected no signal hazards, but 1 hazard was found:",
            f"  mail_before_commit at *test_hazards.py:{mail_line}: test_hazards.mail_receipt "
            f"(*test_hazards.py:{mail_line - 1}) sent an e-mail to 1 recipient "
            f"at *test_hazards.py:{mail_line} inside a transaction: "
            "atomic block (depth 1) on 'default', committed; it goes out even if the transaction is "
            "rolled back. Fix: send it after the commit: transaction.on_commit(lambda: send_mail(...)).",
            "Dispatched signals (4):",
            "  pre_save(sender=shop.Order) depth=0 receivers: none",
            "  post_save(sender=shop.Order) depth=0 receivers: shop.receivers.create_receipt",
            "    pre_save(sender=shop.Receipt) depth=1 receivers: none",
            "    post_save(sender=shop.Receipt) depth=1 receivers: shop.receivers.touch_order, "
            "test_hazards.mail_receipt  <- hazard: mail_before_commit",
        ),
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        literal(
            "*_ test_bulk_create _*",
            "signaltrace: Expected no signal hazards, but 1 hazard was found:",
            f"  bypassed_write at *test_hazards.py:{bulk_line}: bulk_create of 2 shop.Order rows: *",
            "No signals were dispatched.",
        ),
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        ["FAILED test_hazards.py::test_mail_in_transaction*", "FAILED test_hazards.py::test_bulk_create*"]
    )
    assert "signaltrace hazards" not in result.stdout.str()

    # warn: nothing fails, even with warnings as errors; the hazards are listed after the run.
    listed = run(project, "--signaltrace-hazards=warn", "-W", "error")
    listed.assert_outcomes(passed=5)
    listed.stdout.fnmatch_lines(
        literal(
            "*- signaltrace hazards -*",
            "test_hazards.py::test_bulk_create",
            f"  bypassed_write at *test_hazards.py:{bulk_line}: bulk_create of 2 shop.Order rows: *",
            "test_hazards.py::test_mail_in_transaction",
            f"  mail_before_commit at *test_hazards.py:{mail_line}: test_hazards.mail_receipt *",
            "signaltrace: 2 hazards in 2 tests (--signaltrace-hazards=fail fails them)",
        ),
        consecutive=True,
    )
    assert "warning" not in listed.stdout.str().lower()

    ini = project.path / "tox.ini"
    ini.write_text(ini.read_text() + "\nsignaltrace_hazards = fail\n")
    run(project).assert_outcomes(passed=3, failed=2)
    run(project, "--signaltrace-hazards=off").assert_outcomes(passed=5)


@pytest.mark.skipif(not HAS_XDIST, reason="pytest-xdist is not installed")
def test_hazards_listed_across_xdist_workers(project: pytest.Pytester) -> None:
    """The hazards travel with the call reports from the workers to the controller's list."""
    hazard_project(project)
    result = run(project, "-n", "2", "--signaltrace-hazards=warn")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        literal(
            "*- signaltrace hazards -*",
            "test_hazards.py::test_bulk_create",
            "  bypassed_write at *",
            "test_hazards.py::test_mail_in_transaction",
            "  mail_before_commit at *",
            "signaltrace: 2 hazards in 2 tests (--signaltrace-hazards=fail fails them)",
        ),
        consecutive=True,
    )


def test_hazards_marker_and_bad_values(project: pytest.Pytester) -> None:
    project.makepyfile(
        proj_settings=SETTINGS + MAIL_SETTINGS,
        test_shop="""
        import pytest
        from django.dispatch import Signal
        from shop.models import Order

        pytestmark = pytest.mark.django_db


        @pytest.mark.signaltrace(hazards="fail")
        def test_strict():
            Order.objects.bulk_create([Order(number=1)])


        @pytest.mark.signaltrace(hazards="warn")
        def test_listed():
            Order.objects.bulk_create([Order(number=2)])


        def test_unmarked():
            Order.objects.bulk_create([Order(number=3)])


        @pytest.mark.signaltrace(hazards=True)
        def test_bad_value():
            pass


        def webhook(sender, **kwargs):
            raise ConnectionError("webhook down")


        order_paid = Signal()
        order_paid.connect(webhook)


        @pytest.mark.signaltrace(hazards="off")  # the hazard mode only: no limits with it
        def test_hazard_mode_only():
            [(_, error)] = order_paid.send_robust(sender=None)
            assert isinstance(error, ConnectionError)


        @pytest.mark.signaltrace  # limits: the swallowed error fails it
        def test_bare_marker():
            order_paid.send_robust(sender=None)
        """,
    )
    result = run(project)
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines(["FAILED test_shop.py::test_bare_marker*"])
    result.stdout.fnmatch_lines(
        literal(
            "*_ test_strict _*",
            "signaltrace: Expected no signal hazards, but 1 hazard was found:",
        ),
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        literal(
            "*_ test_bad_value _*",
            "@pytest.mark.signaltrace: hazards must be one of fail, warn, off, not True",
        ),
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        literal(
            "*- signaltrace hazards -*",
            "test_shop.py::test_listed",
            "  bypassed_write at *test_shop.py:*: bulk_create of 1 shop.Order rows: *",
            "signaltrace: 1 hazard in 1 test (--signaltrace-hazards=fail fails them)",
        ),
        consecutive=True,
    )
    assert "test_unmarked" not in result.stdout.str()

    bad = run(project, "-o", "signaltrace_hazards=loud")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*signaltrace_hazards must be one of fail, warn, off, not 'loud'"])


# ------------------------------------------------------------------ the JSON report

REPORT_TESTS = """
import pytest
from asgiref.sync import sync_to_async
from django.db.models.signals import post_init, post_save
from django.test import TestCase
from shop.models import Order
from shop.signals import order_paid

pytestmark = pytest.mark.django_db


def count_instance(sender, instance, **kwargs):
    pass


post_init.connect(count_instance, sender=Order, weak=False)  # hidden by IGNORE_SIGNALS


@pytest.fixture
def paid_order():
    order = Order.objects.create(number=10)
    yield order
    order_paid.send(sender=Order, order=order)


@pytest.mark.parametrize("number", [1, 2, 3])
def test_orders(number):
    Order.objects.create(number=number)


def test_error_swallowed():
    order_paid.send_robust(sender=Order, order=Order(number=-1))


def test_fails():
    Order.objects.create(number=4)
    assert False


def test_quiet():
    pass


def test_fixture_phases(paid_order):
    post_save.send(sender=Order, instance=paid_order, created=False)


@pytest.mark.asyncio
async def test_async():
    order = Order(number=5)
    if hasattr(order_paid, "asend"):
        await order_paid.asend(sender=Order, order=order)
    else:  # Django 4.2
        await sync_to_async(order_paid.send)(sender=Order, order=order)


class OrderTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.order = Order.objects.create(number=20)

    def test_reads(self):
        self.assertEqual(Order.objects.get(pk=self.order.pk).number, 20)
"""

TEST_KEYS = {
    "hazards",
    "nodeid",
    "outcome",
    "worker",
    "duration_ns",
    "dispatches",
    "empty_dispatches",
    "receiver_calls",
    "dropped",
    "ignored_dispatches",
    "max_depth",
    "phases",
    "loops",
    "receiver_errors",
}


def _check_schema(report: dict[str, Any]) -> None:
    """Every key and type the report promises (docs/report.md)."""
    assert set(report) == {"version", "signaltrace", "detail", "totals", "summary", "tests"}
    assert report["version"] == 2 and isinstance(report["signaltrace"], str)
    assert set(report["totals"]) == {
        "tests",
        "dispatches",
        "empty_dispatches",
        "receiver_calls",
        "dropped",
        "ignored_dispatches",
        "loops",
        "receiver_errors",
        "hazards",
    }
    assert all(isinstance(value, int) for value in report["totals"].values())
    summary = report["summary"]
    assert set(summary) == {
        "top_signals",
        "receivers_by_total",
        "receivers_by_max",
        "no_receivers",
        "busiest_tests",
        "ignored",
        "hazards",
    }
    for section in summary.values():
        assert set(section) == {"count", "items"} and len(section["items"]) <= min(section["count"], 10)
    full = report["detail"] == "full"
    for test in report["tests"]:
        if full:
            assert set(test) - {"slow_deletes"} == TEST_KEYS, test["nodeid"]
        else:  # empty lists and a None worker left out
            optional = {"loops", "receiver_errors", "hazards", "worker"}
            keys = TEST_KEYS - optional | {"top_signals", "top_receivers"}
            assert keys <= set(test) <= keys | optional, test["nodeid"]
        assert test["outcome"] in {"passed", "failed", "skipped", "error"}
        for key in ("duration_ns", "dispatches", "dropped", "max_depth", "receiver_calls"):
            assert isinstance(test[key], int) and test[key] >= 0
        assert set(test["phases"]) <= {"class_setup", "setup", "call", "teardown", "class_teardown"}
        for part in test["phases"].values():
            if not full:
                assert isinstance(part, int) and part > 0
                continue
            for entry in part["signals"]:
                assert set(entry) == {"signal", "sender", "count", "empty", "receiver_calls", "max_depth"}
            for entry in part["receivers"]:
                assert set(entry) == {"signal", "receiver", "location", "calls", "total_ns", "max_ns"}
                assert entry["total_ns"] >= entry["max_ns"] >= 0
        for entry in test.get("receiver_errors", []):
            assert set(entry) == {
                "phase",
                "signal",
                "sender",
                "receiver",
                "location",
                "type",
                "message",
                "swallowed",
            }
        for entry in test.get("hazards", []):
            assert set(entry) == {"phase", "kind", "place", "message", "count"}
    assert report["totals"]["tests"] == len(report["tests"])
    assert report["totals"]["dispatches"] == sum(test["dispatches"] for test in report["tests"])


def _without_timings(report: dict[str, Any]) -> list[dict[str, Any]]:
    tests = []
    for test in report["tests"]:
        # Each worker sets the database up in the set-up of its first test: compare the rest.
        kept = {key: test.get(key) for key in ("nodeid", "outcome", "loops", "receiver_errors")}
        kept["phases"] = {phase: count for phase, count in test["phases"].items() if phase != "setup"}
        tests.append(kept)
    return tests


def test_report_is_written_with_its_schema(project: pytest.Pytester) -> None:
    project.makepyfile(test_shop=REPORT_TESTS)
    result = run(project, "--signaltrace-report=artifacts/signals.json")
    result.assert_outcomes(passed=8, failed=1)
    path = project.path / "artifacts" / "signals.json"
    result.stdout.fnmatch_lines(
        [
            "signaltrace: 9 tests, * dispatches (* reached no receiver), * receiver calls, "
            "0 loops, 1 receiver errors, 0 hazards",
            "  top signals: *",
            "  slowest receivers (total): * -> *",
            "  slowest receivers (one call): * -> *",
            "  no receiver: *",
            "  busiest test: test_shop.py::test_orders[[]1] (* dispatches)",
            "  hidden by IGNORE_SIGNALS: post_init * dispatches, 1 receivers (* calls)",
            "  hidden by IGNORE_SIGNALS: pre_init * dispatches, 0 receivers (0 calls)",
            f"  report (summary detail, * KB): {path}",
        ]
    )
    report = json.loads(path.read_text())
    _check_schema(report)
    tests = {test["nodeid"]: test for test in report["tests"]}
    assert list(tests) == sorted(tests)
    totals = report["totals"]
    assert (totals["tests"], totals["loops"], totals["receiver_errors"]) == (9, 0, 1)
    for key in ("dispatches", "receiver_calls", "empty_dispatches", "ignored_dispatches"):
        assert totals[key] == sum(test[key] for test in report["tests"]), key

    # The first test's set-up holds the session's: pytest-django's database set-up.
    first = tests["test_shop.py::test_orders[1]"]
    assert first["phases"]["setup"] > 0
    assert first["phases"]["call"] == 4

    order = tests["test_shop.py::test_orders[2]"]
    assert order["outcome"] == "passed" and "worker" not in order
    assert order["dispatches"] == 4 and order["max_depth"] == 1 and order["receiver_calls"] == 2
    assert order["phases"] == {"call": 4}
    assert order["top_signals"] == [
        ["post_save", "shop.Order", 1],
        ["post_save", "shop.Receipt", 1],
        ["pre_save", "shop.Order", 1],
    ]
    assert sorted(entry[1] for entry in order["top_receivers"]) == [
        "shop.receivers.create_receipt",
        "shop.receivers.touch_order",
    ]
    # post_init of each Order built is ignored, but counted.
    assert order["ignored_dispatches"] == 2 * 2  # pre_init and post_init of the Order and its Receipt

    fixture = tests["test_shop.py::test_fixture_phases"]
    assert fixture["phases"] == {
        "setup": 4,
        "call": 1,
        "teardown": 1,
    }
    case = tests["test_shop.py::OrderTests::test_reads"]
    assert case["phases"]["setup"] == 4  # setUpTestData, in the class fixture

    error = tests["test_shop.py::test_error_swallowed"]
    assert error["receiver_errors"] == [
        {
            "phase": "call",
            "signal": "shop.signals.order_paid",
            "sender": "shop.Order",
            "receiver": "shop.receivers.notify_accounting",
            "location": error["receiver_errors"][0]["location"],
            "type": "builtins.ValueError",
            "message": "bad order number -1",
            "swallowed": True,
        }
    ]
    assert error["receiver_errors"][0]["location"].endswith(
        f"shop/receivers.py:{line_of('notify_accounting')}"
    )
    assert tests["test_shop.py::test_fails"]["outcome"] == "failed"
    assert tests["test_shop.py::test_fails"]["dispatches"] == 4
    assert tests["test_shop.py::test_quiet"]["dispatches"] == 0
    assert tests["test_shop.py::test_quiet"]["phases"] == {}
    assert tests["test_shop.py::test_async"]["top_signals"] == [["shop.signals.order_paid", "shop.Order", 1]]

    summary = report["summary"]
    top = {entry["signal"]: entry for entry in summary["top_signals"]["items"]}
    assert top["shop.signals.order_paid"] == {
        "signal": "shop.signals.order_paid",
        "dispatches": 3,
        "empty": 0,
        "receiver_calls": 3,
        "tests": 3,
    }
    assert top["post_save"]["tests"] == 6  # test_orders (3), test_fails, test_fixture_phases, OrderTests
    by_total = {(e["signal"], e["receiver"]) for e in summary["receivers_by_total"]["items"]}
    assert {
        ("post_save", "shop.receivers.create_receipt"),
        ("post_save", "shop.receivers.touch_order"),
        ("shop.signals.order_paid", "shop.receivers.notify_accounting"),
    } <= by_total
    assert summary["no_receivers"]["count"] > 10 and len(summary["no_receivers"]["items"]) == 10
    assert all(e["dispatches"] > 0 and e["tests"] > 0 for e in summary["no_receivers"]["items"])
    assert summary["busiest_tests"]["items"][0]["nodeid"] == "test_shop.py::test_orders[1]"
    ignored = {entry["signal"]: entry for entry in summary["ignored"]["items"]}
    assert set(ignored) == {"pre_init", "post_init"}
    assert sum(entry["dispatches"] for entry in ignored.values()) == totals["ignored_dispatches"]
    post_init = ignored["post_init"]
    assert {"sender": "shop.Order", "dispatches": ANY_INT} in post_init["senders"]
    (hidden,) = post_init["receivers"]
    assert hidden["receiver"] == "test_shop.count_instance"
    assert hidden["location"].endswith("test_shop.py:11")
    order_inits = next(e["dispatches"] for e in post_init["senders"] if e["sender"] == "shop.Order")
    assert hidden["calls"] == order_inits
    assert ignored["pre_init"]["receivers"] == []


class _AnyInt:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, int)


ANY_INT = _AnyInt()


def test_full_detail_keeps_every_tally_of_every_phase(project: pytest.Pytester) -> None:
    project.makepyfile(test_shop=REPORT_TESTS)
    run(project, "--signaltrace-report=full.json", "--signaltrace-report-detail=full").assert_outcomes(
        passed=8, failed=1
    )
    report = json.loads((project.path / "full.json").read_text())
    _check_schema(report)
    assert report["detail"] == "full"
    tests = {test["nodeid"]: test for test in report["tests"]}
    setup = tests["test_shop.py::test_fixture_phases"]["phases"]["setup"]
    assert [(e["signal"], e["sender"], e["count"], e["empty"]) for e in setup["signals"]] == [
        ("post_save", "shop.Order", 1, 0),
        ("post_save", "shop.Receipt", 1, 0),
        ("pre_save", "shop.Order", 1, 1),
        ("pre_save", "shop.Receipt", 1, 1),
    ]
    assert setup["ignored"][0]["signal"] == "post_init"


def test_collected_senders_keep_their_label(project: pytest.Pytester) -> None:
    """A sender the garbage collector took during the test is still named in the report."""
    project.makepyfile(
        test_gone="""
        import gc

        from django.dispatch import Signal

        ping = Signal()
        ping.connect(lambda sender, **kwargs: None, weak=False)


        def test_gone():
            Temporary = type("Temporary", (), {"__module__": "scratch"})
            ping.send(sender=Temporary)
            del Temporary
            gc.collect()
        """
    )
    run(project, "--signaltrace-report=gone.json", "--signaltrace-report-detail=full").assert_outcomes(
        passed=1
    )
    (test,) = json.loads((project.path / "gone.json").read_text())["tests"]
    assert [entry["sender"] for entry in test["phases"]["call"]["signals"]] == ["scratch.Temporary"]


@pytest.mark.skipif(not HAS_XDIST, reason="pytest-xdist is not installed")
def test_report_merges_across_xdist_workers(project: pytest.Pytester) -> None:
    project.makepyfile(test_shop=REPORT_TESTS)
    run(project, "--signaltrace-report=single.json").assert_outcomes(passed=8, failed=1)
    result = run(project, "-n", "2", "--signaltrace-report=merged.json")
    result.assert_outcomes(passed=8, failed=1)
    single = json.loads((project.path / "single.json").read_text())
    merged = json.loads((project.path / "merged.json").read_text())
    _check_schema(merged)
    assert _without_timings(merged) == _without_timings(single)
    assert merged["totals"]["tests"] == single["totals"]["tests"]
    assert {test["worker"] for test in merged["tests"]} <= {"gw0", "gw1"}
    assert len({test["worker"] for test in merged["tests"]}) == 2
    assert not list(Path(project.path).glob("*.partial"))


def test_report_lists_hazards_per_test_and_counts_them(project: pytest.Pytester) -> None:
    hazard_project(project)
    result = run(project, "--signaltrace-report=hazards.json", "--signaltrace-hazards=fail")
    result.assert_outcomes(passed=3, failed=2)
    mail_line, bulk_line = hazard_line("def mail_receipt(") + 1, hazard_line("# hazard: bulk")  # send_mail
    opted_out_line = hazard_line("    Order.objects.bulk_create([Order(number=5)])")
    result.stdout.fnmatch_lines(
        [
            "signaltrace: 4 tests, * dispatches (* reached no receiver), * receiver calls, "
            "0 loops, 0 receiver errors, 3 hazards",
            f"  hazards: bypassed_write at *test_hazards.py:{bulk_line} (1x in 1 tests), "
            f"bypassed_write at *test_hazards.py:{opted_out_line} (1x in 1 tests)",
        ]
    )
    report = json.loads((project.path / "hazards.json").read_text())
    _check_schema(report)
    tests = {test["nodeid"]: test for test in report["tests"]}
    assert "test_hazards.py::test_disabled" not in tests  # enabled=False: not recorded
    assert "hazards" not in tests["test_hazards.py::test_clean"]
    mail = tests["test_hazards.py::test_mail_in_transaction"]
    assert mail["outcome"] == "failed"
    [hazard] = mail["hazards"]
    assert (hazard["phase"], hazard["kind"], hazard["count"]) == ("call", "mail_before_commit", 1)
    assert hazard["place"].endswith(f"test_hazards.py:{mail_line}")
    assert hazard["message"].startswith("test_hazards.mail_receipt (")
    assert "sent an e-mail to 1 recipient at" in hazard["message"]
    [bulk] = tests["test_hazards.py::test_bulk_create"]["hazards"]
    assert (bulk["kind"], bulk["place"].rsplit(":", 1)[1]) == ("bypassed_write", str(bulk_line))
    assert bulk["message"].startswith("bulk_create of 2 shop.Order rows: 1 post_save receiver did not run")
    assert tests["test_hazards.py::test_opted_out"]["outcome"] == "passed"
    assert len(tests["test_hazards.py::test_opted_out"]["hazards"]) == 1

    assert report["totals"]["hazards"] == 3
    section = report["summary"]["hazards"]
    assert section["count"] == 3
    assert [(e["kind"], e["place"].rsplit(":", 1)[1], e["count"], e["tests"]) for e in section["items"]] == [
        ("bypassed_write", str(bulk_line), 1, 1),
        ("bypassed_write", str(opted_out_line), 1, 1),
        ("mail_before_commit", str(mail_line), 1, 1),
    ]

    run(project, "--signaltrace-report=full.json", "--signaltrace-report-detail=full").assert_outcomes(
        passed=5
    )
    full = json.loads((project.path / "full.json").read_text())
    _check_schema(full)
    tests = {test["nodeid"]: test for test in full["tests"]}
    assert tests["test_hazards.py::test_clean"]["hazards"] == []
    assert [h["kind"] for h in tests["test_hazards.py::test_bulk_create"]["phases"]["call"]["hazards"]] == [
        "bypassed_write"
    ]


# ------------------------------------------------------------------ runs without Django settings


def test_plugin_is_inert_without_django_settings(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loaded in every pytest run: without settings it configures nothing and breaks nothing."""
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_plain="""
        import sys

        from django.conf import settings
        from django.dispatch import Signal

        def test_plain(request):
            from django.apps import apps

            assert request.config.pluginmanager.has_plugin("signaltrace")
            assert "signaltrace.testing.plugin" in sys.modules
            assert not settings.configured
            assert not apps.ready

        def test_recording_without_settings(signal_trace):
            ping = Signal()
            ping.connect(lambda sender, **kwargs: None, weak=False)
            ping.send(sender="tests")
            assert len(signal_trace.dispatches) == 1
            assert not settings.configured
        """
    )
    run(pytester).assert_outcomes(passed=2)
    run(pytester, "--signaltrace").assert_outcomes(passed=2)
    run(pytester, "-p", "no:django", "--signaltrace").assert_outcomes(passed=2)
