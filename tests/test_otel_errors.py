"""Errors on spans: exceptions raised by the dispatch machinery itself, and a loop said once."""

from __future__ import annotations

import asyncio
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import ThreadSensitiveContext
from django.db.models.signals import post_save
from django.dispatch import Signal
from opentelemetry.trace import StatusCode

from signaltrace import SignalLoopError
from signaltrace.core import short_path
from tests.markers import needs_asend
from tests.testapp.models import Ping

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

done = Signal()


def on_done(sender, **kwargs):
    return "ok"


async def on_done_async(sender, **kwargs):
    return "ok"


@needs_asend
@pytest.mark.skipif(
    not hasattr(ThreadSensitiveContext(), "_exited"), reason="asgiref < 3.9 lets such a task run on"
)
async def test_asend_failing_before_any_receiver_marks_its_span_error(spans, connect):
    """asgiref refuses the sync receivers' ``sync_to_async`` of a task that outlived its
    ThreadSensitiveContext (as its executor "already quit" on a client disconnect): the
    RuntimeError leaves ``asend`` after the dispatch span started, before any receiver span."""
    connect(done, on_done)
    may_send = asyncio.Event()

    async def send_late() -> None:
        await may_send.wait()
        await done.asend(sender=None)

    async with ThreadSensitiveContext(executor=ThreadPoolExecutor(max_workers=1)):
        task = asyncio.create_task(send_late())
        await asyncio.sleep(0)
    may_send.set()
    with pytest.raises(RuntimeError, match="ThreadSensitiveContext has exited"):
        await task

    dispatch = spans.one("asend tests.test_otel_errors.done")
    assert dispatch.attributes["signaltrace.receiver_count"] == 1
    assert spans.named("receiver tests.test_otel_errors.on_done") == []
    assert dispatch.status.status_code is StatusCode.ERROR
    assert dispatch.attributes["error.type"] == "RuntimeError"
    (event,) = dispatch.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "RuntimeError"
    assert "ThreadSensitiveContext has exited" in event.attributes["exception.message"]
    assert "asgiref" in event.attributes["exception.stacktrace"]  # where it was raised


@needs_asend
async def test_send_failing_after_its_receivers_marks_its_span_error(spans, connect):
    """``send`` with an async receiver, called inside a running event loop: asgiref's
    ``async_to_sync`` refuses, after the sync receivers ran."""
    connect(done, on_done)
    connect(done, on_done_async)
    with pytest.raises(RuntimeError, match="AsyncToSync"):
        done.send(sender=None)

    dispatch = spans.one("send tests.test_otel_errors.done")
    assert spans.one("receiver tests.test_otel_errors.on_done").status.status_code is StatusCode.UNSET
    assert dispatch.status.status_code is StatusCode.ERROR
    (event,) = dispatch.events
    assert event.attributes["exception.type"] == "RuntimeError"


def test_a_signal_sent_while_handling_an_exception_is_no_error(spans, connect):
    connect(done, on_done)
    try:
        raise KeyError("handled by the caller")
    except KeyError:
        assert done.send(sender=None) == [(on_done, "ok")]
        done.send_robust(sender=None)
    for dispatch in (
        spans.one("send tests.test_otel_errors.done"),
        spans.one("send_robust tests.test_otel_errors.done"),
    ):
        assert dispatch.status.status_code is StatusCode.UNSET
        assert dispatch.events == ()


@pytest.mark.django_db
def test_a_loop_is_one_exception_event_where_it_was_stopped(spans, connect, monkeypatch):
    """With "." on sys.path (as uvicorn puts it) instead of the absolute root, the cycle's
    locations stay relative."""

    def resave(sender, instance, **kwargs):
        instance.counter += 1
        instance.save()

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", [".", *(entry for entry in sys.path if entry not in ("", ROOT))])
    short_path.cache_clear()  # cached per file, with the sys.path of earlier tests
    connect(post_save, resave, sender=Ping)
    with pytest.raises(SignalLoopError) as raised:
        Ping.objects.create()

    everything = spans.all()
    events = [(span, event) for span in everything for event in span.events]
    assert len(events) == 1
    stopped, event = events[0]
    assert stopped.name == "send post_save" and stopped.attributes["signaltrace.depth"] == 2
    message = event.attributes["exception.message"]
    assert message == str(raised.value)
    assert "(tests/test_otel_errors.py:" in message  # the cycle, with its relative locations
    stack = event.attributes["exception.stacktrace"]
    assert stack.startswith("Traceback (most recent call last):\n")
    assert stack.count("in resave") == 2  # the stack where it was stopped: two turns of the cycle
    assert stack.endswith(f"signaltrace.errors.SignalLoopError: {message}\n")
    frames = [line for line in stack.splitlines() if line.startswith("  File ")]
    assert "signaltrace" not in frames[-1]  # the loop guard's own frames are left out: Django's save
    short_path.cache_clear()
    assert len(everything) == 5  # 3 dispatches, 2 receivers: all ERROR, one event
    for span in everything:
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "signaltrace.errors.SignalLoopError"
