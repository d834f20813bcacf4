"""The transaction each dispatch ran in, and the fate of ``on_commit`` callbacks (records API).

Every test runs on SQLite and on PostgreSQL (``tests/databases.py``), with real commits
unless it is about ``TestCase``'s own transaction.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.db import IntegrityError, connections, transaction
from django.db.models.signals import post_save
from django.test import TestCase

import signaltrace
from signaltrace.core import OnCommitCallback, Transaction
from tests.databases import DATABASE_ALIASES, database_params
from tests.testapp.models import Item, Ping

#: TestCase style: the test runs inside a transaction pytest-django rolls back.
IN_A_TESTCASE = database_params(transaction=False)


def _saves(trace: Any) -> list[Any]:
    return [d for d in trace.dispatches if d.signal is post_save]


def _names(alias: str) -> list[str]:
    return list(Item.objects.using(alias).order_by("name").values_list("name", flat=True))


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_save_outside_any_block_is_autocommit(alias: str) -> None:
    with signaltrace.record() as trace:
        Item.objects.using(alias).create(name="a")
    [dispatch] = _saves(trace)
    assert dispatch.transaction == Transaction(alias, False, 0, False, "autocommit")
    assert dispatch.transaction.summary == f"autocommit on {alias!r}"


def test_the_autocommit_alias_is_read_from_the_kept_kwargs_in_either_form() -> None:
    """A kept record reads its autocommit alias from its kwargs snapshot, whether the
    snapshot is the call's own dict or the (names, values) form a redaction makes."""
    from django.dispatch import Signal

    custom = Signal()
    custom.connect(lambda **kwargs: None, weak=False)
    with signaltrace.record() as trace:
        custom.send(sender=None, using="other")
        custom.send(sender=None, using="other", api_token="secret")
        custom.send(sender=None, using=["not", "a", "name"])
        custom.send(sender=None)
    plain, redacted, not_a_name, none = trace.dispatches
    assert "secret" not in str(redacted.kwargs)
    for dispatch in (plain, redacted):
        assert dispatch.transaction == Transaction("other", False, 0, False, "autocommit")
    assert not_a_name.transaction is None and none.transaction is None


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_save_inside_atomic_is_committed_when_the_block_ends(alias: str) -> None:
    with signaltrace.record() as trace:
        with transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="a")
            seen_inside = _saves(trace)[0].transaction
    assert seen_inside.in_atomic and seen_inside.outcome == "open" and seen_inside.depth == 1
    [dispatch] = _saves(trace)
    assert dispatch.transaction.alias == alias
    assert dispatch.transaction.outcome == "committed"
    assert dispatch.transaction.summary == f"atomic block (depth 1) on {alias!r}, committed"


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_savepoint_rolled_back_inside_a_committed_transaction(alias: str) -> None:
    with signaltrace.record() as trace:
        with transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="kept")
            try:
                with transaction.atomic(using=alias):
                    Item.objects.using(alias).create(name="undone")
                    raise ValueError("undo the savepoint")
            except ValueError:
                pass
            Item.objects.using(alias).create(name="after")
    kept, undone, after = _saves(trace)
    assert (kept.transaction.depth, kept.transaction.outcome) == (1, "committed")
    assert (undone.transaction.depth, undone.transaction.outcome) == (2, "rolled back")
    assert undone.transaction.rollback_scope == "savepoint"
    assert after.transaction.outcome == "committed"
    assert {d.transaction.alias for d in (kept, undone, after)} == {alias}
    assert _names(alias) == ["after", "kept"]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_whole_transaction_rolled_back_also_rolls_back_its_released_savepoints(alias: str) -> None:
    with signaltrace.record() as trace:
        with pytest.raises(RuntimeError):
            with transaction.atomic(using=alias):
                with transaction.atomic(using=alias):
                    Item.objects.using(alias).create(name="inner")
                raise RuntimeError("roll back everything")
    [inner] = _saves(trace)
    assert inner.transaction.outcome == "rolled back"
    assert inner.transaction.rollback_scope == "transaction"
    assert not Item.objects.using(alias).exists()


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_set_rollback_counts_as_rolled_back(alias: str) -> None:
    with signaltrace.record() as trace:
        with transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="a")
            transaction.set_rollback(True, using=alias)
    assert _saves(trace)[0].transaction.rolled_back
    assert not Item.objects.using(alias).exists()


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_block_opened_before_recording_started_is_seen(alias: str) -> None:
    with transaction.atomic(using=alias):
        with signaltrace.record() as trace:
            Item.objects.using(alias).create(name="a")
    assert _saves(trace)[0].transaction.outcome == "committed"


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_durable_blocks_are_flagged_and_their_error_is_django_s(alias: str) -> None:
    with signaltrace.record() as trace:
        with transaction.atomic(using=alias, durable=True):
            Item.objects.using(alias).create(name="a")
        with transaction.atomic(using=alias):
            with pytest.raises(RuntimeError, match="durable atomic block cannot be nested"):
                with transaction.atomic(using=alias, durable=True):
                    pass
            Item.objects.using(alias).create(name="b")
    first, second = _saves(trace)
    assert first.transaction.durable and first.transaction.outcome == "committed"
    assert not second.transaction.durable and second.transaction.outcome == "committed"
    assert _names(alias) == ["a", "b"]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_signal_without_using_inside_a_block_gets_the_innermost_block(alias: str) -> None:
    from tests.testapp.signals import item_viewed as custom_signal

    received = []
    custom_signal.connect(lambda **kwargs: received.append(1), weak=False, dispatch_uid="tx-custom")
    try:
        with signaltrace.record() as trace:
            custom_signal.send(sender=None)
            with transaction.atomic(using=alias):
                custom_signal.send(sender=None)
    finally:
        custom_signal.disconnect(dispatch_uid="tx-custom")
    assert received == [1, 1]
    outside, inside = (d for d in trace.dispatches if d.signal is custom_signal)
    assert outside.transaction is None  # not a model signal, no block open
    assert inside.transaction.in_atomic and inside.transaction.outcome == "committed"
    assert inside.transaction.alias == alias


