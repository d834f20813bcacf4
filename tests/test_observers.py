"""signaltrace.core.observers: what observers are told, and what the core skips for them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.dispatch import Signal
from django.test import override_settings

import signaltrace
from signaltrace.core import store
from signaltrace.core.observers import DispatchObserver, LiveCall, LiveDispatch, add_observer, remove_observer
from tests.testapp.models import Item

pinged = Signal()


def on_ping(sender, **kwargs):
    return "pong"


def on_ping_too(sender, **kwargs):
    return "pong too"


class Collector(DispatchObserver):
    """Keeps what every event showed, read while the event runs."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def dispatch_started(self, dispatch: LiveDispatch) -> None:
        seen = (dispatch.signal_name, dispatch.sender_name, dispatch.kwargs)
        self.events.append(("dispatch_started", seen))

    def call_started(self, call: LiveCall) -> None:
        self.events.append(("call_started", (call.receiver_name, call.dispatch_uid)))

    def call_finished(self, call: LiveCall) -> None:
        self.events.append(("call_finished", call.receiver_name))

    def dispatch_finished(self, dispatch: LiveDispatch) -> None:
        self.events.append(("dispatch_finished", dispatch.receiver_count))


class KwargsCollector(Collector):
    needs_kwargs = True


@pytest.fixture
def observe() -> Iterator:
    added: list[DispatchObserver] = []

    def observe(observer: DispatchObserver) -> DispatchObserver:
        add_observer(observer)
        added.append(observer)
        return observer

    yield observe
    for observer in added:
        remove_observer(observer)


def test_observers_hear_every_event_in_order(observe, connect):
    collector = observe(Collector())
    connect(pinged, on_ping, dispatch_uid="tests.ping")
    assert pinged.send(sender=Item) == [(on_ping, "pong")]
    assert collector.events == [
        ("dispatch_started", ("tests.test_observers.pinged", "testapp.Item", {})),
        ("call_started", ("tests.test_observers.on_ping", "tests.ping")),
        ("call_finished", "tests.test_observers.on_ping"),
        ("dispatch_finished", 1),
    ]


def test_only_overridden_methods_are_called(observe):
    class OnlyFinished(DispatchObserver):
        def call_finished(self, call: LiveCall) -> None:
            pass

    observer = observe(OnlyFinished())
    observed = store.observed
    assert observed is not None
    assert observed.dispatch_started == observed.call_started == observed.dispatch_finished == ()
    assert [method.__func__ for _index, method in observed.call_finished] == [OnlyFinished.call_finished]
    remove_observer(observer)
    assert store.observed is None  # no observer left: the hooks test one name and skip the rest


def test_kwargs_are_not_snapshotted_for_observers_that_do_not_read_them(observe, connect):
    collector = observe(Collector())
    connect(pinged, on_ping)
    pinged.send(sender=None, order=7)
    assert collector.events[0] == ("dispatch_started", ("tests.test_observers.pinged", "None", {}))
    with signaltrace.record() as trace:
        pinged.send(sender=None, order=8)
    # Recorded: the record has its kwargs, and every observer sees them.
    assert collector.events[4][1] == ("tests.test_observers.pinged", "None", {"order": "8"})
    assert trace.dispatches[0].kwargs == {"order": "8"}


@pytest.mark.parametrize("how", ["class attribute", "instance attribute"])
def test_observers_that_need_kwargs_get_them_redacted(observe, connect, how):
    if how == "class attribute":
        collector = observe(KwargsCollector())
    else:
        collector = Collector()
        collector.needs_kwargs = True
        observe(collector)
    connect(pinged, on_ping)
    pinged.send(sender=None, order=7, password="hunter2")
    assert collector.events[0][1][2] == {"order": "7", "password": "********************"}


def test_dispatch_uid_follows_the_receivers_connected_now(observe, connect):
    collector = observe(Collector())
    connect(pinged, on_ping, dispatch_uid="first")
    connect(pinged, on_ping_too)
    pinged.send(sender=None)
    pinged.disconnect(dispatch_uid="first")
    connect(pinged, on_ping, dispatch_uid="second")
    pinged.send(sender=None)
    calls = [event[1] for event in collector.events if event[0] == "call_started"]
    assert calls == [
        ("tests.test_observers.on_ping", "first"),
        ("tests.test_observers.on_ping_too", None),
        ("tests.test_observers.on_ping_too", None),
        ("tests.test_observers.on_ping", "second"),
    ]


