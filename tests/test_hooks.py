"""The hooks keep Django's dispatcher behaviour exactly (transparency)."""

from __future__ import annotations

import dis
import functools
import gc
import subprocess
import sys
import types
import warnings
import weakref
from typing import Any

import pytest
from django.db import connection
from django.db.models.signals import post_delete, pre_delete
from django.dispatch import Signal
from django.dispatch.dispatcher import Signal as DjangoSignal
from django.test.utils import CaptureQueriesContext

import signaltrace
from signaltrace.core import connection_problems, hooks
from tests.testapp.models import Item


def receiver_a(sender, **kwargs):
    return "a"


def receiver_b(sender, **kwargs):
    return "b"


class Boom(Exception):
    pass


def raising(sender, **kwargs):
    raise Boom("boom")


def last_dispatch_of(trace, signal):
    """The last dispatch of ``signal`` (Django may send others, e.g. while logging)."""
    return [dispatch for dispatch in trace.dispatches if dispatch.signal is signal][-1]


@pytest.fixture(params=["idle", "recording"])
def mode(request):
    """Run a test installed-but-idle and while recording."""
    signaltrace.install()
    if request.param == "recording":
        with signaltrace.record() as trace:
            yield trace
    else:
        yield None


def test_install_is_idempotent_and_uninstall_restores_signal_exactly():
    signaltrace.uninstall()
    try:
        originals = {
            name: DjangoSignal.__dict__[name]
            for name in (*hooks._METHOD_NAMES, "connect")
            if name in DjangoSignal.__dict__
        }
        signaltrace.install()
        signaltrace.install()
        assert signaltrace.is_installed()
        assert all(DjangoSignal.__dict__[name] is not method for name, method in originals.items())
        signaltrace.uninstall()
        signaltrace.uninstall()
        assert not signaltrace.is_installed()
        assert {name: DjangoSignal.__dict__[name] for name in originals} == originals
    finally:
        signaltrace.install()  # the rest of the suite runs installed, whatever failed here


def test_send_returns_original_receivers_and_responses(mode):
    signal = Signal()
    signal.connect(receiver_a)
    signal.connect(receiver_b)
    assert signal.send(sender=None) == [(receiver_a, "a"), (receiver_b, "b")]
    assert signal.send(sender=None)[0][0] is receiver_a


def test_send_propagates_the_same_exception_object(mode):
    signal = Signal()
    signal.connect(raising)
    with pytest.raises(Boom) as caught:
        signal.send(sender=None)
    assert str(caught.value) == "boom"
    if mode is not None:
        assert last_dispatch_of(mode, signal).calls[0].exception is caught.value


def test_send_robust_returns_the_exception_and_logs_like_django(mode, caplog):
    signal = Signal()
    signal.connect(raising)
    signal.connect(receiver_a)
    with caplog.at_level("ERROR", logger="django.dispatch"):
        responses = signal.send_robust(sender=None)
    assert responses[0][0] is raising and isinstance(responses[0][1], Boom)
    assert responses[1] == (receiver_a, "a")
    assert "Error calling raising in Signal.send_robust() (boom)" in caplog.text
    if mode is not None:
        call = last_dispatch_of(mode, signal).calls[0]
        assert call.exception is responses[0][1] and call.swallowed


def test_bound_method_receivers_come_back_equal(mode):
    class Listener:
        def on_signal(self, sender, **kwargs):
            return id(self)

    listener = Listener()
    signal = Signal()
    signal.connect(listener.on_signal)
    [(receiver, response)] = signal.send(sender=None)
    assert receiver == listener.on_signal and response == id(listener)


def test_weak_receivers_are_not_kept_alive_by_records(mode):
    signal = Signal()

    def temporary(sender, **kwargs):
        return 1

    signal.connect(temporary)
    signal.send(sender=None)
    ref = weakref.ref(temporary)
    del temporary
    gc.collect()
    assert ref() is None
    assert signal.send(sender=None) == []
    assert not signal.has_listeners()


def test_senders_are_not_kept_alive_and_read_as_none_once_gone():
    class Sender:
        pass

    signal = Signal()
    signal.connect(receiver_a)
    sender = Sender()
    with signaltrace.record() as trace:
        signal.send(sender=sender)
    ref = weakref.ref(sender)
    assert trace.dispatches[0].sender is sender
    del sender
    gc.collect()
    assert ref() is None
    assert trace.dispatches[0].sender is None
    assert "Sender object" in trace.dispatches[0].sender_name


def test_dispatch_uid_and_sender_specific_receivers(mode):
    signal = Signal()
    signal.connect(receiver_a, dispatch_uid="only-once")
    signal.connect(receiver_b, dispatch_uid="only-once")  # silently ignored by Django
    assert any("dispatch_uid 'only-once' is already taken" in problem for problem in connection_problems())
    signal.connect(receiver_b, sender=Item)
    assert signal.send(sender=None) == [(receiver_a, "a")]
    assert signal.send(sender=Item) == [(receiver_a, "a"), (receiver_b, "b")]
    if mode is not None:
        calls = last_dispatch_of(mode, signal).calls
        assert [call.dispatch_uid for call in calls] == ["only-once", None]


