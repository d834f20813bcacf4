"""The transaction each dispatch ran in, and the fate of ``on_commit`` callbacks (records API)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_save
from django.test import TestCase

import signaltrace
from signaltrace.core import OnCommitCallback, Transaction
from tests.testapp.models import Item, Ping

pytestmark = pytest.mark.django_db(transaction=True)


def _saves(trace: Any) -> list[Any]:
    return [d for d in trace.dispatches if d.signal is post_save]


def test_a_save_outside_any_block_is_autocommit() -> None:
    with signaltrace.record() as trace:
        Item.objects.create(name="a")
    [dispatch] = _saves(trace)
    assert dispatch.transaction == Transaction("default", False, 0, False, "autocommit")
    assert dispatch.transaction.summary == "autocommit on 'default'"


def test_a_save_inside_atomic_is_committed_when_the_block_ends() -> None:
    with signaltrace.record() as trace:
        with transaction.atomic():
            Item.objects.create(name="a")
            seen_inside = _saves(trace)[0].transaction
    assert seen_inside.in_atomic and seen_inside.outcome == "open" and seen_inside.depth == 1
    [dispatch] = _saves(trace)
    assert dispatch.transaction.outcome == "committed"
    assert dispatch.transaction.summary == "atomic block (depth 1) on 'default', committed"


def test_a_savepoint_rolled_back_inside_a_committed_transaction() -> None:
    with signaltrace.record() as trace:
        with transaction.atomic():
            Item.objects.create(name="kept")
            try:
                with transaction.atomic():
                    Item.objects.create(name="undone")
                    raise ValueError("undo the savepoint")
            except ValueError:
                pass
            Item.objects.create(name="after")
    kept, undone, after = _saves(trace)
    assert (kept.transaction.depth, kept.transaction.outcome) == (1, "committed")
    assert (undone.transaction.depth, undone.transaction.outcome) == (2, "rolled back")
    assert undone.transaction.rollback_scope == "savepoint"
    assert after.transaction.outcome == "committed"
    assert list(Item.objects.values_list("name", flat=True).order_by("name")) == ["after", "kept"]


def test_a_whole_transaction_rolled_back_also_rolls_back_its_released_savepoints() -> None:
    with signaltrace.record() as trace:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                with transaction.atomic():
                    Item.objects.create(name="inner")
                raise RuntimeError("roll back everything")
    [inner] = _saves(trace)
    assert inner.transaction.outcome == "rolled back"
    assert inner.transaction.rollback_scope == "transaction"
    assert not Item.objects.exists()


def test_set_rollback_counts_as_rolled_back() -> None:
    with signaltrace.record() as trace:
        with transaction.atomic():
            Item.objects.create(name="a")
            transaction.set_rollback(True)
    assert _saves(trace)[0].transaction.rolled_back


def test_a_block_opened_before_recording_started_is_seen() -> None:
    with transaction.atomic():
        with signaltrace.record() as trace:
            Item.objects.create(name="a")
    assert _saves(trace)[0].transaction.outcome == "committed"


def test_durable_blocks_are_flagged_and_their_error_is_django_s() -> None:
    with signaltrace.record() as trace:
        with transaction.atomic(durable=True):
            Item.objects.create(name="a")
        with transaction.atomic():
            with pytest.raises(RuntimeError, match="durable atomic block cannot be nested"):
                with transaction.atomic(durable=True):
                    pass
            Item.objects.create(name="b")
    first, second = _saves(trace)
    assert first.transaction.durable and first.transaction.outcome == "committed"
    assert not second.transaction.durable and second.transaction.outcome == "committed"


def test_a_signal_without_using_inside_a_block_gets_the_innermost_block() -> None:
    from tests.testapp.signals import item_viewed as custom_signal

    received = []
    custom_signal.connect(lambda **kwargs: received.append(1), weak=False, dispatch_uid="tx-custom")
    try:
        with signaltrace.record() as trace:
            custom_signal.send(sender=None)
            with transaction.atomic():
                custom_signal.send(sender=None)
    finally:
        custom_signal.disconnect(dispatch_uid="tx-custom")
    outside, inside = (d for d in trace.dispatches if d.signal is custom_signal)
    assert outside.transaction is None  # not a model signal, no block open
    assert inside.transaction.in_atomic and inside.transaction.outcome == "committed"


@pytest.mark.django_db  # TestCase's own atomic blocks around the test
def test_testcase_blocks_do_not_count() -> None:
    """Under TestCase's own atomic blocks, the application is in autocommit."""
    assert connection.in_atomic_block  # pytest-django opened TestCase's blocks
    with signaltrace.record() as trace:
        Item.objects.create(name="a")
        with transaction.atomic():
            Item.objects.create(name="b")
    outside, inside = _saves(trace)
    assert outside.transaction.summary == "autocommit on 'default'"
    assert (inside.transaction.depth, inside.transaction.outcome) == (1, "committed")


