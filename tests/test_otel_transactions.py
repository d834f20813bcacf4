"""Transactions on dispatch spans; on_commit callbacks, hazards and bypassed writes as span events."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery
from django.core.mail import send_mail
from django.db import transaction
from django.db.models.signals import post_save
from opentelemetry.trace import StatusCode

import signaltrace
from tests.databases import database_params
from tests.spans import Spans
from tests.testapp.models import Item

pytestmark = pytest.mark.django_db(transaction=True)

celery_app = Celery("signaltrace_otel_tests", broker="memory://", set_as_current=False)


@celery_app.task(name="tests.notify")
def notify(pk: int) -> int:
    return pk


def noted(sender: Any, **kwargs: Any) -> None:
    """An application receiver: its model's dispatches get spans under the production defaults."""


def after_commit() -> None:
    """An on_commit callback."""


def failing_callback() -> None:
    raise RuntimeError("the callback failed")


@pytest.fixture
def celery_watched() -> None:
    """Have the core listen to Celery's ``before_task_publish``.

    The core connects to it when it installs its hooks or opens a ``record()`` block,
    if Celery is imported by then. Here Celery was imported after Django's set-up
    installed the hooks, and ``instrument()`` finds them installed: an empty
    ``record()`` block makes the core look again.
    """
    with signaltrace.record():
        pass


def _events(span: Any, name: str) -> list[Any]:
    return [event for event in span.events if event.name == name]


def _all_events(spans: Spans) -> list[str]:
    return [event.name for span in spans.all() for event in span.events]


def _line_of(function: Any) -> int:
    return function.__code__.co_firstlineno


def _receiver_spans(spans: Spans, receiver: Any) -> list[Any]:
    """The spans of ``receiver``'s calls, first call first."""
    name = f"receiver {receiver.__module__}.{receiver.__qualname__}"
    return sorted(spans.named(name), key=lambda span: span.start_time)


# ------------------------------------------------------------------ dispatch span attributes


def test_a_save_in_autocommit_names_the_alias_only(spans: Spans, connect: Any) -> None:
    connect(post_save, noted, sender=Item)
    Item.objects.create(name="a")
    attributes = spans.one("send post_save").attributes
    assert attributes["signaltrace.transaction.alias"] == "default"
    assert attributes["signaltrace.transaction.in_atomic"] is False
    assert "signaltrace.transaction.depth" not in attributes
    assert "signaltrace.transaction.durable" not in attributes


def test_a_save_inside_atomic_carries_the_block(spans: Spans, connect: Any) -> None:
    connect(post_save, noted, sender=Item)
    with transaction.atomic(durable=True):
        Item.objects.create(name="outer")
        with transaction.atomic():
            Item.objects.create(name="inner")
    outer, inner = sorted(spans.named("send post_save"), key=lambda span: span.start_time)
    assert outer.attributes["signaltrace.transaction.alias"] == "default"
    assert outer.attributes["signaltrace.transaction.in_atomic"] is True
    assert outer.attributes["signaltrace.transaction.depth"] == 1
    assert outer.attributes["signaltrace.transaction.durable"] is True
    assert inner.attributes["signaltrace.transaction.depth"] == 2
    assert inner.attributes["signaltrace.transaction.durable"] is False
    # The same signal, sender and depth, another transaction: the cached attributes differ.
    Item.objects.create(name="after")
    latest = max(spans.named("send post_save"), key=lambda span: span.start_time)
    assert latest.attributes["signaltrace.transaction.in_atomic"] is False


@pytest.mark.django_db  # the test runs inside TestCase-style blocks of its own
def test_testcase_blocks_are_not_the_application_s(spans: Spans, connect: Any) -> None:
    connect(post_save, noted, sender=Item)
    Item.objects.create(name="a")
    assert spans.one("send post_save").attributes["signaltrace.transaction.in_atomic"] is False


def test_a_signal_outside_any_transaction_has_no_transaction_attributes(spans: Spans) -> None:
    from tests.testapp.signals import item_viewed

    item_viewed.connect(noted, weak=False, dispatch_uid="otel-tx-custom")
    try:
        item_viewed.send(sender=None)
        with transaction.atomic():
            item_viewed.send(sender=None)
    finally:
        item_viewed.disconnect(dispatch_uid="otel-tx-custom")
    outside, inside = sorted(
        (span for span in spans.all() if span.name.startswith("send ")), key=lambda span: span.start_time
    )
    assert not any(key.startswith("signaltrace.transaction.") for key in outside.attributes)
    assert inside.attributes["signaltrace.transaction.depth"] == 1


# ------------------------------------------------------------------ on_commit


