"""The unittest mixin, through Django's own TestCase (run by pytest-django, as a Django project would)."""

from __future__ import annotations

import inspect
from typing import Any
from unittest import skipUnless

from asgiref.sync import sync_to_async
from django.db.models.signals import post_save
from django.dispatch import Signal
from django.test import TestCase, TransactionTestCase

from signaltrace import Trace
from signaltrace.testing import (
    DjangoAssertSignals,
    SignalAssertions,
    SignalAssertionsMixin,
    assert_max_signal_depth,
    assert_no_receiver_errors,
    assert_no_signal_hazards,
    assert_no_signal_loops,
    assert_receiver_called,
    assert_receiver_not_called,
    assert_signal_not_sent,
    assert_signal_sent,
    assert_signals,
)
from tests.testapp.models import Item, Ping

invoice_sent = Signal()


def create_ping(sender: Any, instance: Item, created: bool, **kwargs: Any) -> None:
    if created:
        Ping.objects.create(name=instance.name)


def reject(sender: Any, **kwargs: Any) -> None:
    raise RuntimeError("mail server down")


async def acknowledge(sender: Any, **kwargs: Any) -> None:
    return None


class ReceiversMixin:
    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        post_save.connect(create_ping, sender=Item)
        invoice_sent.connect(reject)
        self.addCleanup(post_save.disconnect, create_ping, sender=Item)  # type: ignore[attr-defined]
        self.addCleanup(invoice_sent.disconnect, reject)  # type: ignore[attr-defined]


class MixinTests(ReceiversMixin, SignalAssertionsMixin, TestCase):
    def test_passing_assertions(self) -> None:
        with (
            self.assertSignalSent(post_save, sender=Item, times=1, created=True),
            self.assertSignalSent("post_save", sender="testapp.Ping", times=1),
            self.assertSignalNotSent(invoice_sent),
            self.assertReceiverCalled(create_ping, times=1),
            self.assertReceiverNotCalled("tests.test_testing.reject"),
            self.assertMaxSignalDepth(1),
            self.assertNoSignalLoops(),
            self.assertNoReceiverErrors(),
            self.assertSignals(max_depth=1, max_dispatches=4) as trace,
        ):
            Item.objects.create(name="ada")
        self.assertIsInstance(trace, Trace)
        self.assertEqual(len(trace.dispatches), 4)

    def test_failure_is_a_test_failure_with_the_listing(self) -> None:
        with self.assertRaises(self.failureException) as caught:
            with self.assertSignalSent(post_save, sender=Item, created=False):
                Item.objects.create(name="ada")
        self.assertEqual(
            str(caught.exception).splitlines(),
            [
                "Expected post_save(sender=testapp.Item, created=False) to be sent at least once, "
                "but it was sent 0 times.",
                "Dispatched signals (4):",
                "  pre_save(sender=testapp.Item) depth=0 receivers: none",
                "  post_save(sender=testapp.Item) depth=0 receivers: tests.test_testing.create_ping"
                "  <- kwargs differ: created=True (expected False)",
                "    pre_save(sender=testapp.Ping) depth=1 receivers: none",
                "    post_save(sender=testapp.Ping) depth=1 receivers: none",
                "(set signaltrace_verbose = True for kwargs, locations and timings)",
            ],
        )

    def test_swallowed_receiver_error(self) -> None:
        with self.assertRaises(AssertionError) as caught:
            with self.assertNoReceiverErrors():
                invoice_sent.send_robust(sender=Item)
        message = str(caught.exception)
        self.assertIn("raised RuntimeError: mail server down in tests.test_testing.invoice_sent", message)
        self.assertIn("[swallowed by send_robust]", message)
        with self.assertSignals(allow_receiver_errors=True):
            invoice_sent.send_robust(sender=Item)

    def test_not_sent_and_not_called_failures(self) -> None:
        expected = "Expected tests.test_testing.invoice_sent not to be sent, but it was sent 2 times."
        with self.assertRaisesMessage(AssertionError, expected):
            with self.assertSignalNotSent(invoice_sent):
                invoice_sent.send_robust(sender=Item)
                invoice_sent.send_robust(sender=Item)
        with self.assertRaisesMessage(
            AssertionError, "Expected receiver tests.test_testing.create_ping not to be called, but it was"
        ):
            with self.assertReceiverNotCalled(create_ping):
                Item.objects.create(name="ada")

    def test_verbose_for_one_block(self) -> None:
        """``verbose=`` is a parameter of every assertion, so the mixin takes it too, per call."""
        with self.assertRaises(AssertionError) as caught:
            with self.assertSignalNotSent(invoice_sent, verbose=True):
                invoice_sent.send_robust(sender=Item, number=7)
        lines = str(caught.exception).splitlines()
        self.assertEqual(lines[3], "      kwargs: number=7")
        self.assertTrue(lines[4].startswith("      tests.test_testing.reject at "), lines[4])
        self.assertFalse(lines[-1].startswith("(set signaltrace_verbose"))

    def test_hazards_fail_with_their_message_and_place(self) -> None:
        with self.assertRaises(self.failureException) as caught:
            with self.assertNoSignalHazards() as trace:
                Item.objects.bulk_create([Item(name="ada")])  # create_ping does not run
        [hazard] = trace.hazards
        self.assertEqual(hazard.kind, "bypassed_write")
        self.assertEqual(
            str(caught.exception).splitlines(),
            [
                "Expected no signal hazards, but 1 hazard was found:",
                f"  bypassed_write at {hazard.place}: {hazard.message}",
                "No signals were dispatched.",
            ],
        )
        self.assertIn("bulk_create of 1 testapp.Item rows: 1 post_save receiver did not run", hazard.message)
        self.assertIn("tests.test_testing.create_ping", hazard.message)
        with self.assertNoSignalHazards(["task_before_commit", "mail_before_commit"]):
            Item.objects.bulk_create([Item(name="grace")])

    async def test_async_code(self) -> None:
        with self.assertSignalSent(invoice_sent, times=1, number=11), self.assertReceiverCalled(reject):
            await sync_to_async(invoice_sent.send_robust)(sender=Item, number=11)

    @skipUnless(hasattr(Signal, "asend"), "Django 4.2 has no asend")
    async def test_async_receivers(self) -> None:
        invoice_sent.connect(acknowledge)
        self.addCleanup(invoice_sent.disconnect, acknowledge)
        with (
            self.assertSignalSent(invoice_sent, times=1, number=12),
            self.assertReceiverCalled(acknowledge, times=1),
        ):
            await invoice_sent.asend_robust(sender=Item, number=12)


