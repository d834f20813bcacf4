"""The loop guard, through the real ORM on SQLite: loops stopped, cascades left alone."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import Signal
from django.test import override_settings

import signaltrace
from signaltrace.core import loops
from tests.locations import where
from tests.markers import needs_asend
from tests.testapp.models import Item, Node, Ping, Pong

pytestmark = pytest.mark.django_db

calls: dict[str, int] = {}


def _count(name: str) -> None:
    calls[name] = calls.get(name, 0) + 1


# ------------------------------------------------------------------- receivers


def ping_saved(sender: Any, instance: Ping, **kwargs: Any) -> None:
    _count("ping_saved")
    Pong(pk=instance.pk, counter=instance.counter).save()


def pong_saved(sender: Any, instance: Pong, **kwargs: Any) -> None:
    _count("pong_saved")
    Ping(pk=instance.pk, counter=instance.counter + 1).save()


def resave(sender: Any, instance: Item, **kwargs: Any) -> None:
    _count("resave")
    instance.save()


def resave_guarded_by_update_fields(sender: Any, instance: Item, update_fields: Any, **kwargs: Any) -> None:
    _count("guarded")
    if update_fields and "name" in update_fields:
        return
    instance.name = instance.name.upper()
    instance.save(update_fields=["name"])


def resave_guarded_by_flag(sender: Any, instance: Item, **kwargs: Any) -> None:
    _count("flagged")
    if getattr(instance, "_resaving", False):
        return
    instance._resaving = True
    try:
        instance.name = f"{instance.name}!"
        instance.save()
    finally:
        instance._resaving = False


def bounded_resave(sender: Any, instance: Ping, **kwargs: Any) -> None:
    _count("bounded")
    if instance.counter < 6:
        instance.counter += 1
        instance.save()


def count_in_parent(sender: Any, instance: Node, **kwargs: Any) -> None:
    _count("cascade")
    if instance.parent_id is not None:
        parent = Node.objects.get(pk=instance.parent_id)
        parent.children_count += 1
        parent.save()


chime = Signal()


def chime_again(sender: Any, **kwargs: Any) -> None:
    _count("chime_again")
    chime.send(sender=sender)


tick = Signal()


async def tick_again(sender: Any, **kwargs: Any) -> None:
    _count("tick_again")
    await tick.asend(sender=sender)


step = Signal()


def walk(sender: Any, instance: Node, **kwargs: Any) -> None:
    """A custom signal used recursively on purpose, over different instances."""
    _count("walk")
    if instance.parent_id is not None:
        step.send(sender=Node, instance=Node.objects.get(pk=instance.parent_id))


outer = Signal()


def outer_saves_item(sender: Any, item: Item, **kwargs: Any) -> None:
    item.save()


# -------------------------------------------------------------------- fixtures


@contextmanager
def connected(signal: Signal, receiver: Any, sender: Any = None) -> Iterator[None]:
    signal.connect(receiver, sender=sender, dispatch_uid=f"test_loops.{receiver.__name__}")
    try:
        yield
    finally:
        signal.disconnect(receiver, sender=sender, dispatch_uid=f"test_loops.{receiver.__name__}")


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    signaltrace.install()
    calls.clear()
    loops._warned.clear()
    yield
    calls.clear()


@pytest.fixture
def ping_pong() -> Iterator[None]:
    with connected(post_save, ping_saved, Ping), connected(post_save, pong_saved, Pong):
        yield


# ------------------------------------------------------------------------ loops


def test_ping_pong_is_stopped_within_two_cycles(ping_pong: None) -> None:
    with pytest.raises(signaltrace.SignalLoopError) as caught:
        Ping.objects.create()
    assert isinstance(caught.value, RuntimeError)
    assert calls == {"ping_saved": 2, "pong_saved": 2}


def test_loop_message_prints_one_turn_of_the_cycle(ping_pong: None) -> None:
    ping = Ping(counter=0)
    with pytest.raises(signaltrace.SignalLoopError) as caught:
        ping.save()
    pk = ping.pk
    assert str(caught.value) == (
        f"Signal loop detected: post_save(testapp.Ping #{pk}) -> "
        f"tests.test_loops.ping_saved ({where(ping_saved)}) -> post_save(testapp.Pong #{pk}) -> "
        f"tests.test_loops.pong_saved ({where(pong_saved)}) -> post_save(testapp.Ping #{pk})"
    )
    cycle = caught.value.cycle
    assert [(s.signal_name, s.instance, s.receiver_name) for s in cycle] == [
        ("post_save", f"testapp.Ping #{pk}", "tests.test_loops.ping_saved"),
        ("post_save", f"testapp.Pong #{pk}", "tests.test_loops.pong_saved"),
        ("post_save", f"testapp.Ping #{pk}", None),
    ]
    assert cycle[0].file == ping_saved.__code__.co_filename
    assert cycle[0].line == ping_saved.__code__.co_firstlineno
    assert caught.value.loop.action == "raised"


def test_self_resave_is_stopped() -> None:
    with connected(post_save, resave, Item), pytest.raises(signaltrace.SignalLoopError) as caught:
        item = Item.objects.create(name="a")
    item = Item.objects.get()
    assert calls == {"resave": 2}
    assert str(caught.value) == (
        f"Signal loop detected: post_save(testapp.Item #{item.pk}) -> "
        f"tests.test_loops.resave ({where(resave)}) -> post_save(testapp.Item #{item.pk})"
    )


def test_unsaved_instances_compare_by_identity() -> None:
    first, second = Item(name="x"), Item(name="x")
    assert loops._same_instance(first, first)
    assert not loops._same_instance(first, second)
    assert not loops._same_instance(first, None)
    assert loops._instance_label(first) == "testapp.Item (unsaved)"


def test_guarded_resave_with_update_fields_is_not_a_loop() -> None:
    with connected(post_save, resave_guarded_by_update_fields, Item), signaltrace.record() as trace:
        Item.objects.create(name="quiet")
    assert Item.objects.get().name == "QUIET"
    assert calls == {"guarded": 2}
    assert trace.loops == []
    saves = [d for d in trace.dispatches if d.signal_name == "post_save"]
    assert [d.depth for d in saves] == [0, 1]
    assert all(d.loop is None for d in trace.dispatches)


def test_guarded_resave_with_a_flag_is_not_a_loop() -> None:
    with connected(post_save, resave_guarded_by_flag, Item), signaltrace.record() as trace:
        Item.objects.create(name="flag")
    assert Item.objects.get().name == "flag!"
    assert calls == {"flagged": 2}
    assert trace.loops == []


def build_chain(length: int) -> Node:
    parent = None
    for level in range(length):
        parent = Node.objects.create(name=f"level {level}", parent=parent)
    assert parent is not None
    return parent


@pytest.mark.parametrize("max_reentries", [1, 2])
def test_tree_cascade_over_different_instances_is_never_flagged(max_reentries: int) -> None:
    leaf = build_chain(13)
    with (
        override_settings(SIGNALTRACE={"ENABLED": True, "LOOP_MAX_REENTRIES": max_reentries}),
        connected(post_save, count_in_parent, Node),
        signaltrace.record() as trace,
    ):
        leaf.save()
    assert calls == {"cascade": 13}
    saves = [d for d in trace.dispatches if d.signal_name == "post_save"]
    assert [d.depth for d in saves] == list(range(13))
    assert trace.loops == []
    assert list(Node.objects.order_by("pk").values_list("children_count", flat=True)) == [1] * 12 + [0]


def test_custom_signal_recursion_over_different_instances_is_not_a_loop() -> None:
    leaf = build_chain(13)
    with connected(step, walk), signaltrace.record() as trace:
        step.send(sender=Node, instance=leaf)
    assert calls == {"walk": 13}
    assert trace.loops == []


def test_custom_signal_repeating_its_receiver_path_is_a_loop() -> None:
    with connected(chime, chime_again), pytest.raises(signaltrace.SignalLoopError) as caught:
        chime.send(sender="lab")
    assert calls == {"chime_again": 2}
    name = "tests.test_loops.chime"
    assert str(caught.value) == (
        f"Signal loop detected: {name}('lab') -> tests.test_loops.chime_again ({where(chime_again)}) "
        f"-> {name}('lab')"
    )


@needs_asend
async def test_async_custom_signal_loop_is_stopped() -> None:
    with connected(tick, tick_again), pytest.raises(signaltrace.SignalLoopError) as caught:
        await tick.asend(sender="lab")
    assert calls == {"tick_again": 2}
    assert [step.receiver_name for step in caught.value.cycle] == ["tests.test_loops.tick_again", None]


@needs_asend
def test_async_custom_signal_loop_is_stopped_from_sync_send() -> None:
    with connected(tick, tick_again), signaltrace.record() as trace:
        with pytest.raises(signaltrace.SignalLoopError):
            tick.send(sender="lab")
    assert calls == {"tick_again": 2}
    assert len(trace.loops) == 1


def test_loop_is_recorded_in_the_trace_and_serializable(ping_pong: None) -> None:
    with signaltrace.record() as trace, pytest.raises(signaltrace.SignalLoopError) as caught:
        Ping.objects.create()
    assert trace.loops == [caught.value.loop]
    stopped = [d for d in trace.dispatches if d.loop is not None]
    assert len(stopped) == 1
    assert stopped[0].calls == []
    assert stopped[0].depth == 4
    data = json.loads(json.dumps(trace.to_dict()))
    assert data["loops"][0]["action"] == "raised"
    assert data["loops"][0]["message"] == str(caught.value)
    assert [step["receiver"] for step in data["loops"][0]["cycle"]] == [
        "tests.test_loops.ping_saved",
        "tests.test_loops.pong_saved",
        None,
    ]
    assert [d["loop"] is not None for d in data["dispatches"]].count(True) == 1


def test_loop_is_detected_when_not_recording(ping_pong: None) -> None:
    assert not signaltrace.is_recording()
    with pytest.raises(signaltrace.SignalLoopError):
        Ping.objects.create()


def test_warn_policy_logs_once_and_lets_the_loop_run(caplog: pytest.LogCaptureFixture) -> None:
    with (
        override_settings(SIGNALTRACE={"ENABLED": True, "LOOP_POLICY": "warn"}),
        connected(post_save, bounded_resave, Ping),
        caplog.at_level(logging.WARNING, logger="signaltrace"),
        signaltrace.record() as trace,
    ):
        Ping.objects.create(counter=0)
        Ping.objects.create(counter=3)
    assert list(Ping.objects.order_by("pk").values_list("counter", flat=True)) == [6, 6]
    assert calls == {"bounded": 7 + 4}
    messages = [r.getMessage() for r in caplog.records if r.name == "signaltrace"]
    assert len(messages) == 2  # one per instance: two distinct loops
    assert all(m.startswith("Signal loop detected: post_save(testapp.Ping #") for m in messages)
    assert [loop.action for loop in trace.loops] == ["warned", "warned"]
    assert json.loads(json.dumps(trace.to_dict()))["loops"][0]["action"] == "warned"


def test_warn_policy_logs_once_per_process_for_the_same_loop(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loops, "_warned", set())  # "once per process": start this test's process afresh
    ping = Ping.objects.create(counter=0)
    with (
        override_settings(SIGNALTRACE={"ENABLED": True, "LOOP_POLICY": "warn"}),
        connected(post_save, bounded_resave, Ping),
        caplog.at_level(logging.WARNING, logger="signaltrace"),
    ):
        for _ in range(3):
            ping.counter = 0
            ping.save()
    assert len([r for r in caplog.records if r.name == "signaltrace"]) == 1


def test_loop_swallowed_by_send_robust_is_stopped_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    item = Item.objects.create(name="robust")
    with (
        connected(post_save, resave, Item),
        connected(outer, outer_saves_item),
        caplog.at_level(logging.WARNING, logger="signaltrace"),
        signaltrace.record() as trace,
    ):
        responses = outer.send_robust(sender=None, item=item)
    assert isinstance(responses[0][1], signaltrace.SignalLoopError)
    assert calls == {"resave": 2}
    assert any(
        "swallowed by send_robust" in r.getMessage() for r in caplog.records if r.name == "signaltrace"
    )
    assert trace.loops[0].swallowed
    assert trace.to_dict()["loops"][0]["swallowed"] is True


def test_loop_error_comes_long_before_recursion_error(ping_pong: None) -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # Python's default
    try:
        signaltrace.uninstall()
        try:
            # Without signaltrace the same receivers recurse until Python gives up.
            with pytest.raises(RecursionError), transaction.atomic():
                Ping.objects.create()
        finally:
            signaltrace.install()
        assert calls["ping_saved"] > 10
        calls.clear()
        with pytest.raises(signaltrace.SignalLoopError) as caught:
            Ping.objects.create()
        depth = len(traceback.extract_tb(caught.value.__traceback__))
    finally:
        sys.setrecursionlimit(limit)
    assert calls == {"ping_saved": 2, "pong_saved": 2}
    assert depth < 250, depth


def test_guard_runs_only_for_nested_dispatches(monkeypatch: pytest.MonkeyPatch) -> None:
    from signaltrace.core import hooks

    checked: list[str] = []
    real_check = hooks.check_for_loop

    def spy(frame: list[Any], *args: Any) -> None:
        checked.append("chime" if frame[0] is chime else "other")
        real_check(frame, *args)

    monkeypatch.setattr(hooks, "check_for_loop", spy)
    with connected(outer, outer_sends_chime), connected(chime, quiet):
        outer.send(sender=None)
    assert checked == ["chime"]  # the top-level dispatch of outer was never checked


def outer_sends_chime(sender: Any, **kwargs: Any) -> None:
    chime.send(sender="nested")


def quiet(sender: Any, **kwargs: Any) -> None:
    return None


# ---------------------------------------------------------- never break the host


def test_a_loop_inside_send_robust_under_warnings_as_errors_returns_like_django() -> None:
    """``python -W error``: a loop stopped inside a receiver that ``send_robust`` called
    comes back in its results, as any receiver error does in bare Django."""
    import warnings

    item = Item.objects.create(name="robust")
    with (
        warnings.catch_warnings(),
        connected(post_save, resave, Item),
        connected(outer, outer_saves_item),
    ):
        warnings.simplefilter("error")
        responses = outer.send_robust(sender=None, item=item)
    assert [type(response) for _receiver, response in responses] == [signaltrace.SignalLoopError]


def test_the_warn_policy_under_warnings_as_errors_lets_the_loop_run() -> None:
    import warnings

    with (
        warnings.catch_warnings(),
        override_settings(SIGNALTRACE={"ENABLED": True, "LOOP_POLICY": "warn"}),
        connected(post_save, bounded_resave, Ping),
    ):
        warnings.simplefilter("error")
        Ping.objects.create(counter=0)
    assert calls == {"bounded": 7}
    assert Ping.objects.get().counter == 6


tree_walked = Signal()


class TreeNode:
    """A plain object (no model, no ``instance=`` kwarg): a tree walked level by level."""

    def __init__(self, level: int) -> None:
        self.level = level


def walk_down(sender: Any, node: TreeNode, **kwargs: Any) -> None:
    _count("walked")
    if node.level < 200:
        tree_walked.send(sender=sender, node=TreeNode(node.level + 1))


def test_a_deep_tree_of_different_objects_sent_as_any_kwarg_is_not_a_loop() -> None:
    """Each level sends its child as ``node=``: 200 levels, as bare Django goes."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))
    try:
        with connected(tree_walked, walk_down):
            tree_walked.send(sender=None, node=TreeNode(0))
    finally:
        sys.setrecursionlimit(limit)
    assert calls == {"walked": 201}


