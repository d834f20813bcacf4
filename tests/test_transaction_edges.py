"""Issue 13's edge cases: Django behaves as it does bare, and the trace says what happened.

Each test runs its scenario twice (``tests/bare.py``): with signaltrace uninstalled, then
installed and recording. It asserts that both runs did the same (return values, rows,
exceptions, callbacks run, mail sent) and what the trace recorded. Database tests run on
SQLite and PostgreSQL (``tests/databases.py``); the ones that use both at once skip,
saying why, when PostgreSQL is not up. Nested savepoints, ``durable=True`` and a
callback that registers another one after the commit are in ``test_transactions.py``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from celery import Celery
from celery.signals import before_task_publish
from django.core import mail
from django.core.signals import request_started
from django.db import connections, transaction
from django.db.models.signals import post_save
from django.test import AsyncClient, Client, override_settings

from signaltrace.core import (
    MAIL_BEFORE_COMMIT,
    TASK_BEFORE_COMMIT,
    DispatchObserver,
    OnCommitCallback,
    Transaction,
    add_observer,
    remove_observer,
)
from tests.bare import abare_then_recorded, bare_then_recorded, item_names, saves
from tests.databases import DATABASE_ALIASES, POSTGRES, POSTGRES_AVAILABLE, POSTGRES_MISSING, SQLITE
from tests.testapp.models import Item
from tests.testapp.signals import item_viewed
from tests.testapp.views import ViewFailed

ROOT = Path(__file__).resolve().parent.parent
BOTH = [SQLITE, POSTGRES]
#: Marks of a test that uses both databases at once (PostgreSQL must be up).
ON_BOTH = [
    pytest.mark.skipif(not POSTGRES_AVAILABLE, reason=POSTGRES_MISSING),
    pytest.mark.django_db(databases=BOTH, transaction=True),
]
#: ``(block, other)``: the alias that has the atomic block, and the other one.
DIRECTIONS = [
    pytest.param(SQLITE, POSTGRES, id="block-on-sqlite", marks=ON_BOTH),
    pytest.param(POSTGRES, SQLITE, id="block-on-postgresql", marks=ON_BOTH),
]


class Undo(Exception):
    """Raised in a scenario to roll a block back."""


def _mail_on_save(sender: Any, instance: Any, **kwargs: Any) -> None:
    mail.send_mail("Welcome", "body", "from@example.com", ["a@example.com"])


# ------------------------------------------------------------------ several databases


@pytest.mark.parametrize(("block", "other"), DIRECTIONS)
def test_a_block_on_one_alias_while_the_other_autocommits(block: str, other: str) -> None:
    def scenario() -> Any:
        with transaction.atomic(using=block):
            Item.objects.using(block).create(name="in the block")
            Item.objects.using(other).create(name="autocommitted")
            item_viewed.send(sender=Item)  # not a model signal: the innermost block
            in_atomic = (connections[block].in_atomic_block, connections[other].in_atomic_block)
        return in_atomic, item_names(block), item_names(other)

    bare, recorded, trace = bare_then_recorded(scenario, aliases=BOTH)
    assert recorded == bare == ((True, False), ["in the block"], ["autocommitted"])
    in_block, autocommitted = saves(trace)
    assert in_block.transaction == Transaction(block, True, 1, False, "committed")
    assert autocommitted.transaction == Transaction(other, False, 0, False, "autocommit")
    [custom] = [d for d in trace.dispatches if d.signal is item_viewed]
    assert custom.transaction == Transaction(block, True, 1, False, "committed")


@pytest.mark.parametrize(("block", "other"), DIRECTIONS)
def test_a_block_on_the_other_alias_rolls_back_alone(block: str, other: str) -> None:
    """``on_commit`` on each alias: the one whose block rolled back is dropped, the other runs."""

    def scenario() -> Any:
        ran: list[str] = []
        with transaction.atomic(using=block):
            Item.objects.using(block).create(name="kept")
            transaction.on_commit(partial(ran.append, block), using=block)
            with pytest.raises(Undo), transaction.atomic(using=other):
                Item.objects.using(other).create(name="undone")
                transaction.on_commit(partial(ran.append, other), using=other)
                raise Undo
            ran_before_the_commit = list(ran)
        return ran_before_the_commit, ran, item_names(block), item_names(other)

    bare, recorded, trace = bare_then_recorded(scenario, aliases=BOTH)
    assert recorded == bare == ([], [block], ["kept"], [])
    kept, undone = saves(trace)
    assert kept.transaction == Transaction(block, True, 1, False, "committed")
    # Outermost on its own alias, though nested in the other alias's block.
    assert undone.transaction == Transaction(other, True, 1, False, "rolled back", "transaction")
    fates = {c.alias: (c.fate, c.transaction.outcome) for c in trace.on_commit_callbacks}
    assert fates == {block: ("ran", "committed"), other: ("discarded", "rolled back")}


@pytest.mark.parametrize(("block", "other"), DIRECTIONS)
def test_a_block_on_the_other_alias_commits_inside_one_that_rolls_back(block: str, other: str) -> None:
    """The inner block, on another database, commits (and runs its callback) at its own exit."""

    def scenario() -> Any:
        ran: list[str] = []
        with pytest.raises(Undo), transaction.atomic(using=block):
            Item.objects.using(block).create(name="undone")
            transaction.on_commit(partial(ran.append, block), using=block)
            with transaction.atomic(using=other):
                Item.objects.using(other).create(name="committed")
                transaction.on_commit(partial(ran.append, other), using=other)
            ran_before_the_rollback = list(ran)
            raise Undo
        return ran_before_the_rollback, ran, item_names(block), item_names(other)

    bare, recorded, trace = bare_then_recorded(scenario, aliases=BOTH)
    assert recorded == bare == ([other], [other], [], ["committed"])
    undone, committed = saves(trace)
    assert undone.transaction == Transaction(block, True, 1, False, "rolled back", "transaction")
    assert committed.transaction == Transaction(other, True, 1, False, "committed")
    fates = {c.alias: c.fate for c in trace.on_commit_callbacks}
    assert fates == {block: "discarded", other: "ran"}


celery_app = Celery("signaltrace_edges", broker="memory://", set_as_current=False)


@celery_app.task(name="tests.edges.notify")
def notify(name: str) -> str:
    return name


def _publish_on_commit(sender: Any, instance: Any, **kwargs: Any) -> None:
    notify.delay_on_commit(instance.name)


@pytest.mark.django_db(databases=BOTH, transaction=True)
@pytest.mark.skipif(not POSTGRES_AVAILABLE, reason=POSTGRES_MISSING)
def test_delay_on_commit_waits_for_the_default_database_only(connect: Any) -> None:
    """Celery's ``delay_on_commit()`` registers on 'default': a save on another database,
    in a block there, publishes at once, before its own commit. That is the hazard."""
    connect(post_save, _publish_on_commit, sender=Item)
    published: list[tuple[str, bool]] = []

    def heard(sender: Any = None, **kwargs: Any) -> None:
        published.append((sender, connections[POSTGRES].in_atomic_block))

    before_task_publish.connect(heard, weak=False, dispatch_uid="edges.heard")
    try:

        def scenario() -> Any:
            published.clear()
            with transaction.atomic(using=POSTGRES):
                Item.objects.using(POSTGRES).create(name="a")
            return list(published), item_names(POSTGRES)

        bare, recorded, trace = bare_then_recorded(scenario, aliases=BOTH)
    finally:
        before_task_publish.disconnect(heard, dispatch_uid="edges.heard")
    assert recorded == bare == ([("tests.edges.notify", True)], ["a"])  # published inside the block
    [callback] = trace.on_commit_callbacks
    assert callback.callback == "tests.edges.notify.delay"
    assert (callback.alias, callback.fate) == (SQLITE, "ran at once")  # in the default's autocommit
    [effect] = trace.side_effects
    assert effect.kind == "celery_task"
    assert effect.transaction == Transaction(POSTGRES, True, 1, False, "committed")
    [hazard] = trace.hazards
    assert hazard.kind == TASK_BEFORE_COMMIT and "'postgres'" in hazard.message


# ------------------------------------------------------------------ requests


@contextmanager
def atomic_requests(alias: str) -> Iterator[None]:
    """``ATOMIC_REQUESTS`` on for ``alias``: Django reads it from the connection's settings
    dict when it resolves a view."""
    settings_dict = connections[alias].settings_dict
    before = settings_dict["ATOMIC_REQUESTS"]
    settings_dict["ATOMIC_REQUESTS"] = True
    try:
        yield
    finally:
        settings_dict["ATOMIC_REQUESTS"] = before


def _register_on_save(ran: list[str]) -> Any:
    def register(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
        transaction.on_commit(partial(ran.append, instance.name), using=using)

    return register


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_atomic_requests_a_view_that_saves(alias: str, connect: Any) -> None:
    ran: list[str] = []
    connect(post_save, _register_on_save(ran), sender=Item)

    def scenario() -> Any:
        ran.clear()
        with atomic_requests(alias):
            response = Client().get(f"/edges/{alias}/save/?name=saved")
        return response.status_code, response.content, list(ran), item_names(alias)

    bare, recorded, trace = bare_then_recorded(scenario, aliases=[alias])
    assert recorded == bare == (200, b"saved, in a transaction: True", ["saved"], ["saved"])
    [save] = saves(trace)
    assert save.transaction == Transaction(alias, True, 1, False, "committed")
    [callback] = trace.on_commit_callbacks
    assert (callback.fate, callback.receiver) == ("ran", save.calls[0])
    [started] = [d for d in trace.dispatches if d.signal is request_started]
    assert started.transaction is None  # Django wraps the view only


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_atomic_requests_a_view_that_raises_after_saving(alias: str, connect: Any) -> None:
    ran: list[str] = []
    connect(post_save, _register_on_save(ran), sender=Item)

    def scenario() -> Any:
        ran.clear()
        with atomic_requests(alias), pytest.raises(ViewFailed) as raised:
            Client().get(f"/edges/{alias}/save-then-fail/?name=undone")
        return str(raised.value), list(ran), item_names(alias)

    bare, recorded, trace = bare_then_recorded(scenario, aliases=[alias])
    assert recorded == bare == ("the view failed after its save", [], [])  # the row is gone
    [save] = saves(trace)
    assert save.transaction == Transaction(alias, True, 1, False, "rolled back", "transaction")
    assert [c.fate for c in trace.on_commit_callbacks] == ["discarded"]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
async def test_an_async_view_saving_in_a_block_through_sync_to_async(alias: str, connect: Any) -> None:
    connect(post_save, _mail_on_save, sender=Item)

    async def scenario() -> Any:
        response = await AsyncClient().get(f"/edges/{alias}/save-in-block-async/?name=async")
        rows = await sync_to_async(item_names)(alias)
        return response.status_code, response.content, [m.subject for m in mail.outbox], rows

    try:
        bare, recorded, trace = await abare_then_recorded(scenario, aliases=[alias])
    finally:
        await sync_to_async(connections.close_all)()  # the thread-sensitive thread's connections
    assert recorded == bare == (200, b"saved", ["Welcome"], ["async"])
    [save] = saves(trace)
    assert save.transaction == Transaction(alias, True, 1, False, "committed")
    [hazard] = trace.hazards
    assert hazard.kind == MAIL_BEFORE_COMMIT
    assert hazard.finding.transaction == save.transaction
    assert hazard.finding.receiver is save.calls[0]
    assert "_mail_on_save" in hazard.message and f"on {alias!r}, committed" in hazard.message


# ------------------------------------------------------------------ without Celery

# Celery made unimportable before pytest (and so Django) starts: what a project without it sees.
WITHOUT_CELERY = (
    "import sys; sys.modules['celery'] = None; import pytest; "
    "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-W', 'error', '-rs', *sys.argv[1:]]))"
)


def test_without_celery_mail_is_still_a_hazard_and_nothing_fails() -> None:
    """``tests/celery_absent.py`` runs in a fresh process where ``import celery`` fails."""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", WITHOUT_CELERY, "tests/celery_absent.py"],
        cwd=ROOT,
        env={**os.environ, "CI": "true"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert ("2 passed" if POSTGRES_AVAILABLE else "1 passed, 1 skipped") in result.stdout, output


# ------------------------------------------------------------------ mail backends


def mail_backend(backend: str) -> override_settings:
    """The default mailer set to ``backend``: ``MAILERS`` from Django 6.1, ``EMAIL_BACKEND`` before."""
    path = f"django.core.mail.backends.{backend}.EmailBackend"
    if hasattr(mail, "mailers"):
        return override_settings(MAILERS={"default": {"BACKEND": path}})
    return override_settings(EMAIL_BACKEND=path)


def _console_lines(output: str) -> list[str]:
    """The console backend's output without the headers that differ per message."""
    return [line for line in output.splitlines() if not line.startswith(("Date:", "Message-ID:"))]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
