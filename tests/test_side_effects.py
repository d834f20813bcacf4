"""Side effects that escape a transaction, and writes that send no signals (records API)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from celery import Celery
from django.core import mail
from django.db import connections, transaction
from django.db.models.signals import post_save, pre_save

import signaltrace
from signaltrace.core import BYPASSED_WRITE, MAIL_BEFORE_COMMIT, TASK_BEFORE_COMMIT
from tests.testapp.models import Item, Ping

pytestmark = pytest.mark.django_db(transaction=True)

celery_app = Celery("signaltrace_tests", broker="memory://", set_as_current=False)


@celery_app.task(name="tests.notify_item")
def notify_item(pk: int) -> int:
    return pk


def _mail_on_save(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    mail.send_mail("Welcome <b>!", "body", "from@example.com", ["a@example.com", "b@example.com"])


def _publish_on_save(sender: Any, instance: Any, **kwargs: Any) -> None:
    notify_item.delay(instance.pk)


def _publish_on_commit(sender: Any, instance: Any, **kwargs: Any) -> None:
    notify_item.delay_on_commit(instance.pk)


def test_mail_sent_by_a_receiver_inside_a_transaction_is_a_hazard(connect: Any) -> None:
    connect(post_save, _mail_on_save, sender=Item)
    with signaltrace.record() as trace:
        with pytest.raises(ValueError):
            with transaction.atomic():
                Item.objects.create(name="a")
                raise ValueError("roll back")
    assert len(mail.outbox) == 1  # the mail went out for a row that is gone
    assert not Item.objects.exists()
    [effect] = trace.side_effects
    assert effect.kind == "email" and effect.what == "'Welcome <b>!' to 2 recipients"
    assert "a@example.com" not in repr(trace.to_dict())
    assert effect.transaction.rolled_back
    [hazard] = trace.hazards
    line = _mail_on_save.__code__.co_firstlineno
    assert hazard.kind == MAIL_BEFORE_COMMIT
    assert hazard.place.endswith(f"test_side_effects.py:{line}")
    assert "_mail_on_save" in hazard.message and "rolled back" in hazard.message
    assert "transaction.on_commit" in hazard.message  # the fix
    assert trace.dispatches[-1].calls[0].side_effects == [effect]


def test_mail_in_autocommit_is_a_side_effect_but_no_hazard(connect: Any) -> None:
    connect(post_save, _mail_on_save, sender=Item)
    with signaltrace.record() as trace:
        Item.objects.create(name="a")
    assert [e.in_transaction for e in trace.side_effects] == [False]
    assert trace.hazards == []


def test_mail_outside_receivers_is_not_recorded() -> None:
    with signaltrace.record() as trace:
        with transaction.atomic():
            mail.send_mail("s", "b", "f@example.com", ["t@example.com"])
    assert trace.side_effects == [] and len(mail.outbox) == 1


def test_a_celery_task_published_inside_a_transaction_is_a_hazard(connect: Any) -> None:
    connect(post_save, _publish_on_save, sender=Item)
    with signaltrace.record() as trace:
        with transaction.atomic():
            Item.objects.create(name="a")
    [hazard] = trace.hazards
    assert hazard.kind == TASK_BEFORE_COMMIT
    assert "tests.notify_item" in hazard.message and "delay_on_commit" in hazard.message
    assert "committed" in hazard.message


def test_delay_on_commit_is_the_fix(connect: Any) -> None:
    connect(post_save, _publish_on_commit, sender=Item)
    with signaltrace.record() as trace:
        with transaction.atomic():
            Item.objects.create(name="a")
    assert trace.hazards == []
    [callback] = trace.on_commit_callbacks
    assert callback.callback == "tests.notify_item.delay" and callback.fate == "ran"
    assert trace.side_effects == []  # published after the commit, by the callback, outside receivers


def test_bulk_create_on_a_model_with_save_receivers_is_a_hazard(connect: Any) -> None:
    ran = []
    connect(post_save, lambda sender, **kwargs: ran.append(1), sender=Item)
    with signaltrace.record() as trace:
        Item.objects.bulk_create([Item(name="a"), Item(name="b"), Item(name="c")])
    assert ran == [] and Item.objects.count() == 3
    [write] = trace.bypassed_writes
    assert (write.model, write.operation, write.rows) == ("testapp.Item", "bulk_create", 3)
    assert write.location.endswith("test_side_effects.py:" + str(_line_of('bulk_create([Item(name="a")')))
    assert [r.signal for r in write.receivers] == ["post_save"]
    [hazard] = trace.hazards
    assert hazard.kind == BYPASSED_WRITE and "bulk_create of 3 testapp.Item rows" in hazard.message


def test_bulk_update_is_one_write_and_update_counts_rows(connect: Any) -> None:
    connect(pre_save, lambda sender, **kwargs: None, sender=Item)
    items = [Item.objects.create(name=str(n)) for n in range(3)]
    for item in items:
        item.name = "x"
    with signaltrace.record() as trace:
        assert Item.objects.bulk_update(items, ["name"]) == 3
        assert Item.objects.filter(name="x").update(name="y") == 3
    assert [(w.operation, w.rows) for w in trace.bypassed_writes] == [("bulk_update", 3), ("update", 3)]


async def test_async_twins_are_seen(connect: Any) -> None:
    connect(post_save, lambda sender, **kwargs: None, sender=Item)
    with signaltrace.record() as trace:
        await Item.objects.abulk_create([Item(name="a")])
        await Item.objects.filter(name="a").aupdate(name="b")
    await sync_to_async(connections.close_all)()  # the executor thread's connection
    assert [w.operation for w in trace.bypassed_writes] == ["bulk_create", "update"]


def test_models_without_save_receivers_are_not_reported() -> None:
    with signaltrace.record() as trace:
        Ping.objects.bulk_create([Ping()])
        Ping.objects.update(counter=1)
    assert trace.bypassed_writes == []


def test_nothing_is_kept_outside_record(connect: Any) -> None:
    connect(post_save, _mail_on_save, sender=Item)
    with transaction.atomic():
        Item.objects.create(name="a")
        Item.objects.bulk_create([Item(name="b")])
    with signaltrace.record() as trace:
        pass
    assert trace.side_effects == [] and trace.bypassed_writes == []


def test_a_receiver_in_sync_to_async_keeps_its_transaction(connect: Any) -> None:
    """An async view saving through ``sync_to_async(thread_sensitive=True)``."""
    connect(post_save, _mail_on_save, sender=Item)

    def save_in_a_block() -> None:
        with transaction.atomic():
            Item.objects.create(name="a")
        connections.close_all()  # this thread's own connection

    async def view() -> None:
        await sync_to_async(save_in_a_block, thread_sensitive=True)()

    import asyncio

    with signaltrace.record() as trace:
        asyncio.run(view())
    [hazard] = trace.hazards
    assert hazard.kind == MAIL_BEFORE_COMMIT and "committed" in hazard.message


def _line_of(text: str) -> int:
    with open(__file__, encoding="utf-8") as source:
        return next(
            number for number, line in enumerate(source, 1) if text in line and "_line_of" not in line
        )