def test_what_an_observer_returns_is_its_state_and_nesting_reaches_the_parent_state(observe, connect):
    """Each observer gets its own views: the value ``dispatch_started``/``call_started``
    returned is that view's ``state``, and a nested dispatch finds its parent call's."""

    class Tagger(DispatchObserver):
        def __init__(self, tag: str) -> None:
            self.tag = tag
            self.seen: list[Any] = []

        def dispatch_started(self, dispatch: LiveDispatch) -> Any:
            parent = dispatch.parent
            self.seen.append(("parent state", None if parent is None else parent.state))
            return f"{self.tag}:{dispatch.signal_name}"

        def call_started(self, call: LiveCall) -> Any:
            return (call.dispatch.state, call.receiver_name)

        def call_finished(self, call: LiveCall) -> None:
            self.seen.append(("call state", call.state))

        def dispatch_finished(self, dispatch: LiveDispatch) -> None:
            self.seen.append(("dispatch state", dispatch.state))

    nested = Signal()

    def send_nested(sender, **kwargs):
        nested.send(sender=sender)

    connect(pinged, send_nested)
    connect(nested, on_ping)
    first, second = observe(Tagger("a")), observe(Tagger("b"))
    pinged.send(sender=None)
    outer = "tests.test_observers.pinged"
    receiver = f"{__name__}.{send_nested.__qualname__}"
    for observer in (first, second):
        tag = observer.tag
        assert observer.seen == [
            ("parent state", None),
            ("parent state", (f"{tag}:{outer}", receiver)),
            ("call state", (f"{tag}:Signal at {id(nested):#x}", "tests.test_observers.on_ping")),
            ("dispatch state", f"{tag}:Signal at {id(nested):#x}"),
            ("call state", (f"{tag}:{outer}", receiver)),
            ("dispatch state", f"{tag}:{outer}"),
        ]


def test_a_dispatch_no_trace_keeps_is_not_linked_into_one_and_holds_its_sender_strongly(observe, connect):
    """Past a trace's cap, observed dispatches are made for observers only: the trace
    must not reach them through its calls (its memory stays bounded), and they hold
    the sender as is, since nothing of ours keeps them after the dispatch."""

    class Keeper(DispatchObserver):
        def __init__(self) -> None:
            self.records: list[Any] = []

        def dispatch_started(self, dispatch: LiveDispatch) -> None:
            self.records.append(dispatch._record)  # the store's record, read with its field names

    nested = Signal()
    nested.connect(on_ping, weak=False)

    def send_nested(sender, **kwargs):
        nested.send(sender=sender)

    connect(pinged, send_nested)
    keeper = observe(Keeper())
    try:
        with override_settings(SIGNALTRACE={"MAX_DISPATCHES": 1}), signaltrace.record() as trace:
            pinged.send(sender=Item)
    finally:
        nested.disconnect(on_ping)
    kept, dropped = (record for record in keeper.records if record[store.D_SIGNAL] in (pinged, nested))
    assert len(trace.dispatches) == 1 and trace.dropped == 1
    assert dropped[store.D_PARENT_CALL] is kept[store.D_CALLS][0]
    assert not _reaches(kept, dropped)
    assert kept[store.D_SENDER_GONE] == "testapp.Item" and kept[store.D_SENDER]() is Item
    assert dropped[store.D_SENDER_GONE] is None and dropped[store.D_SENDER] is Item
    assert trace.dispatches[0].calls[0].dispatches == []


def _reaches(start: Any, target: Any) -> bool:
    """Whether ``target`` can be reached from ``start`` through lists, tuples and dicts (records)."""
    seen, todo = set(), [start]
    while todo:
        item = todo.pop()
        if item is target:
            return True
        if id(item) not in seen and type(item) in (list, tuple, dict):
            seen.add(id(item))
            todo.extend(item.values() if type(item) is dict else item)
    return False


def test_a_failing_observer_is_logged_and_the_others_still_run(
    observe, connect, caplog, fresh_internal_errors
):

    class Failing(DispatchObserver):
        def call_started(self, call: LiveCall) -> None:
            raise RuntimeError("observer broke")

    observe(Failing())
    collector = observe(Collector())
    connect(pinged, on_ping)
    assert pinged.send(sender=None) == [(on_ping, "pong")]
    assert "Failing.call_started" in caplog.text
    assert [event[0] for event in collector.events] == [
        "dispatch_started",
        "call_started",
        "call_finished",
        "dispatch_finished",
    ]


def test_max_repr_length_bounds_kwargs_alike_in_traces_observers_and_assertions(observe, connect):
    """One MAX_REPR_LENGTH for every place a kwarg is rendered: a trace, an observer's
    view, and the expected value an assertion compares with the recorded one."""
    from django.test import override_settings

    from signaltrace.testing import assert_signal_sent

    collector = observe(KwargsCollector())
    connect(pinged, on_ping)
    note = "n" * 100
    with override_settings(SIGNALTRACE={"MAX_REPR_LENGTH": 40}):
        with signaltrace.record() as trace, assert_signal_sent(pinged, note=note):
            pinged.send(sender=None, note=note)
        (dispatch,) = trace.dispatches  # rendered when read, under the same setting
    (observed,) = [
        seen[2]
        for event, seen in collector.events
        if event == "dispatch_started" and seen[0] == dispatch.signal_name
    ]
    assert len(dispatch.kwargs["note"]) == 40 and dispatch.kwargs["note"].endswith("…")
    assert observed["note"] == dispatch.kwargs["note"]