@pytest.mark.parametrize("backend", ["locmem", "console"])
def test_mail_backends_send_as_bare_and_the_side_effect_is_the_same(
    alias: str, backend: str, connect: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    connect(post_save, _mail_on_save, sender=Item)

    def scenario() -> Any:
        capsys.readouterr()
        with mail_backend(backend), transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="a")
        outbox = [(m.subject, m.to) for m in mail.outbox]
        return outbox, _console_lines(capsys.readouterr().out), item_names(alias)

    bare, recorded, trace = bare_then_recorded(scenario, aliases=[alias])
    assert recorded == bare
    outbox, printed, rows = recorded
    assert rows == ["a"]
    if backend == "locmem":
        assert (outbox, printed) == ([("Welcome", ["a@example.com"])], [])
    else:
        assert outbox == [] and "Subject: Welcome" in printed and "To: a@example.com" in printed
    [effect] = trace.side_effects
    assert (effect.kind, effect.what) == ("email", "'Welcome' to 1 recipient")
    assert effect.transaction == Transaction(alias, True, 1, False, "committed")
    assert [hazard.kind for hazard in trace.hazards] == [MAIL_BEFORE_COMMIT]


# ------------------------------------------------------------------ on_commit callbacks


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_robust_callback_that_raises_is_django_s_to_log_and_the_next_one_runs(
    alias: str, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise LookupError("callback failed")

    def register(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
        transaction.on_commit(broken, using=using, robust=True)
        transaction.on_commit(partial(ran.append, instance.name), using=using)

    connect(post_save, register, sender=Item)

    def scenario() -> Any:
        ran.clear()
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="django.db.backends.base"):
            with transaction.atomic(using=alias):
                Item.objects.using(alias).create(name="a")
        logged = [(r.getMessage(), type(r.exc_info[1]).__name__) for r in caplog.records]
        return list(ran), item_names(alias), logged

    bare, recorded, trace = bare_then_recorded(scenario, aliases=[alias])
    # Django's own log line, word for word (its wording varies with the version): the
    # stand-in that times the callback passes on the callback's name.
    assert recorded == bare
    ran_after, rows, [(message, error)] = recorded
    assert (ran_after, rows, error) == (["a"], ["a"], "LookupError")
    assert message.startswith(f"Error calling {broken.__qualname__} in on_commit()")
    assert message.endswith("(callback failed).")
    failed, after = trace.on_commit_callbacks
    assert (failed.fate, failed.robust, type(failed.exception)) == ("ran", True, LookupError)
    assert (after.fate, after.robust, after.exception) == ("ran", False, None)
    assert failed.transaction == after.transaction == Transaction(alias, True, 1, False, "committed")


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_callback_that_raises_after_the_commit_leaves_the_transaction_committed(
    alias: str, connect: Any
) -> None:
    def broken() -> None:
        raise LookupError("callback failed")

    def register(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
        transaction.on_commit(broken, using=using)

    connect(post_save, register, sender=Item)

    def scenario() -> Any:
        try:
            with transaction.atomic(using=alias):
                Item.objects.using(alias).create(name="kept")
        except LookupError as error:
            return str(error), item_names(alias)
        return None, item_names(alias)

    bare, recorded, trace = bare_then_recorded(scenario, aliases=[alias])
    # Django raises the callback's error out of the block, after the commit: the row stays.
    assert recorded == bare == ("callback failed", ["kept"])
    [save] = saves(trace)
    assert save.transaction == Transaction(alias, True, 1, False, "committed")
    [callback] = trace.on_commit_callbacks
    assert (callback.fate, type(callback.exception)) == ("ran", LookupError)


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_receivers_register_callbacks_at_two_depths_and_the_savepoint_rolls_back(
    alias: str, connect: Any
) -> None:
    ran: list[str] = []
    connect(post_save, _register_on_save(ran), sender=Item)

    def scenario() -> Any:
        ran.clear()
        with transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="outer")
            with pytest.raises(Undo), transaction.atomic(using=alias):
                Item.objects.using(alias).create(name="savepoint")
                raise Undo
            Item.objects.using(alias).create(name="after")
        return list(ran), item_names(alias)

    bare, recorded, trace = bare_then_recorded(scenario, aliases=[alias])
    assert recorded == bare == (["outer", "after"], ["after", "outer"])
    outcomes = [(c.fate, c.transaction.depth, c.transaction.outcome) for c in trace.on_commit_callbacks]
    assert outcomes == [("ran", 1, "committed"), ("discarded", 2, "rolled back"), ("ran", 1, "committed")]
    assert [c.receiver for c in trace.on_commit_callbacks] == [save.calls[0] for save in saves(trace)]


class _Fates(DispatchObserver):
    """Every ``on_commit`` fate a live observer is told, by callback name."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []

    def found(self, finding: Any) -> None:
        if isinstance(finding, OnCommitCallback):
            self.told.append((finding.callback.rsplit(".", 1)[-1], finding.fate))


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_callback_that_registers_another_in_a_block_of_its_own(alias: str) -> None:
    """The second callback runs when the callback's own block commits, inside the first."""
    ran: list[str] = []

    def second() -> None:
        ran.append("second")

    def first() -> None:
        ran.append("first")
        with transaction.atomic(using=alias):
            transaction.on_commit(second, using=alias)
        ran.append("first done")

    def scenario() -> Any:
        ran.clear()
        with transaction.atomic(using=alias):
            transaction.on_commit(first, using=alias)
        return list(ran)

    observer = _Fates()
    add_observer(observer)
    try:
        bare, recorded, trace = bare_then_recorded(scenario, aliases=[alias])
    finally:
        remove_observer(observer)
    assert recorded == bare == ["first", "second", "first done"]
    assert [(c.callback.rsplit(".", 1)[-1], c.fate) for c in trace.on_commit_callbacks] == [
        ("first", "ran"),
        ("second", "ran"),
    ]
    assert observer.told == [("first", "pending"), ("second", "pending"), ("second", "ran"), ("first", "ran")]