def resend_same_node(sender: Any, node: TreeNode, **kwargs: Any) -> None:
    _count("resent")
    tree_walked.send(sender=sender, node=node)


def test_the_same_kwargs_sent_again_through_the_same_receiver_is_still_a_loop() -> None:
    with connected(tree_walked, resend_same_node), pytest.raises(signaltrace.SignalLoopError) as caught:
        tree_walked.send(sender=None, node=TreeNode(0))
    assert calls == {"resent": 2}
    assert "tests.test_loops.resend_same_node" in str(caught.value)


lazy_changed = Signal()
lazy_loads: list[int] = []


def load_lazy_item() -> Item:
    lazy_loads.append(1)
    return Item.objects.get(name="lazy")


def resend_lazy(sender: Any, instance: Any, **kwargs: Any) -> None:
    from django.utils.functional import SimpleLazyObject

    _count("lazy")
    if calls["lazy"] < 4:
        lazy_changed.send(sender=sender, instance=SimpleLazyObject(load_lazy_item))


def test_the_guard_never_evaluates_a_lazy_object_or_runs_sql() -> None:
    """Nested dispatches with ``instance`` kwargs of one type (``SimpleLazyObject``, as
    request.user is): the guard compares them without reading ``.pk`` through the
    proxy, so none is evaluated, no SQL runs, and four levels run as in bare Django."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils.functional import SimpleLazyObject

    Item.objects.create(name="lazy")
    lazy_loads.clear()
    with connected(lazy_changed, resend_lazy), CaptureQueriesContext(connection) as queries:
        lazy_changed.send(sender=None, instance=SimpleLazyObject(load_lazy_item))
    assert calls == {"lazy": 4}
    assert lazy_loads == [] and len(queries) == 0
