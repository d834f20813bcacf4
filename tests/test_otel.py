"""signaltrace.otel: spans checked on the SDK's in-memory exporter, explicit tracer provider."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from time import perf_counter_ns, time_ns

import pytest
from django.core.checks import run_checks
from django.db.models.signals import post_init, post_save, pre_init
from django.dispatch import Signal, receiver
from django.test import Client, override_settings
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode

from signaltrace import SignalLoopError
from signaltrace.conf import validated
from signaltrace.otel import SignalInstrumentor
from signaltrace.otel.selection import Selection
from signaltrace.otel.spans import CLOCK_OFFSET_MAX_AGE_NS
from tests.markers import needs_asend
from tests.spans import Spans
from tests.testapp.models import Item, Ping
from tests.testapp.signals import item_viewed

ROOT = Path(__file__).resolve().parent.parent

done = Signal()
nested = Signal()


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def on_done(sender, **kwargs):
    return "ok"


def failing(sender, **kwargs):
    raise ValueError("receiver failed")


decorated = Signal()


def tagged(function):
    """A second decorator, so the def is two decorators (and three lines) below co_firstlineno."""
    return function


@receiver(
    decorated,
    dispatch_uid="tests.on_decorated",
)
@tagged
def on_decorated(sender, **kwargs):
    return "decorated"


def test_dispatch_and_receiver_spans(spans, connect):
    connect(done, on_done, dispatch_uid="tests.on_done")
    assert done.send(sender=Item, order=7) == [(on_done, "ok")]

    dispatch = spans.one("send tests.test_otel.done")
    receiver = spans.one("receiver tests.test_otel.on_done")
    assert dispatch.kind is SpanKind.INTERNAL and receiver.kind is SpanKind.INTERNAL
    assert dict(dispatch.attributes) == {
        "signaltrace.signal": "tests.test_otel.done",
        "signaltrace.sender": "testapp.Item",
        "signaltrace.method": "send",
        "signaltrace.depth": 0,
        "signaltrace.receiver_count": 1,
    }
    assert dict(receiver.attributes) == {
        "code.function.name": "tests.test_otel.on_done",
        "code.file.path": __file__,
        "code.line.number": on_done.__code__.co_firstlineno,
        "signaltrace.dispatch_uid": "tests.on_done",
        "signaltrace.receiver.is_async": False,
    }
    assert dispatch.parent is None
    assert parent_id(receiver) == dispatch.context.span_id
    assert receiver.context.trace_id == dispatch.context.trace_id
    assert dispatch.status.status_code is StatusCode.UNSET
    assert receiver.status.status_code is StatusCode.UNSET
    assert dispatch.start_time <= receiver.start_time <= receiver.end_time <= dispatch.end_time


class ClassPropertySender:
    """A sender whose ``__class__`` is a property (as proxies have): reading it runs code."""

    reads = 0

    @property
    def __class__(self):  # type: ignore[override]
        ClassPropertySender.reads += 1
        return type(self)


def test_sender_attribute_is_never_an_instance_value_and_runs_no_sender_code(spans, connect):
    connect(done, on_done)
    ClassPropertySender.reads = 0
    done.send(sender="nobody")
    done.send(sender=ClassPropertySender())
    senders = [span.attributes["signaltrace.sender"] for span in spans.named("send tests.test_otel.done")]
    assert senders == ["<builtins.str object>", "<tests.test_otel.ClassPropertySender object>"]
    assert ClassPropertySender.reads == 0


def test_spans_follow_reconnected_receivers_and_renamed_senders(spans, connect):
    connect(done, on_done, dispatch_uid="first")
    done.send(sender=Item)
    done.disconnect(dispatch_uid="first")
    connect(done, on_done, dispatch_uid="second")
    done.send(sender=Ping)
    done.send(sender=Item(pk=1))  # an instance: named by its type, never by its repr
    receivers = spans.named("receiver tests.test_otel.on_done")
    uids = [span.attributes["signaltrace.dispatch_uid"] for span in receivers]
    assert uids == ["first", "second", "second"]
    senders = [span.attributes["signaltrace.sender"] for span in spans.named("send tests.test_otel.done")]
    assert senders == ["testapp.Item", "testapp.Ping", "<tests.testapp.models.Item object>"]


def test_record_kwargs_follows_settings_without_recording(spans, connect):
    connect(done, on_done)
    done.send(sender=None, order=1)
    with override_settings(SIGNALTRACE={"OTEL_RECORD_KWARGS": True}):
        done.send(sender=None, order=2)
    done.send(sender=None, order=3)
    dispatches = spans.named("send tests.test_otel.done")
    kwargs = [span.attributes.get("signaltrace.kwargs.order") for span in dispatches]
    assert kwargs == [None, "2", None]


def test_no_spans_without_live_receivers(spans, connect):
    done.send(sender=Item)
    connect(done, on_done, sender=Ping)
    done.send(sender=Item)  # a receiver, but not for this sender
    assert spans.all() == []
    done.send(sender=Ping)
    assert [span.name for span in spans.all()] == [
        "receiver tests.test_otel.on_done",
        "send tests.test_otel.done",
    ]


@pytest.mark.django_db
def test_model_signals_name_models_never_instances_or_kwargs(spans, connect):
    received = []
    connect(post_save, lambda sender, **kwargs: received.append(sender), sender=Item)
    connect(pre_init, on_done, sender=Item)
    connect(post_init, on_done, sender=Item)
    Item.objects.create(name="secret name")
    list(Item.objects.all())

    assert received == [Item]
    names = [span.name for span in spans.all()]
    assert names == [
        "receiver tests.test_otel.test_model_signals_name_models_never_instances_or_kwargs.<locals>.<lambda>",
        "send post_save",
    ]
    dispatch = spans.one("send post_save")
    assert dispatch.attributes["signaltrace.sender"] == "testapp.Item"
    values = " ".join(str(value) for span in spans.all() for value in span.attributes.values())
    assert "secret name" not in values and "items)" not in values
    assert not any(key.startswith("signaltrace.kwargs") for key in dispatch.attributes)


@override_settings(SIGNALTRACE={"OTEL_RECORD_KWARGS": True})
def test_record_kwargs_opt_in_is_redacted(spans, connect):
    connect(done, on_done)
    done.send(sender=None, order=7, api_token="hunter2", user=object())
    attributes = spans.one("send tests.test_otel.done").attributes
    assert attributes["signaltrace.kwargs.order"] == "7"
    assert attributes["signaltrace.kwargs.api_token"] == "********************"
    assert attributes["signaltrace.kwargs.user"] == "<builtins.object object>"


def test_raising_receiver_fails_its_span_and_the_dispatch(spans, connect):
    connect(done, failing)
    with pytest.raises(ValueError, match="receiver failed"):
        done.send(sender=None)
    receiver = spans.one("receiver tests.test_otel.failing")
    dispatch = spans.one("send tests.test_otel.done")
    assert receiver.status.status_code is StatusCode.ERROR
    assert receiver.status.description == "ValueError: receiver failed"
    assert receiver.attributes["error.type"] == "ValueError"
    (event,) = receiver.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "receiver failed"
    assert "signaltrace.swallowed" not in receiver.attributes
    assert dispatch.status.status_code is StatusCode.ERROR
    assert dispatch.attributes["error.type"] == "ValueError"
    assert dispatch.events == ()


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text for you")


def test_an_exception_whose_str_raises_still_ends_every_span(spans, connect):
    def raising_unprintable(sender, **kwargs):
        raise Unprintable

    connect(done, raising_unprintable)
    with pytest.raises(Unprintable):
        done.send(sender=None)
    receiver = spans.one(f"receiver {raising_unprintable.__module__}.{raising_unprintable.__qualname__}")
    dispatch = spans.one("send tests.test_otel.done")
    assert receiver.status.status_code is StatusCode.ERROR
    assert receiver.status.description.startswith("Unprintable: ")
    assert receiver.attributes["error.type"] == "tests.test_otel.Unprintable"
    assert dispatch.status.status_code is StatusCode.ERROR
    assert dispatch.attributes["error.type"] == "tests.test_otel.Unprintable"


def test_send_robust_error_is_handled_by_the_dispatch(spans, connect):
    connect(done, failing)
    connect(done, on_done)
    responses = done.send_robust(sender=None)
    assert isinstance(responses[0][1], ValueError) and responses[1][1] == "ok"
    receiver = spans.one("receiver tests.test_otel.failing")
    dispatch = spans.one("send_robust tests.test_otel.done")
    assert receiver.status.status_code is StatusCode.ERROR
    assert receiver.attributes["error.type"] == "ValueError"
    assert receiver.attributes["signaltrace.swallowed"] is True
    assert [event.name for event in receiver.events] == ["exception"]
    assert dispatch.status.status_code is StatusCode.UNSET
    assert "error.type" not in dispatch.attributes
    assert spans.one("receiver tests.test_otel.on_done").status.status_code is StatusCode.UNSET


def send_nested_inside_work(spans: Spans, connect) -> dict[str, ReadableSpan]:
    """Inside a "request" span, ``done`` runs a receiver that opens a "work inside"
    span and sends ``nested`` in it; returns the six spans by role."""

    def outer_receiver(sender, **kwargs):
        with spans.tracer.start_as_current_span("work inside"):
            nested.send(sender=None)

    connect(done, outer_receiver)
    connect(nested, on_done)
    with spans.tracer.start_as_current_span("request") as request:
        done.send(sender=None)
        assert trace.get_current_span() is request
    return {
        "request": spans.one("request"),
        "dispatch": spans.one("send tests.test_otel.done"),
        "receiver": spans.one(f"receiver {outer_receiver.__module__}.{outer_receiver.__qualname__}"),
        "work": spans.one("work inside"),
        "inner": spans.one("send tests.test_otel.nested"),
        "inner_receiver": spans.one("receiver tests.test_otel.on_done"),
    }


def test_nested_dispatch_and_other_spans_nest_under_the_receiver(spans, connect):
    found = send_nested_inside_work(spans, connect)
    request_span, dispatch, receiver = found["request"], found["dispatch"], found["receiver"]
    work, inner, inner_receiver = found["work"], found["inner"], found["inner_receiver"]
    assert parent_id(dispatch) == request_span.context.span_id
    assert parent_id(receiver) == dispatch.context.span_id
    assert parent_id(work) == receiver.context.span_id
    assert parent_id(inner) == work.context.span_id
    assert inner.attributes["signaltrace.depth"] == 1
    assert parent_id(inner_receiver) == inner.context.span_id
    assert len({span.context.trace_id for span in spans.all()}) == 1


def test_sync_receivers_run_in_the_callers_context_with_their_own_span_current(spans, connect):
    seen = []

    def first(sender, **kwargs):
        seen.append((baggage.get_baggage("tenant"), trace.get_current_span().get_span_context().span_id))
        otel_context.attach(baggage.set_baggage("left", "behind"))  # never detached

    def second(sender, **kwargs):
        seen.append((baggage.get_baggage("tenant"), trace.get_current_span().get_span_context().span_id))
        seen.append(baggage.get_baggage("left"))

    connect(done, first)
    connect(done, second)
    token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with spans.tracer.start_as_current_span("caller") as caller:
            done.send(sender=None)
            after = trace.get_current_span()
    finally:
        otel_context.detach(token)
    span_ids = {span.name.rpartition(".")[2]: span.context.span_id for span in spans.all()}
    assert seen[:2] == [("acme", span_ids["first"]), ("acme", span_ids["second"])]
    assert seen[2] is None  # what a receiver attaches is undone with its span
    assert after is caller


def test_span_times_are_the_recorded_times_inside_the_callers_span(spans, connect):
    """Spans take the records' timestamps: same durations, and they fit in time
    inside the span of the code that sent them (whose times the SDK read itself)."""
    import signaltrace

    with signaltrace.record() as recorded:
        found = send_nested_inside_work(spans, connect)
    request, dispatch, receiver = found["request"], found["dispatch"], found["receiver"]
    work, inner, inner_receiver = found["work"], found["inner"], found["inner_receiver"]
    for outer, inside in ((request, dispatch), (dispatch, receiver), (receiver, work), (work, inner)):
        assert outer.start_time <= inside.start_time <= inside.end_time <= outer.end_time, (
            outer.name,
            inside.name,
        )
    assert inner.start_time <= inner_receiver.start_time <= inner_receiver.end_time <= inner.end_time

    (outer_record,) = [d for d in recorded.dispatches if d.signal_name == "tests.test_otel.done"]
    (inner_record,) = [d for d in recorded.dispatches if d.signal_name == "tests.test_otel.nested"]
    assert dispatch.end_time - dispatch.start_time == outer_record.duration_ns
    assert receiver.end_time - receiver.start_time == outer_record.calls[0].duration_ns
    assert inner_receiver.end_time - inner_receiver.start_time == inner_record.calls[0].duration_ns


def test_the_clock_offset_is_kept_for_a_second_then_read_again(spans, connect):
    observer = SignalInstrumentor()._observer
    connect(done, on_done)
    wall_minus_perf = time_ns() - perf_counter_ns()
    ten_seconds = 10_000_000_000

    observer.clock = (perf_counter_ns(), wall_minus_perf + ten_seconds)  # fresh: used as is
    before = time_ns()
    done.send(sender=None)
    assert spans.one("send tests.test_otel.done").start_time - before >= ten_seconds
    spans.exporter.clear()

    observer.clock = (perf_counter_ns() - CLOCK_OFFSET_MAX_AGE_NS - 1, wall_minus_perf + ten_seconds)  # stale
    before = time_ns()
    done.send(sender=None)
    after = time_ns()
    dispatch = spans.one("send tests.test_otel.done")
    assert before <= dispatch.start_time <= dispatch.end_time <= after


def test_nested_dispatch_parent_is_the_receiver_even_when_not_current(spans, connect):
    """The parent comes from the records: a receiver that detaches the context still counts."""

    def sending_receiver(sender, **kwargs):
        with trace.use_span(trace.INVALID_SPAN):
            nested.send(sender=None)

    connect(done, sending_receiver)
    connect(nested, on_done)
    done.send(sender=None)
    receiver = spans.one(f"receiver {sending_receiver.__module__}.{sending_receiver.__qualname__}")
    assert parent_id(spans.one("send tests.test_otel.nested")) == receiver.context.span_id


@pytest.mark.django_db
def test_loop_stopped_is_an_error_event_on_the_stopped_dispatch(spans, connect):
    def resave(sender, instance, **kwargs):
        instance.counter += 1
        instance.save()

    connect(post_save, resave, sender=Ping)
    with pytest.raises(SignalLoopError):
        Ping.objects.create()

    dispatches = sorted(spans.named("send post_save"), key=lambda span: span.attributes["signaltrace.depth"])
    assert [span.attributes["signaltrace.depth"] for span in dispatches] == [0, 1, 2]
    stopped = dispatches[2]
    (event,) = stopped.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "signaltrace.errors.SignalLoopError"
    assert event.attributes["exception.message"].startswith(
        "Signal loop detected: post_save(testapp.Ping #1)"
    )
    assert event.attributes["signaltrace.loop.action"] == "raised"
    assert stopped.status.status_code is StatusCode.ERROR
    receivers = spans.named(f"receiver {resave.__module__}.{resave.__qualname__}")
    assert len(receivers) == 2
    assert parent_id(stopped) in {span.context.span_id for span in receivers}
    for span in (*receivers, dispatches[0], dispatches[1]):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "signaltrace.errors.SignalLoopError"


@needs_asend
async def test_async_receivers_run_under_their_dispatch(spans, connect):
    async def first(sender, **kwargs):
        await asyncio.sleep(0)
        await nested.asend(sender=None)
        await asyncio.sleep(0)

    async def second(sender, **kwargs):
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    def sync_one(sender, **kwargs):
        with spans.tracer.start_as_current_span("sync work"):
            pass

    async def inner_receiver(sender, **kwargs):
        await asyncio.sleep(0)

    connect(done, first)
    connect(done, second)
    connect(done, sync_one)
    connect(nested, inner_receiver)
    with spans.tracer.start_as_current_span("request") as request:
        await done.asend(sender=None)
        assert trace.get_current_span() is request

    def receiver_span(function) -> ReadableSpan:
        return spans.one(f"receiver {function.__module__}.{function.__qualname__}")

    dispatch = spans.one("asend tests.test_otel.done")
    assert parent_id(dispatch) == spans.one("request").context.span_id
    for function in (first, second, sync_one):
        assert parent_id(receiver_span(function)) == dispatch.context.span_id
    assert receiver_span(first).attributes["signaltrace.receiver.is_async"] is True
    assert parent_id(spans.one("sync work")) == receiver_span(sync_one).context.span_id
    inner = spans.one("asend tests.test_otel.nested")
    assert parent_id(inner) == receiver_span(first).context.span_id
    assert parent_id(receiver_span(inner_receiver)) == inner.context.span_id


@needs_asend
async def test_async_robust_error_and_failing_asend(spans, connect):
    async def afailing(sender, **kwargs):
        raise ValueError("async receiver failed")

    connect(done, afailing)
    responses = await done.asend_robust(sender=None)
    assert isinstance(responses[0][1], ValueError)
    with pytest.raises(ValueError):
        await done.asend(sender=None)

    robust = spans.one("asend_robust tests.test_otel.done")
    plain = spans.one("asend tests.test_otel.done")
    assert robust.status.status_code is StatusCode.UNSET
    assert plain.status.status_code is StatusCode.ERROR
    assert plain.attributes["error.type"] == "ValueError"
    receivers = spans.named(f"receiver {afailing.__module__}.{afailing.__qualname__}")
    assert [span.status.status_code for span in receivers] == [StatusCode.ERROR, StatusCode.ERROR]


@pytest.mark.django_db
def test_django_request_span_is_the_parent(spans, connect):
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    connect(post_save, on_done, sender=Item)
    connect(item_viewed, on_done)
    DjangoInstrumentor().instrument(tracer_provider=spans.provider)
    try:
        response = Client().get("/items/create/?name=x")
    finally:
        DjangoInstrumentor().uninstrument()
    assert response.status_code == 200

    (request,) = [span for span in spans.all() if span.kind is SpanKind.SERVER]
    assert request.name == "GET items/create/"
    saved = spans.one("send post_save")
    viewed = spans.one("send tests.testapp.signals.item_viewed")
    assert parent_id(saved) == request.context.span_id
    assert parent_id(viewed) == request.context.span_id
    assert saved.context.trace_id == request.context.trace_id


def in_trace(trace_id: int):
    """The context a dispatch sent inside a span of trace ``trace_id`` starts in."""
    span = NonRecordingSpan(SpanContext(trace_id=trace_id, span_id=1, is_remote=False))
    return trace.set_span_in_context(span)


def selection(**otel_settings) -> Selection:
    return Selection(validated(otel_settings))


@override_settings(
    SIGNALTRACE={
        "OTEL_SIGNALS_DENY": ["tests.test_otel.nested"],
        "OTEL_SAMPLE_RATES": {"tests.test_otel.done": 0.25},
    }
)
def test_deny_list_and_sampling(spans, connect):
    connect(done, on_done)
    connect(nested, on_done)
    for _ in range(400):
        with spans.tracer.start_as_current_span("request"):
            done.send(sender=None)
            nested.send(sender=None)
    sent = len(spans.named("send tests.test_otel.done"))
    assert 60 <= sent <= 140  # 100 expected: 4.6 standard deviations either way
    assert len(spans.named("receiver tests.test_otel.on_done")) == sent
    assert spans.named("send tests.test_otel.nested") == []


@override_settings(SIGNALTRACE={"OTEL_SAMPLE_RATES": {"tests.test_otel.done": 0}})
def test_a_sample_rate_of_zero_traces_no_dispatch(spans, connect):
    """Issue 15 (11a): the first of 42 dispatches got a span at rate 0."""
    connect(done, on_done)
    for _ in range(21):
        done.send(sender=None)
        with spans.tracer.start_as_current_span("request"):
            done.send(sender=None)
    assert spans.named("send tests.test_otel.done") == []
    assert spans.named("receiver tests.test_otel.on_done") == []


def test_sampling_keeps_the_rate_of_traces_the_same_way_for_the_same_trace():
    """Issue 15 (11b): decided from the trace id, like TraceIdRatioBased."""
    half = selection(OTEL_SAMPLE_RATES={"tests.test_otel.done": 0.5})
    generator = random.Random(15)
    ids = [generator.getrandbits(128) or 1 for _ in range(1000)]
    kept = [half.wants(done, in_trace(trace_id)) for trace_id in ids]
    assert 0.4 <= sum(kept) / len(ids) <= 0.6
    assert [half.wants(done, in_trace(trace_id)) for trace_id in ids] == kept  # the same twice
    # Trace ids that are not random (a counter) are spread as well.
    counted = sum(half.wants(done, in_trace(trace_id)) for trace_id in range(1, 1001))
    assert 400 <= counted <= 600
    # Two signals in one trace are decided independently: both kept in about a quarter.
    both = selection(OTEL_SAMPLE_RATES={"tests.test_otel.done": 0.5, "tests.test_otel.nested": 0.5})
    together = sum(both.wants(done, in_trace(t)) and both.wants(nested, in_trace(t)) for t in ids)
    assert 180 <= together <= 320
    # Rate 0 keeps none, 1 keeps all, in a trace or not.
    none = selection(OTEL_SAMPLE_RATES={"tests.test_otel.done": 0})
    every = selection(OTEL_SAMPLE_RATES={"tests.test_otel.done": 1})
    contexts = [in_trace(trace_id) for trace_id in ids[:200]] + [None] * 200
    assert not any(none.wants(done, context) for context in contexts)
    assert all(every.wants(done, context) for context in contexts)
    # Outside any trace: a coin per dispatch.
    outside = sum(half.wants(done, otel_context.Context()) for _ in range(1000))
    assert 400 <= outside <= 600
    # Other signals are not sampled.
    assert all(half.wants(nested, in_trace(trace_id)) for trace_id in ids[:100])


class SiteA:
    pass


class SiteB:
    pass


class SiteC:
    pass


class SiteD:
    pass


@override_settings(SIGNALTRACE={"OTEL_SAMPLE_RATES": {"tests.test_otel.done": 0.5}})
def test_sampling_gives_every_call_site_its_share_of_traces(spans, connect):
    """Issue 15 (11b): with a count, the same 2 of the 4 sends of each request were dropped."""
    connect(done, on_done)
    sites = [SiteA, SiteB, SiteC, SiteD]
    for _ in range(200):
        with spans.tracer.start_as_current_span("signup"):
            for site in sites:
                done.send(sender=site)
    kept: dict[str, set[int]] = {f"tests.test_otel.{site.__name__}": set() for site in sites}
    for span in spans.named("send tests.test_otel.done"):
        kept[span.attributes["signaltrace.sender"]].add(span.context.trace_id)
    for site, traces in kept.items():
        assert 60 <= len(traces) <= 140, site  # kept in 30%..70% of the 200 signups
    # The dispatch and receiver spans of a kept dispatch are in the signup's trace.
    signups = {span.context.trace_id for span in spans.named("signup")}
    assert set().union(*kept.values()) <= signups


@pytest.mark.django_db
def test_signals_are_named_as_spans_show_them(spans, connect):
    """Issue 15 (11e): the name on the span (post_save) works in the settings and the checks."""
    connect(post_save, on_done, sender=Item)
    Item.objects.create(name="shown")
    shown = spans.one("send post_save").attributes["signaltrace.signal"]
    assert shown == "post_save"
    spans.exporter.clear()
    with override_settings(SIGNALTRACE={"OTEL_SIGNALS_DENY": [shown]}):
        assert [m.id for m in run_checks() if m.id.startswith("signaltrace.")] == []
        Item.objects.create(name="denied")
    assert spans.named("send post_save") == []
    with override_settings(SIGNALTRACE={"OTEL_SIGNALS_ALLOW": ["post_save", "request_started"]}):
        spans.exporter.clear()
        assert [m.id for m in run_checks() if m.id.startswith("signaltrace.")] == []
        Item.objects.create(name="allowed")
        done.send(sender=None)
    assert [span.name for span in spans.all() if span.name.startswith("send")] == ["send post_save"]
    with override_settings(SIGNALTRACE={"OTEL_SAMPLE_RATES": {"post_save": 0}}):
        spans.exporter.clear()
        assert [m.id for m in run_checks() if m.id.startswith("signaltrace.")] == []
        Item.objects.create(name="sampled out")
    assert spans.named("send post_save") == []


def test_a_short_name_is_found_once_its_module_is_imported():
    """A Django signal module imported after the rules were built (at startup) still counts."""
    import types

    rules = selection(OTEL_SIGNALS_DENY=["late_signaltrace_test_signal"])
    late = Signal()
    module = types.ModuleType("django.signaltrace_test_late")
    module.late_signaltrace_test_signal = late
    assert rules.wants(late)
    sys.modules[module.__name__] = module
    try:
        assert not rules.wants(late)
    finally:
        del sys.modules[module.__name__]


def test_receiver_line_is_the_def_line_not_the_decorators(spans):
    """Issue 15 (11f): co_firstlineno is the first decorator's line."""
    lines = Path(__file__).read_text().splitlines()
    def_line = lines.index("def on_decorated(sender, **kwargs):") + 1
    assert on_decorated.__code__.co_firstlineno == def_line - 5  # @receiver( is five lines above
    assert decorated.send(sender=None) == [(on_decorated, "decorated")]
    attributes = spans.one("receiver tests.test_otel.on_decorated").attributes
    assert attributes["code.line.number"] == def_line
    assert attributes["code.file.path"] == __file__


