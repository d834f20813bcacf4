"""Deletes that took Django's slow path because of delete receivers (signaltrace.core.deletes)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models.deletion import Collector
from django.db.models.signals import post_delete, pre_delete
from django.test.utils import CaptureQueriesContext

import signaltrace
from signaltrace.core import install_delete_watch, is_delete_watch_installed, uninstall_delete_watch
from tests.testapp.models import Item, Node

pytestmark = pytest.mark.django_db

HERE = __file__.removesuffix("c")


def forget_item(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A post_delete receiver: its presence alone turns off the fast path."""


def test_installed_by_the_app_when_enabled() -> None:
    assert is_delete_watch_installed()
    assert Collector.delete.__wrapped__ is not None


def test_queryset_delete_with_a_receiver_is_kept_with_rows_signals_and_receiver(connect) -> None:
    connect(post_delete, forget_item, sender=Item)
    Item.objects.bulk_create([Item(name=f"item {n}") for n in range(3)])
    with signaltrace.record() as trace:
        deleted, _ = Item.objects.all().delete()
    assert deleted == 3
    (slow,) = trace.slow_deletes
    assert slow.model == "testapp.Item"
    assert slow.instance_pk is None
    assert slow.rows == (("testapp.Item", 3),)
    assert slow.row_count == 3
    assert slow.signals_sent == 6
    (why,) = slow.receivers
    assert (why.signal, why.sender, why.receiver) == (
        "post_delete",
        "testapp.Item",
        f"{__name__}.forget_item",
    )
    assert why.file == HERE and why.line == forget_item.__code__.co_firstlineno
    assert why.location == f"{HERE}:{why.line}"
    assert slow.summary == "delete of testapp.Item: 3 testapp.Item; 6 signals"
    assert slow.duration_ns > 0 and slow.start_ns >= 0
    assert [d.signal_name for d in slow.dispatches if d.calls] == ["post_delete"] * 3
    assert trace.findings and trace.findings[0].start_ns != slow.start_ns  # raw clock there


def test_without_receivers_the_fast_path_is_taken_and_nothing_is_kept() -> None:
    Item.objects.bulk_create([Item(name=f"item {n}") for n in range(3)])
    with signaltrace.record() as trace, CaptureQueriesContext(connection) as queries:
        Item.objects.all().delete()
    assert trace.slow_deletes == []
    assert not any(q["sql"].startswith("SELECT") for q in queries.captured_queries)


def test_one_instance_delete_names_its_primary_key(connect) -> None:
    connect(pre_delete, forget_item, sender=Item)
    item = Item.objects.create(name="one")
    pk = item.pk
    with signaltrace.record() as trace:
        item.delete()
    (slow,) = trace.slow_deletes
    assert slow.instance_pk == str(pk)
    assert slow.summary == f"delete of testapp.Item #{pk}: 1 testapp.Item; 2 signals"
    assert slow.receivers[0].signal == "pre_delete"


def test_one_instance_without_receivers_keeps_nothing() -> None:
    item = Item.objects.create(name="one")
    with signaltrace.record() as trace:
        item.delete()
    assert trace.findings == []


def test_a_cascade_lists_every_model_and_only_the_receivers_that_forced_it(connect) -> None:
    """A ContentType cascades to its Permissions; a receiver on Permission forces them into memory."""
    connect(post_delete, forget_item, sender=Permission)
    kind = ContentType.objects.create(app_label="lab", model="thing")
    Permission.objects.create(content_type=kind, codename="a_thing", name="A")
    Permission.objects.create(content_type=kind, codename="b_thing", name="B")
    pk = kind.pk
    with signaltrace.record() as trace:
        kind.delete()
    (slow,) = trace.slow_deletes
    assert slow.model == "contenttypes.ContentType"
    assert dict(slow.rows) == {"contenttypes.ContentType": 1, "auth.Permission": 2}
    assert slow.signals_sent == 6
    assert [(r.signal, r.sender) for r in slow.receivers] == [("post_delete", "auth.Permission")]
    assert slow.summary.startswith(f"delete of contenttypes.ContentType #{pk}: ")