@pytest.mark.parametrize("alias", IN_A_TESTCASE)
def test_testcase_blocks_do_not_count(alias: str) -> None:
    """Under TestCase's own atomic blocks, the application is in autocommit."""
    assert connections[alias].in_atomic_block  # pytest-django opened TestCase's blocks
    with signaltrace.record() as trace:
        Item.objects.using(alias).create(name="a")
        with transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="b")
    outside, inside = _saves(trace)
    assert outside.transaction.summary == f"autocommit on {alias!r}"
    assert (inside.transaction.depth, inside.transaction.outcome) == (1, "committed")


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_to_dict_carries_the_transaction(alias: str) -> None:
    with signaltrace.record() as trace:
        with transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="a")
    [dispatch] = [d for d in trace.to_dict()["dispatches"] if d["signal"].endswith("post_save")]
    assert dispatch["transaction"]["outcome"] == "committed"
    assert dispatch["transaction"]["alias"] == alias


# ------------------------------------------------------------------ on_commit


def _register_in_receiver(callback: Any, **on_commit: Any) -> Any:
    def register(sender: Any, instance: Any, **kwargs: Any) -> None:
        transaction.on_commit(callback, **on_commit)

    return register


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_callback_registered_by_a_receiver_runs_after_the_commit(alias: str, connect: Any) -> None:
    ran = []

    def notify() -> None:
        ran.append(Item.objects.using(alias).count())

    connect(post_save, _register_in_receiver(notify, using=alias), sender=Item)
    with signaltrace.record() as trace:
        with transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="a")
            assert trace.on_commit_callbacks[0].fate == "pending"
            assert ran == []
    assert ran == [1]
    [callback] = trace.on_commit_callbacks
    assert isinstance(callback, OnCommitCallback)
    assert callback.callback.endswith("notify") and callback.location.endswith(
        f":{notify.__code__.co_firstlineno}"
    )
    assert callback.fate == "ran" and callback.ran_ns >= callback.registered_ns and callback.duration_ns >= 0
    assert callback.alias == alias
    assert callback.transaction.outcome == "committed" and callback.transaction.alias == alias
    [dispatch] = _saves(trace)
    assert callback.receiver is dispatch.calls[0]
    assert dispatch.calls[0].on_commit_callbacks == [callback]
    assert trace.to_dict()["on_commit_callbacks"][0]["fate"] == "ran"


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_rollback_discards_the_callback(alias: str, connect: Any) -> None:
    ran = []
    connect(post_save, _register_in_receiver(lambda: ran.append(1), using=alias), sender=Item)
    with signaltrace.record() as trace:
        with pytest.raises(ValueError):
            with transaction.atomic(using=alias):
                Item.objects.using(alias).create(name="a")
                raise ValueError("rolled back")
    assert ran == []
    assert not Item.objects.using(alias).exists()
    [callback] = trace.on_commit_callbacks
    assert callback.fate == "discarded" and callback.transaction.rolled_back


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_savepoint_rollback_discards_only_its_callbacks(alias: str) -> None:
    ran: list[str] = []
    with signaltrace.record() as trace:
        with transaction.atomic(using=alias):
            transaction.on_commit(lambda: ran.append("outer"), using=alias)
            try:
                with transaction.atomic(using=alias):
                    transaction.on_commit(lambda: ran.append("inner"), using=alias)
                    raise ValueError
            except ValueError:
                pass
    assert ran == ["outer"]
    assert [c.fate for c in trace.on_commit_callbacks] == ["ran", "discarded"]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_outside_a_transaction_django_runs_it_at_once(alias: str) -> None:
    ran = []
    with signaltrace.record() as trace:
        transaction.on_commit(lambda: ran.append(1), using=alias)
    assert ran == [1]
    assert trace.on_commit_callbacks[0].fate == "ran at once"
    assert trace.on_commit_callbacks[0].transaction is None
    assert trace.on_commit_callbacks[0].alias == alias


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_callback_that_registers_another_one(alias: str) -> None:
    ran: list[str] = []

    def second() -> None:
        ran.append("second")

    def first() -> None:
        ran.append("first")
        transaction.on_commit(second, using=alias)  # after the commit: Django runs it at once

    with signaltrace.record() as trace:
        with transaction.atomic(using=alias):
            transaction.on_commit(first, using=alias)
    assert ran == ["first", "second"]
    fates = {c.callback.rsplit(".", 1)[-1]: c.fate for c in trace.on_commit_callbacks}
    assert fates == {"first": "ran", "second": "ran at once"}


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_robust_callback_that_raises_is_logged_by_django_and_recorded(alias: str, caplog: Any) -> None:
    ran = []

    def broken() -> None:
        raise LookupError("callback failed")

    with signaltrace.record() as trace, caplog.at_level(logging.ERROR, logger="django.db.backends.base"):
        with transaction.atomic(using=alias):
            transaction.on_commit(broken, robust=True, using=alias)
            transaction.on_commit(lambda: ran.append(1), using=alias)
    assert ran == [1]  # Django went on with the next callback
    assert any("broken" in record.getMessage() for record in caplog.records)  # Django's own log line
    broken_run, after = trace.on_commit_callbacks
    assert broken_run.fate == "ran" and isinstance(broken_run.exception, LookupError) and broken_run.robust
    assert after.fate == "ran"


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_callback_that_raises_stops_the_rest_and_they_are_discarded(alias: str) -> None:
    ran = []

    def broken() -> None:
        raise LookupError("callback failed")

    with signaltrace.record() as trace:
        with pytest.raises(LookupError):
            with transaction.atomic(using=alias):
                transaction.on_commit(broken, using=alias)
                transaction.on_commit(lambda: ran.append(1), using=alias)
    assert ran == []
    assert [c.fate for c in trace.on_commit_callbacks] == ["ran", "discarded"]