def test_allow_list(spans, connect):
    connect(done, on_done)
    connect(nested, on_done)
    with override_settings(SIGNALTRACE={"OTEL_SIGNALS_ALLOW": ["tests.test_otel.nested"]}):
        # Only what is sent under the setting: override_settings' own setting_changed is
        # sent while the previous rules are in force.
        spans.exporter.clear()
        done.send(sender=None)
        nested.send(sender=None)
    assert [span.name for span in spans.all() if span.name.startswith("send")] == [
        "send tests.test_otel.nested"
    ]


def test_settings_changes_are_followed(spans, connect):
    connect(done, on_done)
    with override_settings(SIGNALTRACE={"OTEL_SIGNALS_DENY": ["tests.test_otel.done"]}):
        done.send(sender=None)
    assert spans.named("send tests.test_otel.done") == []
    done.send(sender=None)
    assert len(spans.named("send tests.test_otel.done")) == 1


def test_uninstrument_stops_spans_and_instrument_is_idempotent(connect):
    connect(done, on_done)
    spans = Spans()
    instrumentor = SignalInstrumentor()
    instrumentor.instrument(tracer_provider=spans.provider)
    instrumentor.instrument(tracer_provider=spans.provider)
    done.send(sender=None)
    instrumentor.uninstrument()
    done.send(sender=None)
    assert len(spans.named("send tests.test_otel.done")) == 1
    assert SignalInstrumentor() is instrumentor
    assert list(instrumentor.instrumentation_dependencies()) == ["django >= 4.2"]