def test_caching_signals_keep_their_no_receivers_fast_path(mode):
    signal = Signal(use_caching=True)
    signal.connect(receiver_a, sender=Item)
    assert signal.send(sender=Item) == [(receiver_a, "a")]
    assert signal.send(sender=Signal) == []
    assert signal.sender_receivers_cache.get(Signal) is not None
    assert signal.send(sender=Signal) == []


def test_swapping_receivers_like_factory_boy_mute_signals(mode, db):
    import factory

    from tests.testapp.models import Ping

    calls = []

    def on_save(sender, **kwargs):
        calls.append(sender)

    from django.db.models.signals import post_save

    post_save.connect(on_save, sender=Ping)
    try:
        with factory.django.mute_signals(post_save):
            assert not post_save.has_listeners(Ping)
            Ping.objects.create()
        Ping.objects.create()
    finally:
        post_save.disconnect(on_save, sender=Ping)
    assert calls == [Ping]


def test_has_listeners_and_fast_delete_are_unchanged_by_recording(db):
    items = [Item.objects.create(name=str(i)) for i in range(3)]
    assert not pre_delete.has_listeners(Item) and not post_delete.has_listeners(Item)
    with CaptureQueriesContext(connection) as bare:
        Item.objects.filter(pk=items[0].pk).delete()
    with signaltrace.record() as trace, CaptureQueriesContext(connection) as recorded:
        assert not pre_delete.has_listeners(Item) and not post_delete.has_listeners(Item)
        Item.objects.filter(pk=items[1].pk).delete()
    assert len(recorded) == len(bare)
    assert trace.dispatches == []  # fast delete sends nothing at all


def test_no_extra_frame_between_sender_and_receiver(mode):
    """Django's complex_setting_changed warns with a fixed stacklevel (5)."""
    from django.test import override_settings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with override_settings(DATABASES={}):
            pass
    [warning] = [w for w in caught if "Overriding setting DATABASES" in str(w.message)]
    assert warning.filename == __file__


@pytest.mark.skipif(sys.version_info < (3, 12), reason="the method-call shortcut is skipped from 3.12 on")
def test_the_dispatch_path_makes_no_bound_method_per_call():
    """From Python 3.12, ``name.get()`` on a name imported with ``from`` is compiled without
    the method-call shortcut (the compiler takes the name for a module): it makes a bound
    method object per call. The hot path calls such objects' methods bound once instead."""
    from signaltrace.core import store, transactions

    hot = [hooks._send, hooks._send_robust, hooks._enter, hooks._leave, hooks._in_frame]
    hot += [store.begin_dispatch, store.begin_call]
    hot += [store.end_call, store.end_dispatch, store.current_recorders]
    hot += [transactions._make_enter(None), transactions._make_exit(None)]
    found = []
    for function in hot:
        instructions = list(dis.get_instructions(function))
        for first, second, third in zip(instructions, instructions[1:], instructions[2:], strict=False):
            if (first.opname, second.opname, third.opname) != ("LOAD_GLOBAL", "LOAD_ATTR", "PUSH_NULL"):
                continue
            if not isinstance(function.__globals__.get(first.argval), types.ModuleType):
                found.append(f"{function.__qualname__}: {first.argval}.{second.argval}()")
    assert found == []