@pytest.mark.parametrize("alias", IN_A_TESTCASE)  # nothing commits: TestCase's own blocks
def test_in_a_testcase_callbacks_stay_pending_until_captured_and_executed(
    alias: str, django_capture_on_commit_callbacks: Any
) -> None:
    ran = []
    with signaltrace.record() as trace:
        with transaction.atomic(using=alias):
            transaction.on_commit(lambda: ran.append(1), using=alias)
        assert trace.on_commit_callbacks[0].fate == "pending"
        with django_capture_on_commit_callbacks(using=alias, execute=True) as callbacks:
            with transaction.atomic(using=alias):
                transaction.on_commit(lambda: ran.append(2), using=alias)
    assert len(callbacks) == 1 and ran == [2]
    assert [c.fate for c in trace.on_commit_callbacks] == ["pending", "ran"]


@pytest.mark.parametrize("alias", IN_A_TESTCASE)
def test_testcase_s_capture_is_still_django_s(alias: str) -> None:
    """``TestCase.captureOnCommitCallbacks`` hands back the functions registered."""

    def callback() -> None:
        pass

    with signaltrace.record():
        with TestCase.captureOnCommitCallbacks(using=alias) as callbacks:
            transaction.on_commit(callback, using=alias)
    assert callbacks == [callback]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_the_stored_callback_is_the_user_s_own(alias: str) -> None:
    """Django's list (and captureOnCommitCallbacks) holds the function given, not a wrapper."""

    def callback() -> None:
        pass

    with signaltrace.record():
        with transaction.atomic(using=alias):
            transaction.on_commit(callback, using=alias)
            assert connections[alias].run_on_commit[-1][1] is callback
            transaction.set_rollback(True, using=alias)


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_failed_commit_is_a_rollback(alias: str) -> None:
    """A constraint error at the end of the block: Django raises, the block is rolled back."""
    Ping.objects.using(alias).create(id=1)
    with signaltrace.record() as trace:
        with pytest.raises(IntegrityError):
            with transaction.atomic(using=alias):
                Item.objects.using(alias).create(name="a")
                Ping.objects.using(alias).create(id=1)
    assert _saves(trace)[0].transaction.rolled_back
    assert not Item.objects.using(alias).exists()


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_idle_nothing_is_kept_but_blocks_are_known(alias: str) -> None:
    """Outside record() no callback is watched; a record() opened later still sees the block."""
    with transaction.atomic(using=alias):
        transaction.on_commit(lambda: None, using=alias)
        with signaltrace.record() as trace:
            pass
    assert trace.on_commit_callbacks == []