class BrokenTracer:
    def start_span(self, *args, **kwargs):
        raise RuntimeError("tracer is broken")


def test_a_broken_tracer_never_breaks_the_dispatch(spans, connect, caplog, fresh_internal_errors):
    connect(done, on_done)
    SignalInstrumentor()._observer.tracer = BrokenTracer()
    assert done.send(sender=None) == [(on_done, "ok")]
    assert "SpanObserver.dispatch_started" in caplog.text


def test_entry_point_is_registered():
    (entry,) = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == "signaltrace"]
    assert entry.load() is SignalInstrumentor


AUTO_INSTRUMENTED = """
import django
from django.conf import settings
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from signaltrace.otel import SignalInstrumentor

assert SignalInstrumentor().is_instrumented_by_opentelemetry, "not loaded by opentelemetry-instrument"
assert not settings.configured
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
settings.configure(
    INSTALLED_APPS=["signaltrace"],
    SIGNALTRACE={
        "OTEL_SIGNALS_DENY": ["django.core.signals.request_started"],
        "OTEL_ALL_DISPATCHES": True,  # request_finished outside any span
    },
)
django.setup()
from django.core.signals import request_finished, request_started
def receiver(sender, **kwargs): pass
request_started.connect(receiver)
request_finished.connect(receiver)
request_started.send(sender=None)
request_finished.send(sender=None)
print(sorted(span.name for span in exporter.get_finished_spans()))
"""