def test_sentry_patch_of_live_receivers_coexists_in_either_order():
    pytest.importorskip("sentry_sdk")
    script = r"""
import django
from django.conf import settings
settings.configure(INSTALLED_APPS=[], DATABASES={})
django.setup()
import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
import signaltrace
from django.dispatch import Signal

def receiver(sender, **kwargs):
    return "ok"

first_ours = ORDER == "ours-first"
if first_ours:
    signaltrace.install()
sentry_sdk.init(dsn=None, integrations=[DjangoIntegration(signals_spans=True)], traces_sample_rate=1.0)
signaltrace.install()
signal = Signal()
signal.connect(receiver)
with signaltrace.record() as trace:
    responses = signal.send(sender=None)
assert [r for _, r in responses] == ["ok"], responses
assert trace.dispatches[0].calls[0].receiver_name.endswith("receiver"), trace.dispatches[0].calls
signaltrace.uninstall()
assert [r for _, r in signal.send(sender=None)] == ["ok"]
print("OK", ORDER)
"""
    for order in ("ours-first", "sentry-first"):
        result = subprocess.run(
            [sys.executable, "-c", f"ORDER = {order!r}\n" + script],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert f"OK {order}" in result.stdout


def test_install_works_before_settings_are_configured():
    script = (
        "import signaltrace\n"
        "from django.dispatch import Signal\n"
        "signaltrace.install()\n"
        "s = Signal()\n"
        "s.connect(lambda sender, **kw: 1, weak=False)\n"
        "with signaltrace.record() as trace:\n"
        "    assert [r for _, r in s.send(sender=None)] == [1]\n"
        "assert len(trace.dispatches) == 1\n"
        "from django.conf import settings\n"
        "assert not settings.configured\n"
        "print('OK')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"


def test_internal_errors_are_logged_and_the_dispatch_goes_on(monkeypatch, caplog, fresh_internal_errors):
    from signaltrace.core import store

    def broken(*args, **kwargs):
        raise ZeroDivisionError("signaltrace bug")

    monkeypatch.setattr(store, "snapshot_kwargs", broken)
    signal = Signal()
    signal.connect(receiver_a)
    with caplog.at_level("ERROR", logger="signaltrace"), signaltrace.record() as trace:
        assert signal.send(sender=None, value=1) == [(receiver_a, "a")]
    assert "signaltrace internal error in begin_dispatch" in caplog.text
    assert "ZeroDivisionError: signaltrace bug" in caplog.text
    assert trace.dispatches == []


def test_fallback_for_an_unknown_dispatcher_records_calls_and_tells_observers(monkeypatch):
    """With a dispatcher shape the hooks do not know, Django's own methods run wrapped:
    same results, each response a recorded call, observers told of its start and end."""
    from signaltrace.core.observers import DispatchObserver, add_observer, remove_observer

    events = []

    class Events(DispatchObserver):
        def call_started(self, call):
            if call.dispatch.signal is signal:
                events.append(("started", call.receiver_name))

        def call_finished(self, call):
            if call.dispatch.signal is signal:
                events.append(("finished", call.receiver_name, type(call.exception).__name__))

    def fine(sender, **kwargs):
        return "fine"

    def broken(sender, **kwargs):
        raise ValueError("broken")

    signal = Signal()
    signal.connect(fine, weak=False)
    signal.connect(broken, weak=False)
    was_installed = hooks.is_installed()
    signaltrace.uninstall()
    monkeypatch.setattr(hooks, "_dispatcher_shape_is_known", lambda: False)
    signaltrace.install()
    observer = Events()
    add_observer(observer)
    try:
        assert Signal.send_robust is not hooks._send_robust  # the fallback is in place
        with signaltrace.record() as trace:
            responses = signal.send_robust(sender=None)
    finally:
        remove_observer(observer)
        signaltrace.uninstall()
        monkeypatch.undo()
        if was_installed:
            signaltrace.install()
    assert [receiver for receiver, _ in responses] == [fine, broken]
    # Only this signal's dispatch: on some Django versions logging the error sends more.
    (dispatch,) = [d for d in trace.dispatches if d.signal is signal]
    assert [call.receiver_name.rsplit(".", 1)[-1] for call in dispatch.calls] == ["fine", "broken"]
    assert dispatch.calls[1].exception is responses[1][1] and dispatch.calls[1].swallowed
    names = [event[1].rsplit(".", 1)[-1] for event in events]
    assert [event[0] for event in events] == ["started", "finished", "started", "finished"]
    assert names == ["fine", "fine", "broken", "broken"]
    assert events[3][2] == "ValueError"


# ------------------------------------------------- other libraries' patches of Signal


def _wrapper_counting_into(calls: list[str], name: str, wrapped: Any) -> Any:
    @functools.wraps(wrapped)
    def send(self, sender, **named):
        calls.append(name)
        return wrapped(self, sender, **named)

    return send


def test_a_send_patch_installed_before_signaltrace_keeps_being_called():
    """A library that wrapped ``Signal.send`` first (an APM agent) still sees every send,
    and signaltrace still records the dispatch, around it."""
    was_installed = hooks.is_installed()
    signaltrace.uninstall()
    original = DjangoSignal.__dict__["send"]
    calls: list[str] = []
    DjangoSignal.send = _wrapper_counting_into(calls, "theirs", original)
    try:
        signaltrace.install()
        signal = Signal()
        signal.connect(receiver_a)
        with signaltrace.record() as trace:
            assert signal.send(sender=None) == [(receiver_a, "a")]
        assert calls == ["theirs"]
        assert [call.receiver_name for call in trace.dispatches[0].calls] == ["tests.test_hooks.receiver_a"]
        signaltrace.uninstall()
        assert DjangoSignal.__dict__["send"].__wrapped__ is original  # theirs is back, not Django's
    finally:
        signaltrace.uninstall()
        DjangoSignal.send = original
        if was_installed:
            signaltrace.install()


def test_a_send_patch_installed_after_signaltrace_survives_uninstall():
    was_installed = hooks.is_installed()
    signaltrace.install()
    ours = DjangoSignal.__dict__["send"]
    calls: list[str] = []
    theirs = _wrapper_counting_into(calls, "theirs", ours)
    DjangoSignal.send = theirs
    try:
        signaltrace.uninstall()
        assert DjangoSignal.__dict__["send"] is theirs
        signaltrace.install()  # theirs wraps ours: nothing to replace, nothing recorded twice
        assert DjangoSignal.__dict__["send"] is theirs
        signal = Signal()
        signal.connect(receiver_a)
        with signaltrace.record() as trace:
            assert signal.send(sender=None) == [(receiver_a, "a")]
        assert calls == ["theirs"] and len(trace.dispatches) == 1
    finally:
        signaltrace.uninstall()
        DjangoSignal.send = hooks._django_methods["send"]
        if was_installed:
            signaltrace.install()