def test_a_self_cascade_counts_every_row(connect) -> None:
    connect(post_delete, forget_item, sender=Node)
    root = Node.objects.create(name="root")
    Node.objects.create(name="a", parent=root)
    Node.objects.create(name="b", parent=root)
    with signaltrace.record() as trace:
        root.delete()
    (slow,) = trace.slow_deletes
    assert slow.rows == (("testapp.Node", 3),)
    assert len([d for d in slow.dispatches if d.signal_name == "post_delete"]) == 3


def test_idle_deletes_keep_nothing_and_work(connect) -> None:
    connect(post_delete, forget_item, sender=Item)
    Item.objects.bulk_create([Item(name="x"), Item(name="y")])
    assert Item.objects.all().delete() == (2, {"testapp.Item": 2})
    with signaltrace.record() as trace:
        pass
    assert trace.findings == []


def test_nested_blocks_both_keep_it_and_to_dict_is_json(connect) -> None:
    connect(post_delete, forget_item, sender=Item)
    Item.objects.create(name="x")
    with signaltrace.record() as outer:
        with signaltrace.record() as inner:
            Item.objects.all().delete()
    assert len(outer.slow_deletes) == len(inner.slow_deletes) == 1
    data = json.loads(json.dumps(outer.to_dict()))
    (entry,) = data["slow_deletes"]
    assert entry["model"] == "testapp.Item"
    assert entry["rows"] == [{"model": "testapp.Item", "count": 1}]
    assert entry["receivers"][0]["receiver"] == f"{__name__}.forget_item"
    signals = [data["dispatches"][number]["signal"] for number in entry["dispatches"]]
    assert signals == ["pre_delete", "post_delete"]


def test_a_delete_that_fails_is_still_kept_and_the_error_raised(connect) -> None:
    def refuse(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("no")

    connect(pre_delete, refuse, sender=Item)
    Item.objects.create(name="x")
    with signaltrace.record() as trace, pytest.raises(RuntimeError), transaction.atomic():
        Item.objects.all().delete()
    assert len(trace.slow_deletes) == 1
    assert Item.objects.count() == 1


def test_install_and_uninstall_are_idempotent_and_restore_django() -> None:
    ours = Collector.delete
    django_delete = ours.__wrapped__
    try:
        install_delete_watch()
        assert Collector.delete is ours
        uninstall_delete_watch()
        uninstall_delete_watch()
        assert Collector.delete is django_delete
        assert not is_delete_watch_installed()
    finally:
        install_delete_watch()
    assert is_delete_watch_installed()


def test_the_ci_report_has_one_entry_per_slow_delete(connect) -> None:
    from signaltrace.testing.report import summarize

    connect(post_delete, forget_item, sender=Item)
    Item.objects.bulk_create([Item(name="x"), Item(name="y")])
    with signaltrace.record() as quiet:
        Item.objects.filter(name="nothing").count()
    assert "slow_deletes" not in summarize(quiet)
    with signaltrace.record() as trace:
        Item.objects.filter(name="x").delete()
        Item.objects.filter(name="y").delete()
    entries = json.loads(json.dumps(summarize(trace)))["slow_deletes"]
    assert [entry["summary"] for entry in entries] == [
        "delete of testapp.Item: 1 testapp.Item; 2 signals"
    ] * 2
    assert entries[0]["receivers"] == [
        {
            "signal": "post_delete",
            "sender": "testapp.Item",
            "receiver": f"{__name__}.forget_item",
            "location": f"{HERE}:{forget_item.__code__.co_firstlineno}",
        }
    ]
    assert entries[0]["rows"] == [{"model": "testapp.Item", "count": 1}]


def test_observers_hear_of_a_slow_delete_while_nothing_records(connect) -> None:
    heard: list[Any] = []

    class Listener(signaltrace.DispatchObserver):
        def found(self, finding: Any) -> None:
            heard.append(finding)

    listener = Listener()
    connect(post_delete, forget_item, sender=Item)
    Item.objects.bulk_create([Item(name=f"item {n}") for n in range(2)])
    signaltrace.add_observer(listener)
    try:
        Item.objects.all().delete()
    finally:
        signaltrace.remove_observer(listener)
    (slow,) = heard
    assert isinstance(slow, signaltrace.SlowDelete)
    assert slow.rows == (("testapp.Item", 2),) and slow.signals_sent == 4
    Item.objects.create(name="after")
    Item.objects.all().delete()  # the observer is gone: nothing more is heard
    assert len(heard) == 1
