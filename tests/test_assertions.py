"""The assertion engine through the plain context managers of ``signaltrace.testing``, on the real ORM."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import factory
import pytest
from django.core import mail
from django.db import transaction
from django.db.models.signals import post_save, pre_init, pre_save
from django.dispatch import Signal
from django.test import override_settings

import signaltrace
from signaltrace.core import BYPASSED_WRITE, MAIL_BEFORE_COMMIT, TASK_BEFORE_COMMIT
from signaltrace.testing import (
    SignalAssertionError,
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
from signaltrace.testing.assertions import MAX_HAZARD_LINES, grouped_hazard_lines, hazard_listing
from tests.testapp.models import Item, Ping
from tests.testapp.signals import item_viewed

pytestmark = pytest.mark.django_db

order_paid = Signal()


def create_ping(sender: Any, instance: Item, created: bool, **kwargs: Any) -> None:
    if created:
        Ping.objects.create(name=instance.name)


def explode(sender: Any, **kwargs: Any) -> None:
    raise ValueError("card declined")


def resave_ping(sender: Any, instance: Ping, **kwargs: Any) -> None:
    instance.save()


def save_ping_robustly(sender: Any, **kwargs: Any) -> None:
    Ping.objects.get(name="looping").save()


@pytest.fixture
def receivers() -> Iterator[None]:
    post_save.connect(create_ping, sender=Item)
    yield
    post_save.disconnect(create_ping, sender=Item)


@pytest.fixture
def exploding() -> Iterator[None]:
    order_paid.connect(explode)
    yield
    order_paid.disconnect(explode)


def failure_of(block: Any) -> str:
    with pytest.raises(SignalAssertionError) as info:
        block()
    return str(info.value)


# ------------------------------------------------------------------ sent / not sent


def test_sent_matches_signal_objects_and_names(receivers: None) -> None:
    with (
        assert_signal_sent(post_save, sender=Item, times=1, created=True),
        assert_signal_sent("post_save", sender="testapp.Item", times=1),
        assert_signal_sent("django.db.models.signals.post_save", sender="testapp.item", times=1),
        assert_signal_sent("post_save", sender="Item", times=1),
        assert_signal_sent(post_save, sender=Ping, times=1, created=True),
        assert_signal_sent(post_save, times=2) as trace,
    ):
        Item.objects.create(name="ada")
    assert [d.signal_name for d in trace.dispatches] == ["pre_save", "post_save", "pre_save", "post_save"]


def test_sent_counts_exactly_and_lists_what_was_dispatched(receivers: None) -> None:
    def block() -> None:
        with assert_signal_sent(post_save, sender=Item, times=2):
            Item.objects.create(name="ada")

    assert failure_of(block).splitlines() == [
        "Expected post_save(sender=testapp.Item) to be sent 2 times, but it was sent once.",
        "Dispatched signals (4):",
        "  pre_save(sender=testapp.Item) depth=0 receivers: none",
        "  post_save(sender=testapp.Item) depth=0 receivers: tests.test_assertions.create_ping  <- matches",
        "    pre_save(sender=testapp.Ping) depth=1 receivers: none",
        "    post_save(sender=testapp.Ping) depth=1 receivers: none",
        "Hint: QuerySet.update(), bulk_create() and bulk_update() write rows without sending pre_save or "
        "post_save; save each instance, or assert on what the code really sends.",
        "(pass verbose=True for kwargs, locations and timings)",
    ]


def test_at_least_once_by_default_and_nothing_dispatched() -> None:
    def block() -> None:
        with assert_signal_sent(item_viewed):
            pass

    assert failure_of(block).splitlines() == [
        "Expected tests.testapp.signals.item_viewed to be sent at least once, but it was sent 0 times.",
        "No signals were dispatched.",
    ]
    with assert_signal_sent(item_viewed):
        item_viewed.send(sender=Item, item_id=1)
        item_viewed.send(sender=Item, item_id=2)


def test_bulk_create_and_update_hint() -> None:
    def block() -> None:
        with assert_signal_sent(pre_save, sender=Item):
            Item.objects.bulk_create([Item(name="a"), Item(name="b")])
            Item.objects.update(name="c")

    message = failure_of(block)
    assert message.startswith("Expected pre_save(sender=testapp.Item) to be sent at least once, but it")
    assert "No signals were dispatched." in message
    assert "Hint: QuerySet.update(), bulk_create() and bulk_update() write rows without sending" in message


def test_hint_only_for_save_signals() -> None:
    def block() -> None:
        with assert_signal_sent(item_viewed, times=2):
            item_viewed.send(sender=Item, item_id=1)

    assert "Hint" not in failure_of(block)


def test_not_sent(receivers: None) -> None:
    with assert_signal_not_sent(post_save, sender=Ping), assert_signal_not_sent(item_viewed):
        Item.objects.bulk_create([Item(name="quiet")])

    def block() -> None:
        with assert_signal_not_sent("post_save", sender=Ping):
            Item.objects.create(name="ada")

    lines = failure_of(block).splitlines()
    assert lines[0] == "Expected post_save(sender=testapp.Ping) not to be sent, but it was sent once."
    assert lines[5] == "    post_save(sender=testapp.Ping) depth=1 receivers: none  <- matches"


# ------------------------------------------------------------------ kwargs


def test_kwargs_subset_compares_rendered_values(receivers: None) -> None:
    item = Item.objects.create(name="ada")
    with assert_signal_sent(post_save, sender=Item, instance=item, created=False, update_fields=None):
        item.save()
    with assert_signal_sent(post_save, sender=Item, instance=item, using=mock.ANY, raw=False):
        item.save()

    def block() -> None:
        with assert_signal_sent(post_save, sender=Item, created=True, instance=item):
            item.save()

    lines = failure_of(block).splitlines()
    assert lines[0] == (
        f"Expected post_save(sender=testapp.Item, created=True, instance=<testapp.Item pk={item.pk}>) "
        "to be sent at least once, but it was sent 0 times."
    )
    assert lines[3] == (
        "  post_save(sender=testapp.Item) depth=0 receivers: tests.test_assertions.create_ping"
        "  <- kwargs differ: created=False (expected True)"
    )
    assert not any(line.startswith("Hint") for line in lines)


def test_model_instances_match_by_label_and_pk() -> None:
    first = Item.objects.create(name="first")
    second = Item.objects.create(name="second")
    with assert_signal_sent(post_save, instance=Item.objects.get(pk=first.pk), times=1):
        first.save()
        second.save()
    with assert_signal_not_sent(post_save, instance=Ping(pk=first.pk)):
        first.save()


def test_missing_kwarg_and_colliding_names() -> None:
    def block() -> None:
        with assert_signal_sent(item_viewed, item_id=1, page=2):
            item_viewed.send(sender=Item, item_id=1)

    assert "kwargs differ: page not sent" in failure_of(block)
    with assert_signal_sent(item_viewed, kwargs={"times": 3}, times=1):
        item_viewed.send(sender=Item, times=3)


def test_redacted_kwargs_cannot_be_matched() -> None:
    with pytest.raises(ValueError, match="'api_token' is redacted in traces"):
        assert_signal_sent(item_viewed, api_token="secret")
    with assert_signal_sent(item_viewed, api_token=mock.ANY):
        item_viewed.send(sender=Item, api_token="secret")


def test_ignored_signals_are_refused() -> None:
    with pytest.raises(ValueError, match="pre_init is listed in SIGNALTRACE\\['IGNORE_SIGNALS'\\]"):
        assert_signal_not_sent(pre_init)
    with pytest.raises(ValueError, match="IGNORE_SIGNALS"):
        assert_signal_sent("pre_init")
    with override_settings(SIGNALTRACE={"IGNORE_SIGNALS": []}), assert_signal_sent(pre_init, sender=Item):
        Item(name="built")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="count >= 0"):
        assert_signal_sent(post_save, times=-1)
    with pytest.raises(TypeError, match="Signal or a signal name"):
        assert_signal_sent(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sender= needs signal="):
        assert_receiver_called(create_ping, sender=Item)


def test_a_failing_block_is_not_verified() -> None:
    with pytest.raises(KeyError), assert_signal_sent(post_save):
        raise KeyError("the block's own error wins")


# ------------------------------------------------------------------ receivers


def test_receiver_called_by_function_dotted_or_bare_name(receivers: None) -> None:
    with (
        assert_receiver_called(create_ping, times=1),
        assert_receiver_called("tests.test_assertions.create_ping", signal=post_save, sender=Item),
        assert_receiver_called("create_ping", times=1),
        assert_receiver_not_called(create_ping, signal=post_save, sender=Ping),
        assert_receiver_not_called(explode),
    ):
        Item.objects.create(name="ada")

    def block() -> None:
        with assert_receiver_called(create_ping, signal=post_save, sender=Item, times=2):
            Item.objects.create(name="bob")

    lines = failure_of(block).splitlines()
    assert lines[0] == (
        "Expected receiver tests.test_assertions.create_ping to be called by post_save(sender=testapp.Item) "
        "2 times, but it was called once."
    )
    assert lines[3].endswith("receivers: tests.test_assertions.create_ping  <- calls it")


def test_receiver_not_called_failure(receivers: None) -> None:
    def block() -> None:
        with assert_receiver_not_called(create_ping):
            Item.objects.create(name="ada")

    assert failure_of(block).splitlines()[0] == (
        "Expected receiver tests.test_assertions.create_ping not to be called, but it was called once."
    )


def test_muted_signals_are_sent_with_no_receivers(receivers: None) -> None:
    """factory_boy's mute_signals empties the receivers: the dispatch is recorded, with none called."""
    with (
        factory.django.mute_signals(post_save),
        assert_signal_sent(post_save, sender=Item, times=1),
        assert_receiver_not_called(create_ping) as trace,
    ):
        Item.objects.create(name="muted")
    assert [d.receivers_count for d in trace.dispatches if d.signal is post_save] == [0]

    def block() -> None:
        with factory.django.mute_signals(post_save), assert_receiver_called(create_ping, signal=post_save):
            Item.objects.create(name="muted")

    message = failure_of(block)
    assert "post_save(sender=testapp.Item) depth=0 receivers: none" in message
    assert "Hint: a matching signal was sent with no receivers connected." in message
    assert "(factory_boy.mute_signals)?" in message