def test_to_dict_carries_the_transaction() -> None:
    with signaltrace.record() as trace:
        with transaction.atomic():
            Item.objects.create(name="a")
    [dispatch] = [d for d in trace.to_dict()["dispatches"] if d["signal"].endswith("post_save")]
    assert dispatch["transaction"]["outcome"] == "committed"


# ------------------------------------------------------------------ on_commit


def _register_in_receiver(callback: Any, **on_commit: Any) -> Any:
    def register(sender: Any, instance: Any, **kwargs: Any) -> None:
        transaction.on_commit(callback, **on_commit)

    return register


def test_a_callback_registered_by_a_receiver_runs_after_the_commit(connect: Any) -> None:
    ran = []

    def notify() -> None:
        ran.append(Item.objects.count())

    connect(post_save, _register_in_receiver(notify), sender=Item)
    with signaltrace.record() as trace:
        with transaction.atomic():
            Item.objects.create(name="a")
            assert trace.on_commit_callbacks[0].fate == "pending"
    assert ran == [1]
    [callback] = trace.on_commit_callbacks
    assert isinstance(callback, OnCommitCallback)
    assert callback.callback.endswith("notify") and callback.location.endswith(
        f":{notify.__code__.co_firstlineno}"
    )
    assert callback.fate == "ran" and callback.ran_ns >= callback.registered_ns and callback.duration_ns >= 0
    assert callback.transaction.outcome == "committed"
    [dispatch] = _saves(trace)
    assert callback.receiver is dispatch.calls[0]
    assert dispatch.calls[0].on_commit_callbacks == [callback]
    assert trace.to_dict()["on_commit_callbacks"][0]["fate"] == "ran"


def test_a_rollback_discards_the_callback(connect: Any) -> None:
    ran = []
    connect(post_save, _register_in_receiver(lambda: ran.append(1)), sender=Item)
    with signaltrace.record() as trace:
        with pytest.raises(ValueError):
            with transaction.atomic():
                Item.objects.create(name="a")
                raise ValueError("rolled back")
    assert ran == []
    [callback] = trace.on_commit_callbacks
    assert callback.fate == "discarded" and callback.transaction.rolled_back


def test_a_savepoint_rollback_discards_only_its_callbacks() -> None:
    ran: list[str] = []
    with signaltrace.record() as trace:
        with transaction.atomic():
            transaction.on_commit(lambda: ran.append("outer"))
            try:
                with transaction.atomic():
                    transaction.on_commit(lambda: ran.append("inner"))
                    raise ValueError
            except ValueError:
                pass
    assert ran == ["outer"]
    assert [c.fate for c in trace.on_commit_callbacks] == ["ran", "discarded"]


def test_outside_a_transaction_django_runs_it_at_once() -> None:
    ran = []
    with signaltrace.record() as trace:
        transaction.on_commit(lambda: ran.append(1))
    assert ran == [1]
    assert trace.on_commit_callbacks[0].fate == "ran at once"
    assert trace.on_commit_callbacks[0].transaction is None