@pytest.mark.parametrize("alias", database_params())
def test_a_callback_registered_in_a_receiver_then_run_after_the_commit(
    spans: Spans, connect: Any, alias: str
) -> None:
    def register(sender: Any, **kwargs: Any) -> None:
        transaction.on_commit(after_commit, using=alias)

    connect(post_save, register, sender=Item)
    with spans.tracer.start_as_current_span("view"):
        with transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="a")

    [receiver] = _receiver_spans(spans, register)
    view = spans.one("view")
    [registered] = _events(receiver, "signaltrace.on_commit.registered")
    assert dict(registered.attributes) == {
        "signaltrace.on_commit.callback": f"{__name__}.after_commit",
        "signaltrace.on_commit.location": f"tests/test_otel_transactions.py:{_line_of(after_commit)}",
        "signaltrace.on_commit.alias": alias,
        "signaltrace.on_commit.fate": "pending",
    }
    # It ran at the commit, when the view's span was current again (the receiver's had ended).
    [ran] = _events(view, "signaltrace.on_commit.ran")
    assert ran.attributes["signaltrace.on_commit.callback"] == f"{__name__}.after_commit"
    assert ran.attributes["signaltrace.on_commit.alias"] == alias
    assert 0 <= ran.attributes["signaltrace.on_commit.duration_ms"] < 1000
    assert "error.type" not in ran.attributes
    assert receiver.start_time <= registered.timestamp <= receiver.end_time
    assert receiver.end_time <= ran.timestamp <= view.end_time
    assert _events(view, "signaltrace.on_commit.discarded") == []


@pytest.mark.parametrize("alias", database_params())
def test_a_rollback_discards_the_callback(spans: Spans, alias: str) -> None:
    with spans.tracer.start_as_current_span("view"):
        with pytest.raises(ValueError, match="roll back"):
            with transaction.atomic(using=alias):
                transaction.on_commit(after_commit, using=alias)
                raise ValueError("roll back")
    view = spans.one("view")
    assert [event.name for event in view.events] == [
        "signaltrace.on_commit.registered",
        "signaltrace.on_commit.discarded",
    ]
    discarded = view.events[1]
    assert discarded.attributes["signaltrace.on_commit.callback"] == f"{__name__}.after_commit"
    assert "signaltrace.on_commit.duration_ms" not in discarded.attributes


def test_a_callback_outside_a_transaction_runs_at_once(spans: Spans) -> None:
    with spans.tracer.start_as_current_span("view"):
        transaction.on_commit(after_commit)
    view = spans.one("view")
    registered, ran = view.events
    assert registered.name == "signaltrace.on_commit.registered"
    assert registered.attributes["signaltrace.on_commit.fate"] == "ran at once"
    assert ran.name == "signaltrace.on_commit.ran"
    assert ran.attributes["signaltrace.on_commit.duration_ms"] >= 0


def test_a_robust_callback_that_raises_is_an_event_not_an_error(spans: Spans, caplog: Any) -> None:
    with spans.tracer.start_as_current_span("view"):
        with transaction.atomic():
            transaction.on_commit(failing_callback, robust=True)
    view = spans.one("view")
    [ran] = _events(view, "signaltrace.on_commit.ran")
    assert ran.attributes["error.type"] == "RuntimeError"
    assert view.status.status_code is StatusCode.UNSET
    assert "the callback failed" in caplog.text  # Django logged it, as always


# ------------------------------------------------------------------ hazards


def test_mail_sent_by_a_receiver_inside_a_transaction_is_a_hazard(spans: Spans, connect: Any) -> None:
    def welcome(sender: Any, instance: Any, **kwargs: Any) -> None:
        send_mail("Welcome, Ada Lovelace", "Hello", None, ["ada@example.com"])  # the hazard

    connect(post_save, welcome, sender=Item)
    with transaction.atomic():
        Item.objects.create(name="a")
    Item.objects.create(name="outside a transaction: no hazard")

    first, second = _receiver_spans(spans, welcome)
    [hazard] = first.events
    assert hazard.name == "signaltrace.hazard"
    attributes = hazard.attributes
    assert attributes["signaltrace.hazard.kind"] == "mail_before_commit"
    assert (
        attributes["signaltrace.hazard.place"] == f"tests/test_otel_transactions.py:{_line_of(welcome) + 1}"
    )
    assert attributes["signaltrace.side_effect.kind"] == "email"
    assert attributes["signaltrace.side_effect.what"] == "an e-mail to 1 recipient"
    message = attributes["signaltrace.hazard.message"]
    assert message.startswith(f"{welcome.__qualname__.join(['tests.test_otel_transactions.', ''])} (")
    assert (
        f"sent an e-mail to 1 recipient at tests/test_otel_transactions.py:{_line_of(welcome) + 1} "
        "inside a transaction: atomic block (depth 1) on 'default', open; "
        "it goes out even if the transaction is rolled back. "
        "Fix: send it after the commit: transaction.on_commit(lambda: send_mail(...))."
    ) in message
    text = " ".join(str(value) for value in attributes.values())
    assert "Ada" not in text and "example.com" not in text  # neither subject nor address
    assert first.status.status_code is StatusCode.UNSET  # a warning, not an error
    assert second.events == ()