# ------------------------------------------------------------------ depth, loops, errors


def test_max_depth(receivers: None) -> None:
    with assert_max_signal_depth(1):
        Item.objects.create(name="ada")

    def block() -> None:
        with assert_max_signal_depth(0):
            Item.objects.create(name="bob")

    lines = failure_of(block).splitlines()
    assert lines[0] == (
        "Expected signal dispatches at most 0 deep, but 2 went deeper; "
        "pre_save(sender=testapp.Ping) reached depth 1."
    )
    assert lines[4] == "    pre_save(sender=testapp.Ping) depth=1 receivers: none  <- deeper than 0"


def test_receiver_errors_swallowed_by_send_robust(exploding: None) -> None:
    def block() -> None:
        with assert_no_receiver_errors():
            order_paid.send_robust(sender=Item, order=7)

    lines = failure_of(block).splitlines()
    assert lines[0] == "Expected no receiver errors, but 1 receiver raised:"
    assert lines[1].startswith("  tests.test_assertions.explode (")
    assert lines[1].endswith(
        f"test_assertions.py:{explode.__code__.co_firstlineno}) raised ValueError: card declined in "
        "tests.test_assertions.order_paid(sender=testapp.Item) [swallowed by send_robust]"
    )
    assert lines[3] == (
        "  tests.test_assertions.order_paid(sender=testapp.Item) via send_robust depth=0 "
        "receivers: tests.test_assertions.explode [raised ValueError, swallowed]"
    )


