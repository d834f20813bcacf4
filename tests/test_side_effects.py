"""Side effects that escape a transaction, and writes that send no signals (records API).

Every test runs on SQLite and on PostgreSQL (``tests/databases.py``), with real commits.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from celery import Celery
from django.core import mail
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models.signals import post_save, pre_save

import signaltrace
from signaltrace.core import BYPASSED_WRITE, MAIL_BEFORE_COMMIT, TASK_BEFORE_COMMIT
from tests.databases import DATABASE_ALIASES, close_thread_connections
from tests.testapp.models import Item, Ping

celery_app = Celery("signaltrace_tests", broker="memory://", set_as_current=False)


@celery_app.task(name="tests.notify_item")
def notify_item(pk: int) -> int:
    return pk


def _mail_on_save(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    mail.send_mail("Welcome <b>!", "body", "from@example.com", ["a@example.com", "b@example.com"])


def _publish_on_save(sender: Any, instance: Any, **kwargs: Any) -> None:
    notify_item.delay(instance.pk)


def _publish_on_commit(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
    if using == DEFAULT_DB_ALIAS:
        notify_item.delay_on_commit(instance.pk)
    else:  # Celery's delay_on_commit() waits for the default database's commit only
        transaction.on_commit(partial(notify_item.delay, instance.pk), using=using)


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_mail_sent_by_a_receiver_inside_a_transaction_is_a_hazard(alias: str, connect: Any) -> None:
    connect(post_save, _mail_on_save, sender=Item)
    with signaltrace.record() as trace:
        with pytest.raises(ValueError):
            with transaction.atomic(using=alias):
                Item.objects.using(alias).create(name="a")
                raise ValueError("roll back")
    assert len(mail.outbox) == 1  # the mail went out for a row that is gone
    assert not Item.objects.using(alias).exists()
    [effect] = trace.side_effects
    assert effect.kind == "email" and effect.what == "'Welcome <b>!' to 2 recipients"
    # What outlives the request (the panel's store) names neither the addresses nor the subject.
    stored = repr(trace.to_dict())
    assert "a@example.com" not in stored and "Welcome" not in stored
    assert trace.to_dict()["side_effects"][0]["label"] == "an e-mail to 2 recipients"
    assert effect.transaction.rolled_back and effect.transaction.alias == alias
    [hazard] = trace.hazards
    line = _mail_on_save.__code__.co_firstlineno + 1  # the send_mail line
    assert hazard.kind == MAIL_BEFORE_COMMIT
    assert hazard.place.endswith(f"test_side_effects.py:{line}")
    assert "_mail_on_save" in hazard.message and "rolled back" in hazard.message
    assert "transaction.on_commit" in hazard.message  # the fix
    assert trace.dispatches[-1].calls[0].side_effects == [effect]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_mail_in_autocommit_is_a_side_effect_but_no_hazard(alias: str, connect: Any) -> None:
    connect(post_save, _mail_on_save, sender=Item)
    with signaltrace.record() as trace:
        Item.objects.using(alias).create(name="a")
    assert [e.in_transaction for e in trace.side_effects] == [False]
    assert trace.hazards == []
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_mail_outside_receivers_is_not_recorded(alias: str) -> None:
    with signaltrace.record() as trace:
        with transaction.atomic(using=alias):
            mail.send_mail("s", "b", "f@example.com", ["t@example.com"])
    assert trace.side_effects == [] and len(mail.outbox) == 1


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_celery_task_published_inside_a_transaction_is_a_hazard(alias: str, connect: Any) -> None:
    connect(post_save, _publish_on_save, sender=Item)
    with signaltrace.record() as trace:
        with transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="a")
    [hazard] = trace.hazards
    assert hazard.kind == TASK_BEFORE_COMMIT
    assert "tests.notify_item" in hazard.message
    # The fix: delay_on_commit waits for the default database's commit only.
    fix = "delay_on_commit" if alias == "default" else f"on_commit(partial(task.delay, ...), using={alias!r})"
    assert fix in hazard.message
    assert "committed" in hazard.message and repr(alias) in hazard.message


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_delay_on_commit_is_the_fix(alias: str, connect: Any) -> None:
    connect(post_save, _publish_on_commit, sender=Item)
    with signaltrace.record() as trace:
        with transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="a")
    assert trace.hazards == []
    [callback] = trace.on_commit_callbacks
    assert callback.callback == "tests.notify_item.delay" and callback.fate == "ran"
    assert callback.alias == alias
    assert trace.side_effects == []  # published after the commit, by the callback, outside receivers


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_bulk_create_on_a_model_with_save_receivers_is_a_hazard(alias: str, connect: Any) -> None:
    ran = []
    connect(post_save, lambda sender, **kwargs: ran.append(1), sender=Item)
    with signaltrace.record() as trace:
        Item.objects.using(alias).bulk_create([Item(name="a"), Item(name="b"), Item(name="c")])
    assert ran == [] and Item.objects.using(alias).count() == 3
    [write] = trace.bypassed_writes
    assert (write.model, write.operation, write.rows) == ("testapp.Item", "bulk_create", 3)
    assert write.location.endswith("test_side_effects.py:" + str(_line_of('bulk_create([Item(name="a")')))
    assert [r.signal for r in write.receivers] == ["post_save"]
    [hazard] = trace.hazards
    assert hazard.kind == BYPASSED_WRITE and "bulk_create of 3 testapp.Item rows" in hazard.message


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_bulk_update_is_one_write_and_update_counts_rows(alias: str, connect: Any) -> None:
    connect(pre_save, lambda sender, **kwargs: None, sender=Item)
    items = [Item.objects.using(alias).create(name=str(n)) for n in range(3)]
    for item in items:
        item.name = "x"
    with signaltrace.record() as trace:
        assert Item.objects.using(alias).bulk_update(items, ["name"]) == 3
        assert Item.objects.using(alias).filter(name="x").update(name="y") == 3
    assert [(w.operation, w.rows) for w in trace.bypassed_writes] == [("bulk_update", 3), ("update", 3)]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
async def test_async_twins_are_seen(alias: str, connect: Any) -> None:
    connect(post_save, lambda sender, **kwargs: None, sender=Item)
    with signaltrace.record() as trace:
        await Item.objects.using(alias).abulk_create([Item(name="a")])
        await Item.objects.using(alias).filter(name="a").aupdate(name="b")
    await sync_to_async(close_thread_connections)()  # the executor thread's connection
    assert [w.operation for w in trace.bypassed_writes] == ["bulk_create", "update"]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_models_without_save_receivers_are_not_reported(alias: str) -> None:
    with signaltrace.record() as trace:
        Ping.objects.using(alias).bulk_create([Ping()])
        Ping.objects.using(alias).update(counter=1)
    assert trace.bypassed_writes == []


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_nothing_is_kept_outside_record(alias: str, connect: Any) -> None:
    connect(post_save, _mail_on_save, sender=Item)
    with transaction.atomic(using=alias):
        Item.objects.using(alias).create(name="a")
        Item.objects.using(alias).bulk_create([Item(name="b")])
    with signaltrace.record() as trace:
        pass
    assert trace.side_effects == [] and trace.bypassed_writes == []
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_receiver_in_sync_to_async_keeps_its_transaction(alias: str, connect: Any) -> None:
    """An async view saving through ``sync_to_async(thread_sensitive=True)``."""
    connect(post_save, _mail_on_save, sender=Item)

    def save_in_a_block() -> None:
        with transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="a")
        close_thread_connections()  # this thread's own connection

    async def view() -> None:
        await sync_to_async(save_in_a_block, thread_sensitive=True)()

    import asyncio

    with signaltrace.record() as trace:
        asyncio.run(view())
    [hazard] = trace.hazards
    assert hazard.kind == MAIL_BEFORE_COMMIT and "committed" in hazard.message
    assert hazard.finding.transaction.alias == alias


def _line_of(text: str) -> int:
    with open(__file__, encoding="utf-8") as source:
        return next(
            number for number, line in enumerate(source, 1) if text in line and "_line_of" not in line
        )


def test_the_bulk_write_wrappers_keep_django_s_marks() -> None:
    from django.db.models.query import QuerySet
    from django.template import Context, Template

    signaltrace.install()
    for name in ("bulk_create", "bulk_update", "update"):
        method = getattr(QuerySet, name)
        assert method.__wrapped__ is not method  # signaltrace's wrapper is in place
        # Django's marks, whichever it sets (4.2 marks fewer of these methods than 5.x).
        assert method.__dict__.keys() - {"__wrapped__"} == method.__wrapped__.__dict__.keys()
    assert QuerySet.update.alters_data is True  # on every supported Django
    # So a template still refuses to call update(), as Django's own method makes it.
    rendered = Template("{{ items.update }}").render(Context({"items": Item.objects.all()}))
    assert rendered == ""