class VerboseMixinTests(ReceiversMixin, SignalAssertionsMixin, TransactionTestCase):
    signaltrace_verbose = True

    def tearDown(self) -> None:
        # TransactionTestCase empties tables before its tests, not after: leave none of
        # its rows to the tests that run next, whatever the order.
        Ping.objects.all().delete()
        Item.objects.all().delete()
        super().tearDown()

    def test_verbose_failure_shows_kwargs_and_locations(self) -> None:
        with self.assertRaises(AssertionError) as caught:
            with self.assertReceiverCalled(create_ping, times=2):
                Item.objects.create(name="ada")
        lines = str(caught.exception).splitlines()
        self.assertEqual(
            lines[0],
            "Expected receiver tests.test_testing.create_ping to be called 2 times, but it was called once.",
        )
        self.assertTrue(lines[6].startswith("      tests.test_testing.create_ping at "), lines[6])
        self.assertIn(f"test_testing.py:{create_ping.__code__.co_firstlineno} took ", lines[6])
        self.assertFalse(lines[-1].startswith("(set signaltrace_verbose"))


class PlainCase(SignalAssertionsMixin):
    pass


def test_front_ends_are_the_one_definition() -> None:
    """Module functions and mixin methods are the methods of SignalAssertions: same
    parameters, same docstrings, nothing of their own."""
    front_ends = {
        "__call__": (assert_signals, "assertSignals"),
        "sent": (assert_signal_sent, "assertSignalSent"),
        "not_sent": (assert_signal_not_sent, "assertSignalNotSent"),
        "receiver_called": (assert_receiver_called, "assertReceiverCalled"),
        "receiver_not_called": (assert_receiver_not_called, "assertReceiverNotCalled"),
        "max_depth": (assert_max_signal_depth, "assertMaxSignalDepth"),
        "no_loops": (assert_no_signal_loops, "assertNoSignalLoops"),
        "no_receiver_errors": (assert_no_receiver_errors, "assertNoReceiverErrors"),
        "no_hazards": (assert_no_signal_hazards, "assertNoSignalHazards"),
    }
    methods = {name for name in vars(SignalAssertions) if not name.startswith("_")} | {"__call__"}
    assert methods == set(front_ends)
    assert DjangoAssertSignals is SignalAssertions
    case = PlainCase()
    for name, (function, mixin_name) in front_ends.items():
        method = getattr(SignalAssertions(), name)
        for front_end in (function, getattr(case, mixin_name)):
            assert inspect.signature(front_end) == inspect.signature(method), name
            assert front_end.__doc__ == method.__doc__, name
        assert getattr(SignalAssertionsMixin, mixin_name).__doc__ == method.__doc__, name
    assert case.signaltrace_assertions.verbose is False
    case.signaltrace_verbose = True
    assert case.signaltrace_assertions.verbose is True