def test_receiver_errors_caught_by_the_code_count_too(exploding: None) -> None:
    def block() -> None:
        with assert_no_receiver_errors():
            with pytest.raises(ValueError):
                order_paid.send(sender=Item)

    assert "raised ValueError: card declined in tests.test_assertions.order_paid" in failure_of(block)


def test_loops_stopped_and_swallowed_by_send_robust() -> None:
    post_save.connect(resave_ping, sender=Ping)
    order_paid.connect(save_ping_robustly)
    try:
        Ping.objects.bulk_create([Ping(name="looping")])

        def block() -> None:
            with assert_no_signal_loops():
                order_paid.send_robust(sender=Item)

        lines = failure_of(block).splitlines()
        assert lines[0] == "Expected no signal loops, but 1 loop was stopped:"
        assert lines[1].startswith("  Signal loop detected: ")
        assert lines[1].endswith(" [raised, swallowed by send_robust]")
        assert any(line.endswith("<- loop stopped here") for line in lines)
    finally:
        post_save.disconnect(resave_ping, sender=Ping)
        order_paid.disconnect(save_ping_robustly)


def test_assert_signals_combines_limits(receivers: None, exploding: None) -> None:
    with assert_signals(max_depth=1, max_dispatches=4):
        Item.objects.create(name="ada")
    with assert_signals(allow_receiver_errors=True), pytest.raises(ValueError):
        order_paid.send(sender=Item)

    def block() -> None:
        with assert_signals(max_depth=0, max_dispatches=3):
            Item.objects.create(name="bob")
            with pytest.raises(ValueError):
                order_paid.send(sender=Item)

    lines = failure_of(block).splitlines()
    assert lines[0] == "Expected no receiver errors, but 1 receiver raised:"
    assert lines[2].startswith("Expected signal dispatches at most 0 deep, but 2 went deeper;")
    assert lines[3] == "Expected at most 3 signal dispatches, but 5 were sent."


