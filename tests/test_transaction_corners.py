"""Corners of the transaction watch found in review: threads, late reads, late installs.

Each test fails on the code before its fix: a context copied into another thread saw
its parent's blocks; a trace read before the commit kept saying "open"; blocks opened
before ``install()`` were invisible; an async bulk write named asyncio's thread as its
call site; ``captureOnCommitCallbacks(execute=True)`` marked callbacks registered
before it as run; a settled callback was kept alive; ``atomic(savepoint=False)`` rolled
back "a savepoint"; an ``on_commit`` Django refused was recorded as run.
"""

from __future__ import annotations

import gc
import sys
import weakref
from contextvars import copy_context
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections, transaction
from django.db.models.signals import post_save
from django.db.transaction import TransactionManagementError
from django.test import TestCase

import signaltrace
from tests.bare import bare_then_recorded, item_names, saves
from tests.databases import DATABASE_ALIASES, close_thread_connections, database_params
from tests.testapp.models import Item
from tests.testapp.signals import item_viewed


class Undo(Exception):
    """Raised in a scenario to roll a block back."""


def _in_a_thread(function: Any) -> Any:
    """``function()`` run in a new thread, in a copy of this context (``copy_context().run``)."""
    errors: list[BaseException] = []
    results: list[Any] = []
    context = copy_context()

    def run() -> None:
        try:
            results.append(context.run(function))
        except BaseException as error:  # noqa: BLE001 - reported to the test below
            errors.append(error)

    thread = Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors == []
    return results[0]


def _recorded(send: Any) -> signaltrace.Trace:
    with signaltrace.record() as trace:
        send()
    return trace


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_context_copied_into_another_thread_does_not_see_the_parent_s_blocks(alias: str) -> None:
    with transaction.atomic(using=alias):
        here = _recorded(lambda: item_viewed.send(sender=Item))
        there = _in_a_thread(lambda: _recorded(lambda: item_viewed.send(sender=Item)))
        model_signal = _in_a_thread(
            lambda: _recorded(lambda: post_save.send(sender=Item, instance=None, created=False, using=alias))
        )
    [here], [there], [model_signal] = here.dispatches, there.dispatches, model_signal.dispatches
    assert (here.transaction.in_atomic, here.transaction.outcome) == (True, "committed")
    # That thread has connections of its own, outside any block.
    assert there.transaction is None
    assert (model_signal.transaction.in_atomic, model_signal.transaction.outcome) == (False, "autocommit")


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_trace_read_before_the_commit_tells_the_outcome_when_read_after(alias: str, connect: Any) -> None:
    connect(post_save, lambda using, **kwargs: transaction.on_commit(lambda: None, using=using), sender=Item)
    with transaction.atomic(using=alias):
        with signaltrace.record() as trace:
            Item.objects.using(alias).create(name="a")
        [save] = saves(trace)
        assert save.transaction.outcome == "open"
        assert [c.fate for c in trace.on_commit_callbacks] == ["pending"]
    [save] = saves(trace)
    assert save.transaction.outcome == "committed"
    assert [c.fate for c in trace.on_commit_callbacks] == ["ran"]
    # Settled now: read once more, the same objects.
    assert saves(trace)[0] is saves(trace)[0]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_blocks_opened_before_install_are_seen(alias: str) -> None:
    signaltrace.uninstall()
    try:
        with transaction.atomic(using=alias):
            with transaction.atomic(using=alias, savepoint=True):
                with signaltrace.record() as trace:  # installs the hooks
                    Item.objects.using(alias).create(name="a")
            with signaltrace.record() as later:  # the inner block has exited
                Item.objects.using(alias).create(name="b")
        with signaltrace.record() as after:  # both have exited
            Item.objects.using(alias).create(name="c")
    finally:
        signaltrace.install()
    # Their exits were Django's own (taken as they opened): the outcome is not seen.
    [save] = saves(trace)
    assert (save.transaction.in_atomic, save.transaction.depth, save.transaction.outcome) == (True, 2, "open")
    [save] = saves(later)
    assert (save.transaction.in_atomic, save.transaction.depth) == (True, 1)
    [save] = saves(after)
    assert save.transaction.outcome == "autocommit"
    assert item_names(alias) == ["a", "b", "c"]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