def test_opentelemetry_instrument_loads_it_before_settings_exist():
    """The real `opentelemetry-instrument` launcher: entry point, then settings read lazily."""
    launcher = Path(sys.executable).parent / "opentelemetry-instrument"
    env = {
        **os.environ,
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "django,sqlite3,wsgi,asgi",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [str(launcher), sys.executable, "-c", AUTO_INSTRUMENTED],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "['receiver __main__.receiver', 'receiver django.core.cache.close_caches', "
        "'receiver django.db.close_old_connections', 'send request_finished']"
    )


@pytest.mark.parametrize(
    ("otel_settings", "expected_id"),
    [
        ({"OTEL_SIGNALS_ALLOW": "django.db.models.signals.post_save"}, "signaltrace.E020"),
        ({"OTEL_SIGNALS_DENY": [3]}, "signaltrace.E020"),
        ({"OTEL_SIGNALS_DENY": ["nowhere.signals.gone"]}, "signaltrace.E021"),
        ({"OTEL_SIGNALS_ALLOW": ["django.db.models.signals.ModelSignal"]}, "signaltrace.E021"),
        ({"OTEL_SAMPLE_RATES": {"django.db.models.signals.post_save": 1.5}}, "signaltrace.E022"),
        ({"OTEL_SAMPLE_RATES": ["django.db.models.signals.post_save"]}, "signaltrace.E022"),
        ({"OTEL_SAMPLE_RATES": {"nowhere.gone": 0.5}}, "signaltrace.E021"),
        ({"OTEL_SIGNALS_DENY": ["post_saved"]}, "signaltrace.E021"),
        ({"OTEL_SAMPLE_RATES": {"nowhere": 0.5}}, "signaltrace.E021"),
        ({"OTEL_RECORD_KWARGS": "yes"}, "signaltrace.E023"),
        ({"OTEL_SIGNALS_ALLOW": ["django.db.models.signals.post_init"]}, "signaltrace.W020"),
    ],
)
def test_checks(otel_settings, expected_id):
    with override_settings(SIGNALTRACE=otel_settings):
        ids = [message.id for message in run_checks() if message.id.startswith("signaltrace.")]
    assert ids == [expected_id]


def test_valid_otel_settings_pass_the_checks():
    valid = {
        "OTEL_SIGNALS_ALLOW": ["django.db.models.signals.post_save", "pre_delete"],
        "OTEL_SIGNALS_DENY": ["django.core.signals.request_finished", "request_started"],
        "OTEL_SAMPLE_RATES": {
            "django.db.models.signals.post_save": 0.1,
            "django.core.signals.request_started": 1,
            "pre_save": 0.5,
        },
        "OTEL_RECORD_KWARGS": True,
    }
    with override_settings(SIGNALTRACE=valid):
        assert [message.id for message in run_checks() if message.id.startswith("signaltrace.")] == []


def test_otlp_set_up_without_the_exporter_package_names_it(monkeypatch):
    import builtins

    from django.core.exceptions import ImproperlyConfigured

    from signaltrace.otel import setup_otlp_from_environment

    real_import = builtins.__import__

    def without_exporter(name, *args, **kwargs):
        if name.startswith("opentelemetry.exporter"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setattr(builtins, "__import__", without_exporter)
    with pytest.raises(
        ImproperlyConfigured, match="pip install opentelemetry-sdk opentelemetry-exporter-otlp"
    ):
        setup_otlp_from_environment()