def test_a_task_published_inside_a_transaction_is_a_hazard_and_delay_on_commit_is_not(
    spans: Spans, connect: Any, celery_watched: None
) -> None:
    def publish(sender: Any, instance: Any, **kwargs: Any) -> None:
        if instance.name == "now":
            notify.delay(instance.pk)
        else:
            notify.delay_on_commit(instance.pk)

    connect(post_save, publish, sender=Item)
    with spans.tracer.start_as_current_span("view"):
        with transaction.atomic():
            Item.objects.create(name="now")
            Item.objects.create(name="after the commit")

    now, later = _receiver_spans(spans, publish)
    [hazard] = now.events
    assert hazard.name == "signaltrace.hazard"
    assert hazard.attributes["signaltrace.hazard.kind"] == "task_before_commit"
    assert hazard.attributes["signaltrace.side_effect.what"] == "Celery task tests.notify"
    assert (
        hazard.attributes["signaltrace.hazard.place"]
        == f"tests/test_otel_transactions.py:{_line_of(publish) + 2}"
    )
    assert (
        "published Celery task tests.notify at tests/test_otel_transactions.py:"
        f"{_line_of(publish) + 2} inside a transaction: atomic block (depth 1) on 'default', open;"
    ) in hazard.attributes["signaltrace.hazard.message"]
    # delay_on_commit: a callback, published after the commit (outside the transaction: no hazard).
    [registered] = later.events
    assert registered.name == "signaltrace.on_commit.registered"
    assert registered.attributes["signaltrace.on_commit.callback"] == "tests.notify.delay"
    view = spans.one("view")
    assert [event.name for event in view.events] == ["signaltrace.on_commit.ran"]


def test_a_bulk_create_past_save_receivers_is_a_bypassed_write_event(spans: Spans, connect: Any) -> None:
    connect(post_save, noted, sender=Item)
    with spans.tracer.start_as_current_span("view"):
        Item.objects.bulk_create([Item(name=f"item {n}") for n in range(3)])  # the write
    [event] = spans.one("view").events
    assert event.name == "signaltrace.bypassed_write"
    attributes = event.attributes
    this_test = test_a_bulk_create_past_save_receivers_is_a_bypassed_write_event
    place = f"tests/test_otel_transactions.py:{_line_of(this_test) + 3}"
    assert attributes["signaltrace.bypassed_write.model"] == "testapp.Item"
    assert attributes["signaltrace.bypassed_write.operation"] == "bulk_create"
    assert attributes["signaltrace.bypassed_write.rows"] == 3
    assert attributes["signaltrace.bypassed_write.receivers"] == (
        f"post_save {__name__}.noted (tests/test_otel_transactions.py:{_line_of(noted)})",
    )
    assert attributes["signaltrace.bypassed_write.duration_ms"] >= 0
    assert attributes["signaltrace.hazard.kind"] == "bypassed_write"
    assert attributes["signaltrace.hazard.place"] == place
    assert attributes["signaltrace.hazard.message"].startswith(
        "bulk_create of 3 testapp.Item rows: 1 post_save receiver did not run "
        "(tests.test_otel_transactions.noted"
    )
    assert spans.named("send post_save") == []  # Django sent none


# ------------------------------------------------------------------ idle


def test_nothing_without_a_recording_span_or_without_the_instrumentor(spans: Spans, connect: Any) -> None:
    def busy(sender: Any, instance: Any, **kwargs: Any) -> None:
        transaction.on_commit(after_commit)

    connect(post_save, noted, sender=Item)
    # No span current: the findings have nowhere to go, and nothing breaks.
    with transaction.atomic():
        transaction.on_commit(after_commit)
    Item.objects.bulk_create([Item(name="quiet")])
    assert spans.all() == []

    # A save inside atomic with no on_commit, mail or bulk write: attributes, no events.
    with spans.tracer.start_as_current_span("view"):
        with transaction.atomic():
            Item.objects.create(name="plain")
    assert _all_events(spans) == []

    # Uninstrumented: the view span gets no events and no signal spans are made.
    from signaltrace.otel import SignalInstrumentor

    SignalInstrumentor().uninstrument()
    try:
        connect(post_save, busy, sender=Item)
        with spans.tracer.start_as_current_span("idle view"):
            with transaction.atomic():
                Item.objects.create(name="idle")
            Item.objects.bulk_create([Item(name="idle bulk")])
    finally:
        SignalInstrumentor().instrument(tracer_provider=spans.provider)
    assert spans.one("idle view").events == ()
    assert sorted(span.name for span in spans.all()) == [  # no signal span made while idle
        "idle view",
        f"receiver {__name__}.noted",
        "send post_save",
        "view",
    ]
