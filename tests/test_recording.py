"""record(): what a trace holds, as a user reads it."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal as os_signal
import threading
import time
import warnings
from typing import Any

import pytest
from django.db import connection
from django.db.models.signals import post_init, pre_init
from django.dispatch import Signal
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

import signaltrace
from signaltrace.core.observers import DispatchObserver, add_observer, remove_observer
from tests.markers import HAS_ASEND, needs_asend
from tests.testapp.models import Item
from tests.testapp.signals import item_viewed

order_paid = Signal()
order_shipped = Signal()


def on_paid(sender, **kwargs):
    order_shipped.send(sender=sender, carrier="post")
    return "paid"


def on_shipped(sender, **kwargs):
    return "shipped"


@pytest.fixture
def order_signals():
    order_paid.connect(on_paid)
    order_shipped.connect(on_shipped)
    yield
    order_paid.disconnect(on_paid)
    order_shipped.disconnect(on_shipped)


def test_nested_dispatches_have_depth_parent_and_order(order_signals):
    with signaltrace.record() as trace:
        order_paid.send(sender="shop", amount=10)
    paid, shipped = trace.dispatches
    assert (paid.signal_name, paid.depth, paid.parent) == ("tests.test_recording.order_paid", 0, None)
    assert paid.sender_name == "'shop'" and paid.kwargs == {"amount": "10"}
    assert [call.receiver_name for call in paid.calls] == ["tests.test_recording.on_paid"]
    call = paid.calls[0]
    assert call.file == __file__ and call.line == on_paid.__code__.co_firstlineno
    assert shipped.depth == 1 and shipped.parent is call and call.dispatches == [shipped]
    assert trace.roots == [paid]
    assert paid.duration_ns >= shipped.duration_ns > 0
    assert paid.start_ns <= shipped.start_ns


def test_dispatch_times_count_from_the_traces_origin_on_the_perf_clock():
    before_block = time.perf_counter_ns()
    with signaltrace.record() as trace:
        time.sleep(0.002)  # the dispatch starts well after the block did
        before_send = time.perf_counter_ns()
        item_viewed.send(sender=None)
        after_send = time.perf_counter_ns()
    (dispatch,) = trace.dispatches
    assert before_block <= trace.origin_perf_ns <= before_send - 2_000_000
    start = trace.origin_perf_ns + dispatch.start_ns
    assert before_send <= start <= start + dispatch.duration_ns <= after_send


def test_sends_with_no_receivers_are_recorded(db):
    nobody = Signal()
    with signaltrace.record() as trace:
        nobody.send(sender=None)
        Item.objects.create(name="x")  # pre_save/post_save of Item: no receivers
    names = [d.signal_name for d in trace.dispatches]
    assert names[0].startswith("Signal at")  # a local signal: not held by any module
    assert "pre_save" in names and "post_save" in names
    assert all(d.calls == [] for d in trace.dispatches)


def test_model_signals_name_the_sender_and_render_instances_without_sql(db):
    item = Item.objects.create(name="<b>x</b>")
    with signaltrace.record() as trace, CaptureQueriesContext(connection) as queries:
        item.save()
        rendered = trace.to_dict()
    assert len(queries) == 1  # the UPDATE; Item.__str__ (which queries) never ran
    post = next(d for d in trace.dispatches if d.signal_name == "post_save")
    assert post.sender_name == "testapp.Item"
    assert post.kwargs["instance"] == f"<testapp.Item pk={item.pk}>"
    assert post.kwargs["created"] == "False"
    json.dumps(rendered)


def test_query_count_of_a_request_is_identical_with_and_without_recording(client, db):
    with CaptureQueriesContext(connection) as bare:
        client.get("/items/create/")
    with signaltrace.record() as trace, CaptureQueriesContext(connection) as recorded:
        client.get("/items/create/")
    assert len(recorded) == len(bare)
    assert "tests.testapp.signals.item_viewed" in [d.signal_name for d in trace.dispatches]


def test_ignored_signals_are_not_recorded(db):
    Item.objects.create(name="a")
    seen = []

    def on_init(sender, **kwargs):
        seen.append(sender)

    post_init.connect(on_init, sender=Item)
    try:
        with signaltrace.record() as trace:
            rows = list(Item.objects.all())
    finally:
        post_init.disconnect(on_init, sender=Item)
    assert rows and seen == [Item] * len(rows)
    assert all(d.signal not in (pre_init, post_init) for d in trace.dispatches)


def test_sensitive_kwargs_are_redacted_everywhere():
    signal = Signal()
    signal.connect(on_shipped)
    with override_settings(SIGNALTRACE={"SENSITIVE_KWARGS": "iban"}), signaltrace.record() as trace:
        signal.send(sender=None, password="hunter2", api_token="t0k", user_iban="DE00", amount=3)
    kwargs = trace.dispatches[0].kwargs
    assert kwargs["amount"] == "3"
    for name in ("password", "api_token", "user_iban"):
        assert set(kwargs[name]) == {"*"}
    text = json.dumps(trace.to_dict())
    assert "hunter2" not in text and "t0k" not in text and "DE00" not in text


class Hostile:
    def __repr__(self):
        raise RuntimeError("no repr for you")

    def __str__(self):
        raise RuntimeError("no str either")


def test_hostile_reprs_never_break_the_app_and_are_not_called_by_default():
    signal = Signal()
    signal.connect(on_shipped)
    with signaltrace.record() as trace:
        assert signal.send(sender=Hostile(), payload=Hostile(), text="x" * 1000) == [(on_shipped, "shipped")]
    dispatch = trace.dispatches[0]
    assert dispatch.kwargs["payload"] == "<tests.test_recording.Hostile object>"
    assert dispatch.sender is None  # the sender was a temporary, weakly held
    assert dispatch.sender_name == "<tests.test_recording.Hostile object>"  # as while it lived
    assert len(dispatch.kwargs["text"]) <= 200 and dispatch.kwargs["text"].endswith("…")
    with override_settings(SIGNALTRACE={"REPR_OBJECTS": True}), signaltrace.record() as trace:
        signal.send(sender=None, payload=Hostile())
    assert trace.dispatches[0].kwargs["payload"].startswith("<unrepresentable Hostile: RuntimeError")


def test_records_leave_no_garbage_cycles_behind(order_signals):
    """Records point from child to parent only: dropping a trace frees them at once,
    with nothing left for the garbage collector (a host pays nothing later for them).

    Receivers that raise are left out: an exception's traceback holds the dispatching
    frame, whose locals hold the exception (Django's own ``send_robust`` makes that cycle).
    """
    observer = DispatchObserver()
    add_observer(observer)  # observed dispatches have views, dropped at their end
    gc.collect()
    gc.disable()
    try:
        with signaltrace.record() as trace:
            order_paid.send(sender="shop", amount=10)  # a nested dispatch under on_paid
            order_shipped.send(sender=None)
            Signal().send(sender=None)  # nobody listened
        assert len(trace._recorder.records) == 4
        del trace
        assert gc.collect() == 0
    finally:
        gc.enable()
        remove_observer(observer)


def test_records_nest_and_outer_blocks_see_inner_dispatches(order_signals):
    with signaltrace.record() as outer:
        order_shipped.send(sender=None)
        with signaltrace.record() as inner:
            order_paid.send(sender=None)
    assert len(inner.dispatches) == 2 and len(outer.dispatches) == 3
    assert [d.signal_name for d in outer.dispatches][1:] == [d.signal_name for d in inner.dispatches]
    assert not signaltrace.is_recording()


def test_threads_do_not_mix(order_signals):
    barrier = threading.Barrier(4, timeout=30)
    results = {}

    def work(number):
        barrier.wait()  # all four record at once
        with signaltrace.record() as trace:
            for _ in range(50):
                order_paid.send(sender=number)
        results[number] = trace

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [0, 1, 2, 3]  # every thread reported (none died or hung)
    for number, trace in results.items():
        assert len(trace.dispatches) == 100
        assert {d.sender for d in trace.dispatches} == {number}
        assert all(d.depth == 1 for d in trace.dispatches if d.signal is order_shipped)


def test_a_thread_without_record_is_not_recorded(order_signals):
    with signaltrace.record() as trace:
        thread = threading.Thread(target=order_paid.send, kwargs={"sender": None})
        thread.start()
        thread.join()
    assert trace.dispatches == []


def test_async_to_sync_in_a_receiver_leaves_no_frame_behind(order_signals):
    """A dispatch in asgiref's thread, inside a receiver, nests under that receiver;
    asgiref copies the context back, and what follows starts again from nothing:
    depth 0, and a single legitimate re-entry is no loop."""
    from asgiref.sync import async_to_sync

    async def ship():
        order_shipped.send(sender="async")

    bridge = Signal()

    def through_async_to_sync(sender, **kwargs):
        async_to_sync(ship)()

    def resend_once(sender, again=True, **kwargs):
        if again:
            bridge.send(sender=None, again=False)

    bridge.connect(through_async_to_sync, weak=False)
    try:
        with signaltrace.record() as trace:
            bridge.send(sender=None)
            order_paid.send(sender="after")
        (shipped_async,) = [d for d in trace.dispatches if d.sender == "async"]
        assert shipped_async.depth == 1 and shipped_async.parent.receiver_name.endswith(
            "through_async_to_sync"
        )
        after = [d for d in trace.dispatches if d.sender == "after"]
        assert [d.depth for d in after] == [0, 1]  # order_paid, then order_shipped inside on_paid
    finally:
        bridge.disconnect(through_async_to_sync)
    bridge.connect(resend_once, weak=False)
    try:
        assert len(bridge.send(sender=None)) == 1  # no SignalLoopError from a stale frame
    finally:
        bridge.disconnect(resend_once)


def test_sixty_thousand_dispatches_in_one_trace_and_the_cap(order_signals):
    with override_settings(SIGNALTRACE={"MAX_DISPATCHES": 70_000}), signaltrace.record() as trace:
        for _ in range(30_000):
            order_paid.send(sender=None)
    assert len(trace.dispatches) == 60_000 and trace.dropped == 0
    assert len(trace.roots) == 30_000
    with signaltrace.record() as capped:  # default cap: 10,000
        for _ in range(6_000):
            order_paid.send(sender=None)
    assert len(capped.dispatches) == 10_000 and capped.dropped == 2_000
    assert capped.to_dict()["dropped"] == 2_000


@needs_asend
async def test_asend_records_sync_and_async_receivers_with_the_right_parents():
    signal = Signal()
    inner = Signal()
    inner.connect(on_shipped)
    # The async receivers run as parallel tasks that interleave: each sends while
    # the other is suspended inside its own receiver. They are ordered by events,
    # not sleeps: Django runs them in one shared context, where asgiref refuses two
    # overlapping thread-sensitive sync_to_async calls ("Single thread executor
    # already being used, would deadlock"), so their inner.asend (whose sync
    # receiver goes through sync_to_async) must not overlap.
    second_sent = asyncio.Event()
    first_done = asyncio.Event()

    async def first(sender, **kwargs):
        await second_sent.wait()  # second is suspended inside its receiver meanwhile
        await inner.asend(sender="first")
        first_done.set()
        return 1

    async def second(sender, **kwargs):
        inner.send(sender="second")  # while first is suspended inside its receiver
        second_sent.set()
        await first_done.wait()
        await inner.asend(sender="second-again")
        return 2

    def sync_one(sender, **kwargs):
        inner.send(sender="sync")
        return 0

    signal.connect(first)
    signal.connect(second)
    signal.connect(sync_one)
    with signaltrace.record() as trace:
        responses = await signal.asend(sender=None)
    assert responses == [(sync_one, 0), (first, 1), (second, 2)]
    top = trace.roots
    assert len(top) == 1 and top[0].method == "asend"
    calls = {call.receiver_name.rsplit(".", 1)[-1]: call for call in top[0].calls}
    assert calls["first"].is_async and not calls["sync_one"].is_async
    senders = {name: [d.sender for d in call.dispatches] for name, call in calls.items()}
    assert senders == {"sync_one": ["sync"], "first": ["first"], "second": ["second", "second-again"]}
    assert all(d.depth == 1 for call in calls.values() for d in call.dispatches)


@needs_asend
async def test_asend_robust_records_swallowed_exceptions():
    signal = Signal()

    async def failing(sender, **kwargs):
        raise ValueError("async boom")

    signal.connect(failing)
    with signaltrace.record() as trace:
        [(receiver, error)] = await signal.asend_robust(sender=None)
    assert receiver is failing and isinstance(error, ValueError)
    call = trace.dispatches[0].calls[0]
    assert call.exception is error and call.swallowed
    data = trace.to_dict()["dispatches"][0]["calls"][0]["exception"]
    assert data["type"] == "builtins.ValueError" and data["swallowed"] is True
    assert "async boom" in data["traceback"]


@needs_asend
def test_sync_send_with_async_receivers(order_signals):
    signal = Signal()

    async def async_receiver(sender, **kwargs):
        order_paid.send(sender="from-async")
        return "async"

    signal.connect(on_shipped)
    signal.connect(async_receiver)
    with signaltrace.record() as trace:
        assert signal.send(sender=None) == [(on_shipped, "shipped"), (async_receiver, "async")]
    root = trace.roots[0]
    [nested] = root.calls[1].dispatches
    assert nested.sender == "from-async" and nested.depth == 1


def test_to_dict_is_json_and_links_parents(order_signals, db):
    with signaltrace.record() as trace:
        order_paid.send(sender=None)
        item_viewed.send(sender=Item, item_id=1)
    data = json.loads(json.dumps(trace.to_dict()))
    assert data["version"] == 1 and data["dropped"] == 0 and data["loops"] == []
    paid, shipped, viewed = data["dispatches"]
    assert shipped["parent"] == {"dispatch": 0, "call": 0}
    assert paid["calls"][0]["dispatches"] == [1]
    assert viewed["sender"] == "testapp.Item" and viewed["kwargs"] == {"item_id": "1"}


def test_signals_sent_while_send_robust_logs_are_not_children_of_the_failed_receiver(caplog):
    logged = Signal()
    failing_signal = Signal()

    def failing(sender, **kwargs):
        raise ValueError("x")

    class SendingHandler(logging.Handler):
        def emit(self, record):
            logged.send(sender="logger")

    logged.connect(on_shipped)
    failing_signal.connect(failing)
    handler = SendingHandler()
    logger = logging.getLogger("django.dispatch")
    logger.addHandler(handler)
    try:
        with signaltrace.record() as trace:
            failing_signal.send_robust(sender=None)
    finally:
        logger.removeHandler(handler)
    # Django 4.2 may also send template_rendered while its AdminEmailHandler formats.
    robust, from_logging = [d for d in trace.dispatches if d.signal in (failing_signal, logged)]
    assert robust.calls[0].dispatches == []
    assert from_logging.parent is None and from_logging.depth == 0


def test_max_repr_length_setting_cuts_rendered_values():
    signal = Signal()
    signal.connect(on_shipped)
    with override_settings(SIGNALTRACE={"MAX_REPR_LENGTH": 20}), signaltrace.record() as trace:
        signal.send(sender=None, note="y" * 100)
        rendered = trace.dispatches[0].kwargs["note"]
    assert len(rendered) == 20 and rendered.endswith("…")


@pytest.mark.parametrize("method", ["send_robust", "asend_robust with a sync receiver", "asend_robust"])
def test_signals_sent_while_logging_a_swallowed_error_are_not_the_receivers_children(method):
    """Django logs a robust method's failure outside the receiver; a logging handler
    that sends a signal (as AdminEmailHandler renders a template) sends it beside
    the dispatch, not inside the failed receiver."""
    if method.startswith("asend") and not HAS_ASEND:
        pytest.skip("asend is new in Django 5.0")
    failing_signal, sent_while_logging = Signal(), Signal()

    def fail_sync(sender, **kwargs):
        raise ValueError("sync receiver failed")

    async def fail_async(sender, **kwargs):
        raise ValueError("async receiver failed")

    class SendingHandler(logging.Handler):
        def emit(self, record):
            sent_while_logging.send(sender="logging")

    sent_while_logging.connect(on_shipped, weak=False)
    failing_signal.connect(fail_async if method == "asend_robust" else fail_sync, weak=False)
    handler = SendingHandler()
    logger = logging.getLogger("django.dispatch")
    logger.addHandler(handler)
    try:
        with signaltrace.record() as trace:
            if method == "send_robust":
                responses = failing_signal.send_robust(sender=None)
            else:
                responses = asyncio.run(failing_signal.asend_robust(sender=None))
    finally:
        logger.removeHandler(handler)
    assert isinstance(responses[0][1], ValueError)
    failed = next(d for d in trace.dispatches if d.signal is failing_signal)
    logged = next(d for d in trace.dispatches if d.signal is sent_while_logging)
    assert failed.calls[0].swallowed and failed.calls[0].dispatches == []
    assert logged.depth == 0 and logged.parent is None


# ------------------------------------------------------ hostile signals and receivers


class ComparingSignal(Signal):
    """A Signal subclass that defines ``__eq__`` (and so is unhashable), as some libraries do."""

    def __eq__(self, other: object) -> bool:
        raise TypeError("this signal cannot be compared")


def test_a_signal_that_defines_eq_is_recorded_with_and_without_receivers():
    signal = ComparingSignal()
    with signaltrace.record() as trace:
        assert signal.send(sender=None) == []  # no receivers: recorded as sent to nobody
        signal.connect(on_paid, weak=False)
        try:
            assert signal.send(sender=None) == [(on_paid, "paid")]
        finally:
            signal.disconnect(on_paid)
    assert [len(dispatch.calls) for dispatch in trace.dispatches if dispatch.signal is signal] == [0, 1]


class HostileReceiver:
    """A callable receiver whose ``__getattr__`` raises for the names that tell
    functions from methods (Django itself only asks for others)."""

    def __call__(self, sender, **kwargs):
        return "hostile"

    def __getattr__(self, name):
        if name in ("__func__", "__wrapped__", "func", "__self__"):
            raise RuntimeError(f"no {name} here")
        raise AttributeError(name)


def test_a_receiver_whose_getattr_raises_is_called_and_recorded():
    signal = Signal()
    hostile = HostileReceiver()
    signal.connect(hostile, weak=False, dispatch_uid="hostile")  # Django's _make_id would fail
    with signaltrace.record() as trace:
        assert signal.send(sender=None) == [(hostile, "hostile")]
    assert trace.dispatches[0].calls[0].receiver_name == "tests.test_recording.HostileReceiver"


def test_record_exited_in_another_thread_raises_nothing_and_stops_recording():
    """A block entered in one thread and exited in another: the exit must not raise, and
    the entering thread's context must not go on recording into the closed trace."""
    block = signaltrace.record()
    trace = block.__enter__()
    errors: list[BaseException] = []

    def exit_elsewhere() -> None:
        try:
            block.__exit__(None, None, None)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    worker = threading.Thread(target=exit_elsewhere)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive() and errors == []
    assert not signaltrace.is_recording()
    item_viewed.connect(on_paid, weak=False)
    try:
        item_viewed.send(sender=None)
    finally:
        item_viewed.disconnect(on_paid)
    assert len(trace) == 0 and trace.dropped == 0
    # With no block open anywhere the hooks do not even read this context's recorders;
    # while one is open elsewhere, the first dispatch here forgets the closed block.
    assert signaltrace.core.store.current_recorders() is None
    elsewhere_open, done = threading.Event(), threading.Event()

    def record_elsewhere() -> None:
        with signaltrace.record():
            elsewhere_open.set()
            done.wait(timeout=10)

    other = threading.Thread(target=record_elsewhere)
    other.start()
    try:
        assert elsewhere_open.wait(timeout=10)
        assert signaltrace.core.store.active_recorders.get() is not None  # still listed here
        item_viewed.connect(on_paid, weak=False)
        try:
            item_viewed.send(sender=None)
        finally:
            item_viewed.disconnect(on_paid)
    finally:
        done.set()
        other.join(timeout=10)
    assert not other.is_alive()
    assert len(trace) == 0 and trace.dropped == 0
    assert signaltrace.core.store.active_recorders.get() is None  # this context forgot the closed block


async def test_record_exited_in_another_task_raises_nothing():
    block = signaltrace.record()

    async def enter() -> Any:
        return block.__enter__()

    trace = await asyncio.get_running_loop().create_task(enter())
    block.__exit__(None, None, None)  # this task never entered it
    item_viewed.connect(on_paid, weak=False)
    try:
        item_viewed.send(sender=None)
    finally:
        item_viewed.disconnect(on_paid)
    assert len(trace) == 0


def test_a_trace_is_bounded_in_bytes_and_counts_what_it_dropped():
    signal = Signal()
    signal.connect(on_shipped, weak=False)
    with override_settings(SIGNALTRACE={"MAX_TRACE_BYTES": 6_000}), signaltrace.record() as trace:
        for _ in range(100):
            signal.send(sender=None, body="x" * 10_000, note="n")
    kept = len(trace.dispatches)
    assert 0 < kept < 20 and kept + trace.dropped == 100
    assert all(len(dispatch.kwargs["body"]) <= 200 for dispatch in trace.dispatches)


@pytest.mark.parametrize("kwarg_count", [3, 70])
def test_a_dispatch_is_charged_per_kwarg_and_receiver_however_many(kwarg_count: int) -> None:
    """Each kept dispatch costs a fixed part plus one per kwarg and receiver, past the
    precomputed sizes too: a budget of a few dispatches keeps exactly that many."""
    signal = Signal()
    signal.connect(on_shipped, weak=False)
    one = 400 + 150 * (kwarg_count + 1)  # store._RECORD_BYTES, store._ITEM_BYTES
    kwargs = {f"k{index}": index for index in range(kwarg_count)}
    settings = {"MAX_TRACE_BYTES": 3 * one + one // 2}
    with override_settings(SIGNALTRACE=settings), signaltrace.record() as trace:
        for _ in range(5):
            signal.send(sender=None, **kwargs)
    assert len(trace.dispatches) == 3 and trace.dropped == 2


def test_an_ignored_signal_stays_ignored_between_the_signals_a_block_kept() -> None:
    """The last two kept signals are tried first by identity; an ignored one sent between
    them (post_init, ignored by default) is still left out."""
    from django.db.models.signals import post_init

    first, second = Signal(), Signal()
    for signal in (first, second, post_init):
        signal.connect(on_shipped, weak=False)
    try:
        with signaltrace.record() as trace:
            for signal in (first, second, post_init, first, post_init, second, post_init, first):
                signal.send(sender=Signal)  # post_init caches per sender: one it can hold weakly
    finally:
        post_init.disconnect(on_shipped)
    assert [dispatch.signal for dispatch in trace.dispatches] == [first, second, first, second, first]


def test_open_block_count_returns_to_where_it_was():
    """The hooks skip the context read while no block is open anywhere: the count of open
    blocks must come back down however blocks end (nested, raising, closed twice)."""
    open_count = signaltrace.core.store.open_count
    before = open_count[0]
    with signaltrace.record():
        assert open_count[0] == before + 1
        with pytest.raises(ZeroDivisionError), signaltrace.record() as inner:
            assert open_count[0] == before + 2
            1 / 0  # noqa: B018
        assert open_count[0] == before + 1
        inner._recorder.close()  # a second close counts nothing
        assert open_count[0] == before + 1
    assert open_count[0] == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here")
def test_a_child_forked_while_the_block_count_is_locked_can_still_record():
    """gunicorn --preload forks workers from a process whose other threads may be opening
    or closing a block: the child must not wait forever for the count's lock."""
    lock = signaltrace.core.store._open_count_lock
    held, release = threading.Event(), threading.Event()

    def count_a_block() -> None:  # another thread, inside the lock at fork time
        with lock:
            held.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=count_a_block)
    holder.start()
    try:
        assert held.wait(timeout=10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running
            pid = os.fork()
    finally:
        release.set()
        holder.join(timeout=10)
    if pid == 0:  # the child: record one dispatch, report through the exit code
        try:
            with signaltrace.record() as trace:
                item_viewed.send(sender=None)
            os._exit(0 if len(trace) == 1 else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, os_signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the block count's lock")
    assert os.waitstatus_to_exitcode(status) == 0