def test_verbose_output_shows_kwargs_locations_and_timings(receivers: None) -> None:
    def block() -> None:
        with assert_signal_sent(post_save, sender=Item, times=3, verbose=True):
            Item.objects.create(name="ada")

    lines = failure_of(block).splitlines()
    assert lines[3].startswith("      kwargs: instance=<testapp.Item pk=")
    assert "created=True" in lines[5]
    assert lines[6].startswith("      tests.test_assertions.create_ping at ")
    assert f"test_assertions.py:{create_ping.__code__.co_firstlineno} took " in lines[6]
    assert lines[6].endswith(" ms")
    assert not lines[-1].startswith("(pass verbose=True")


# ------------------------------------------------------------------ the bulk write hint

BULK_HINT = "Hint: QuerySet.update(), bulk_create() and bulk_update() write rows without sending"


def test_bulk_hint_for_a_save_signal_sent_too_few_times() -> None:
    def block() -> None:
        with assert_signal_sent(post_save, sender=Item, times=2):
            Item.objects.create(name="one")

    message = failure_of(block)
    expected = "Expected post_save(sender=testapp.Item) to be sent 2 times, but it was sent once."
    assert message.startswith(expected)
    assert BULK_HINT in message


def test_no_bulk_hint_for_a_custom_signal_sent_too_few_times() -> None:
    def block() -> None:
        with assert_signal_sent(order_paid, times=2):
            order_paid.send(sender=Item)

    message = failure_of(block)
    assert "to be sent 2 times, but it was sent once." in message
    assert "Hint" not in message


@pytest.mark.parametrize("signal", [post_save, "pre_save"])
def test_no_bulk_hint_for_a_save_signal_sent_too_many_times(signal: Any) -> None:
    def block() -> None:
        with assert_signal_sent(signal, sender=Item, times=1):
            Item.objects.create(name="one")
            Item.objects.create(name="two")

    message = failure_of(block)
    assert "to be sent once, but it was sent 2 times." in message
    assert "Hint" not in message


# ------------------------------------------------------------------ hazards


def mail_welcome(sender: Any, instance: Item, created: bool, **kwargs: Any) -> None:
    if created:
        mail.send_mail("Welcome", "Hello", None, ["ada@example.com"])


def line_of(marker: str) -> int:
    """The line of this file that ends with ``# hazard: <marker>``."""
    lines = Path(__file__).read_text().splitlines()
    [number] = [n for n, line in enumerate(lines, 1) if line.rstrip().endswith(f"# hazard: {marker}")]
    return number


def bulk_items() -> None:
    Item.objects.bulk_create([Item(name="a"), Item(name="b")])  # hazard: bulk


def test_no_hazards_fails_with_the_message_and_place_of_a_mail_sent_inside_a_transaction(
    connect: Any,
) -> None:
    connect(post_save, mail_welcome, sender=Item)
    with pytest.raises(SignalAssertionError) as info:
        with assert_no_signal_hazards() as trace, transaction.atomic():
            Item.objects.create(name="ada")
    assert len(mail.outbox) == 1  # the mail is real, and went out before the commit
    [hazard] = trace.hazards
    assert hazard.kind == MAIL_BEFORE_COMMIT
    sent_at = f"test_assertions.py:{mail_welcome.__code__.co_firstlineno + 2}"  # the send_mail line
    assert hazard.place.endswith(sent_at)
    lines = str(info.value).splitlines()
    assert lines[:2] == [
        "Expected no signal hazards, but 1 hazard was found:",
        f"  mail_before_commit at {hazard.place}: {hazard.message}",
    ]
    assert "tests.test_assertions.mail_welcome" in lines[1]
    assert f"sent an e-mail to 1 recipient at tests/{sent_at} inside a transaction" in lines[1]
    assert "Fix: send it after the commit: transaction.on_commit(" in lines[1]
    assert "ada@example.com" not in str(info.value)  # recipients are counted, never shown
    assert lines[2] == "Dispatched signals (2):"
    assert (
        "  post_save(sender=testapp.Item) depth=0 receivers: tests.test_assertions.mail_welcome"
        "  <- hazard: mail_before_commit"
    ) in lines