async def test_async_bulk_writes_name_the_line_that_awaited_them(alias: str, connect: Any) -> None:
    connect(post_save, lambda sender, **kwargs: None, sender=Item)
    with signaltrace.record() as trace:
        await Item.objects.using(alias).abulk_create([Item(name="a")])
        line = _line_above() - 1
        await Item.objects.using(alias).filter(name="a").aupdate(name="b")
        update_line = _line_above() - 1
    await sync_to_async(close_thread_connections)()  # the executor thread's connection
    created, updated = trace.bypassed_writes
    here = Path(__file__).name
    assert (Path(created.file).name, created.line) == (here, line)
    assert (Path(updated.file).name, updated.line) == (here, update_line)


def _line_above() -> int:
    """The line number of the line that calls this: minus one, the line above it."""
    return sys._getframe(1).f_lineno


@pytest.mark.parametrize("alias", database_params(transaction=False))
def test_capture_marks_as_run_only_the_callbacks_registered_inside_it(alias: str) -> None:
    ran: list[str] = []

    def callback() -> None:
        ran.append("ran")

    with signaltrace.record() as trace:
        with transaction.atomic(using=alias):
            transaction.on_commit(callback, using=alias)  # before the capture: stays pending
            with TestCase.captureOnCommitCallbacks(using=alias, execute=True) as captured:
                transaction.on_commit(callback, using=alias)
    assert ran == ["ran"] and captured == [callback]
    assert [c.fate for c in trace.on_commit_callbacks] == ["pending", "ran"]


@pytest.mark.parametrize("alias", database_params(transaction=False))
def test_capture_marks_its_callbacks_run_when_its_block_raises(alias: str) -> None:
    ran: list[str] = []
    with signaltrace.record() as trace:
        with pytest.raises(Undo), TestCase.captureOnCommitCallbacks(using=alias, execute=True):
            transaction.on_commit(lambda: ran.append("ran"), using=alias)
            raise Undo
    assert ran == ["ran"]  # Django runs them as the capture ends, error or not
    assert [c.fate for c in trace.on_commit_callbacks] == ["ran"]


class _Callback:
    def __call__(self) -> None:
        pass


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_settled_callback_is_not_kept_alive_by_the_trace(alias: str) -> None:
    callback = _Callback()
    alive = weakref.ref(callback)
    with signaltrace.record() as trace:
        with transaction.atomic(using=alias):
            transaction.on_commit(callback, using=alias)
        with pytest.raises(Undo), transaction.atomic(using=alias):
            transaction.on_commit(_Callback(), using=alias)  # discarded
            raise Undo
        transaction.on_commit(_Callback(), using=alias)  # ran at once
    del callback
    gc.collect()
    assert alive() is None
    assert [c.fate for c in trace.on_commit_callbacks] == ["ran", "discarded", "ran at once"]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_block_without_a_savepoint_rolls_back_the_transaction(alias: str) -> None:
    def scenario() -> Any:
        with transaction.atomic(using=alias):
            with pytest.raises(Undo), transaction.atomic(using=alias, savepoint=False):
                Item.objects.using(alias).create(name="a")
                raise Undo
        return item_names(alias)

    bare, recorded, trace = bare_then_recorded(scenario, aliases=[alias])
    assert recorded == bare == []  # Django rolled the whole transaction back
    [save] = saves(trace)
    assert (save.transaction.outcome, save.transaction.rollback_scope) == ("rolled back", "transaction")


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_savepoint_free_block_inside_a_savepoint_rolls_back_to_that_savepoint(alias: str) -> None:
    def scenario() -> Any:
        with transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="kept")
            with pytest.raises(Undo), transaction.atomic(using=alias):
                with transaction.atomic(using=alias, savepoint=False):
                    Item.objects.using(alias).create(name="undone")
                    raise Undo
        return item_names(alias)

    bare, recorded, trace = bare_then_recorded(scenario, aliases=[alias])
    assert recorded == bare == ["kept"]
    kept, undone = saves(trace)
    assert kept.transaction.outcome == "committed"
    assert (undone.transaction.outcome, undone.transaction.rollback_scope) == ("rolled back", "savepoint")


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_an_on_commit_django_refuses_is_not_recorded_as_run(alias: str) -> None:
    connection = connections[alias]
    ran: list[str] = []
    with signaltrace.record() as trace:
        connection.set_autocommit(False)
        try:
            with pytest.raises(TransactionManagementError):
                transaction.on_commit(lambda: ran.append("ran"), using=alias)
        finally:
            connection.rollback()
            connection.set_autocommit(True)
        with pytest.raises(TypeError):
            transaction.on_commit("not callable", using=alias)  # type: ignore[arg-type]
    assert ran == []
    assert trace.on_commit_callbacks == []