def test_a_callback_that_registers_another_one() -> None:
    ran: list[str] = []

    def second() -> None:
        ran.append("second")

    def first() -> None:
        ran.append("first")
        transaction.on_commit(second)  # after the commit: Django runs it at once

    with signaltrace.record() as trace:
        with transaction.atomic():
            transaction.on_commit(first)
    assert ran == ["first", "second"]
    fates = {c.callback.rsplit(".", 1)[-1]: c.fate for c in trace.on_commit_callbacks}
    assert fates == {"first": "ran", "second": "ran at once"}


def test_a_robust_callback_that_raises_is_logged_by_django_and_recorded(caplog: Any) -> None:
    ran = []

    def broken() -> None:
        raise LookupError("callback failed")

    with signaltrace.record() as trace, caplog.at_level(logging.ERROR, logger="django.db.backends.base"):
        with transaction.atomic():
            transaction.on_commit(broken, robust=True)
            transaction.on_commit(lambda: ran.append(1))
    assert ran == [1]  # Django went on with the next callback
    assert any("broken" in record.getMessage() for record in caplog.records)  # Django's own log line
    broken_run, after = trace.on_commit_callbacks
    assert broken_run.fate == "ran" and isinstance(broken_run.exception, LookupError) and broken_run.robust
    assert after.fate == "ran"


def test_a_callback_that_raises_stops_the_rest_and_they_are_discarded() -> None:
    ran = []

    def broken() -> None:
        raise LookupError("callback failed")

    with signaltrace.record() as trace:
        with pytest.raises(LookupError):
            with transaction.atomic():
                transaction.on_commit(broken)
                transaction.on_commit(lambda: ran.append(1))
    assert ran == []
    assert [c.fate for c in trace.on_commit_callbacks] == ["ran", "discarded"]


@pytest.mark.django_db  # TestCase's own atomic blocks around the test: nothing commits
def test_in_a_testcase_callbacks_stay_pending_until_captured_and_executed(
    django_capture_on_commit_callbacks: Any,
) -> None:
    ran = []
    with signaltrace.record() as trace:
        with transaction.atomic():
            transaction.on_commit(lambda: ran.append(1))
        assert trace.on_commit_callbacks[0].fate == "pending"
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            with transaction.atomic():
                transaction.on_commit(lambda: ran.append(2))
    assert len(callbacks) == 1 and ran == [2]
    assert [c.fate for c in trace.on_commit_callbacks] == ["pending", "ran"]


@pytest.mark.django_db
def test_testcase_s_capture_is_still_django_s() -> None:
    """``TestCase.captureOnCommitCallbacks`` hands back the functions registered."""

    def callback() -> None:
        pass

    with signaltrace.record():
        with TestCase.captureOnCommitCallbacks() as callbacks:
            transaction.on_commit(callback)
    assert callbacks == [callback]


def test_the_stored_callback_is_the_user_s_own() -> None:
    """Django's list (and captureOnCommitCallbacks) holds the function given, not a wrapper."""

    def callback() -> None:
        pass

    with signaltrace.record():
        with transaction.atomic():
            transaction.on_commit(callback)
            assert connection.run_on_commit[-1][1] is callback
            transaction.set_rollback(True)


def test_a_failed_commit_is_a_rollback() -> None:
    """A constraint error at the end of the block: Django raises, the block is rolled back."""
    Ping.objects.create(id=1)
    with signaltrace.record() as trace:
        with pytest.raises(IntegrityError):
            with transaction.atomic():
                Item.objects.create(name="a")
                Ping.objects.create(id=1)
    assert _saves(trace)[0].transaction.rolled_back


def test_idle_nothing_is_kept_but_blocks_are_known() -> None:
    """Outside record() no callback is watched; a record() opened later still sees the block."""
    with transaction.atomic():
        transaction.on_commit(lambda: None)
        with signaltrace.record() as trace:
            pass
    assert trace.on_commit_callbacks == []