def test_a_mail_sent_in_autocommit_is_no_hazard(connect: Any) -> None:
    connect(post_save, mail_welcome, sender=Item)
    with assert_no_signal_hazards() as trace:
        Item.objects.create(name="ada")
    assert len(mail.outbox) == 1 and len(trace.side_effects) == 1


def test_no_hazards_fails_with_the_message_and_place_of_a_bulk_create(receivers: None) -> None:
    with pytest.raises(SignalAssertionError) as info:
        with assert_no_signal_hazards() as trace:
            bulk_items()
    [hazard] = trace.hazards
    assert hazard.kind == BYPASSED_WRITE
    assert hazard.place.endswith(f"test_assertions.py:{line_of('bulk')}")
    lines = str(info.value).splitlines()
    assert lines == [
        "Expected no signal hazards, but 1 hazard was found:",
        f"  bypassed_write at {hazard.place}: {hazard.message}",
        "No signals were dispatched.",
    ]
    assert lines[1].startswith(
        f"  bypassed_write at {hazard.place}: bulk_create of 2 testapp.Item rows: "
        "1 post_save receiver did not run (tests.test_assertions.create_ping"
    )
    assert Item.objects.count() == 2 and not Ping.objects.exists()  # the receiver really did not run


def test_no_hazards_of_some_kinds_only(receivers: None, connect: Any) -> None:
    connect(post_save, mail_welcome, sender=Item)
    with assert_no_signal_hazards([MAIL_BEFORE_COMMIT, TASK_BEFORE_COMMIT]):
        bulk_items()

    def block() -> None:
        with assert_no_signal_hazards(BYPASSED_WRITE), transaction.atomic():
            Item.objects.create(name="ada")  # a mail hazard: not asked about
            bulk_items()

    lines = failure_of(block).splitlines()
    assert lines[0] == "Expected no signal hazards (bypassed_write), but 1 hazard was found:"
    assert lines[1].startswith("  bypassed_write at ")
    assert f"test_assertions.py:{line_of('bulk')}: bulk_create of 2 testapp.Item rows: " in lines[1]
    assert "2 post_save receivers did not run" in lines[1]
    assert lines[2] == "Dispatched signals (4):"
    assert not any("mail_before_commit" in line for line in lines)


@pytest.mark.parametrize("kinds", ["mail", ["bypassed_write", "deadlock"], []])
def test_unknown_hazard_kinds_are_refused(kinds: Any) -> None:
    with pytest.raises(ValueError, match="Expected hazard kinds among task_before_commit, "):
        assert_no_signal_hazards(kinds)


def test_a_hazard_listing_that_fails_is_logged_not_raised(
    receivers: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fresh_internal_errors: None,
) -> None:
    """``--signaltrace-hazards=warn`` lists hazards after a test that passed: an internal error
    while reading them must not fail that test."""
    with signaltrace.record() as trace:
        bulk_items()
    assert [line.split(" at ", 1)[0] for line in hazard_listing(trace)[1]] == ["bypassed_write"]

    def broken(self: Any) -> list[Any]:
        raise RuntimeError("internal")

    monkeypatch.setattr(signaltrace.Trace, "hazards", property(broken))
    assert hazard_listing(trace) == (0, [])
    assert "signaltrace internal error in hazard list" in caplog.text


def test_hazard_listings_group_alike_hazards_and_are_bounded(receivers: None) -> None:
    """A loop of bulk writes lists one line per place, and at most MAX_HAZARD_LINES places."""
    with signaltrace.record() as trace:
        for _ in range(3):
            bulk_items()  # one place, three times
    count, lines = hazard_listing(trace)
    assert count == 3 and len(lines) == 1
    assert lines[0].startswith("bypassed_write at ") and lines[0].endswith(" (and 2 more here)")

    places = [replace(trace.hazards[0], place=f"app.py:{line}") for line in range(MAX_HAZARD_LINES + 5)]
    grouped = grouped_hazard_lines(places)
    assert len(grouped) == MAX_HAZARD_LINES + 1
    assert grouped[-1] == "... and 5 more places with hazards"
    assert grouped[0].startswith("bypassed_write at app.py:0: ")
