"""The production defaults of signaltrace.otel: which dispatches get spans without any setting.

* A dispatch of one of Django's signals that reaches only Django's own receivers gets none.
* ``request_started`` / ``request_finished`` sent while no span is current get none.
* ``OTEL_ALL_DISPATCHES`` turns both back on; ``OTEL_SIGNALS_ALLOW``/``DENY`` still apply on top.
"""

from __future__ import annotations

import pytest
from django.core.signals import request_finished, request_started
from django.db import reset_queries
from django.db.models.signals import post_save
from django.dispatch import Signal
from django.test import Client, override_settings

from signaltrace.core import receiver_info
from tests.testapp.models import Item, Ping

pytestmark = pytest.mark.django_db

custom = Signal()


def on_request(sender, **kwargs):
    return None


def on_ping_saved(sender, **kwargs):
    return None


def dispatch_names(spans) -> list[str]:
    """The dispatch spans' names, but override_settings' own setting_changed."""
    return sorted(
        span.name
        for span in spans.all()
        if not span.name.startswith("receiver ") and not span.name.endswith(" setting_changed")
    )


def receiver_names(spans) -> list[str]:
    return sorted(span.name for span in spans.all() if span.name.startswith("receiver "))


def test_djangos_signal_reaching_only_djangos_receivers_gets_no_span(spans):
    receivers = request_started._live_receivers(None)  # (sync, async) from Django 5.0, a list before
    sync_receivers = receivers[0] if isinstance(receivers, tuple) else receivers
    live = [receiver_info(target)[0] for target in sync_receivers]
    assert live and all(name.startswith("django.") for name in live)  # close_old_connections...
    with spans.tracer.start_as_current_span("request"):
        request_started.send(sender=None)
    assert [span.name for span in spans.all()] == ["request"]


def test_one_app_receiver_brings_the_dispatch_and_every_receiver_span_back(spans, connect):
    connect(request_started, on_request)
    with spans.tracer.start_as_current_span("request"):
        request_started.send(sender=None)
    assert dispatch_names(spans) == ["request", "send request_started"]
    receivers = receiver_names(spans)
    assert f"receiver {__name__}.on_request" in receivers
    assert "receiver django.db.close_old_connections" in receivers  # Django's too, in that dispatch


def test_reconnecting_is_followed(spans, connect):
    connect(request_started, on_request)
    with spans.tracer.start_as_current_span("request"):
        request_started.send(sender=None)
        request_started.disconnect(on_request)
        request_started.send(sender=None)
    assert dispatch_names(spans) == ["request", "send request_started"]


def test_a_receiver_for_one_sender_gets_spans_for_that_sender_only(spans, connect):
    connect(custom, reset_queries)  # a Django receiver on an app's signal: that is app code
    connect(post_save, reset_queries)  # Django's receiver on Django's signal, every sender
    connect(post_save, on_ping_saved, sender=Ping)
    with spans.tracer.start_as_current_span("request"):
        Item.objects.create(name="no span")
        Ping.objects.create()
        custom.send(sender=None)
    assert dispatch_names(spans) == ["request", "send post_save", f"send {__name__}.custom"]
    (saved,) = spans.named("send post_save")
    assert saved.attributes["signaltrace.sender"] == "testapp.Ping"
    assert len(spans.named("receiver django.db.reset_queries")) == 2  # in Ping's dispatch, and custom's


def test_request_signals_outside_any_span_make_no_root_trace(spans, connect):
    connect(request_started, on_request)
    connect(request_finished, on_request)
    request_started.send(sender=None)
    request_finished.send(sender=None)
    connect(custom, on_request)
    custom.send(sender=None)  # an app's signal outside a span is still traced
    assert dispatch_names(spans) == [f"send {__name__}.custom"]
    with spans.tracer.start_as_current_span("wsgi"):
        request_finished.send(sender=None)
    (finished,) = spans.named("send request_finished")
    assert finished.parent is not None and finished.parent.span_id == spans.one("wsgi").context.span_id


def test_a_request_through_the_test_client_makes_only_its_own_spans(spans, connect):
    """The request cycle's own signals reach only Django's receivers: no span at all."""
    Client().get("/missing/")
    assert spans.all() == []


def test_all_dispatches_turns_both_defaults_off(spans, connect):
    connect(request_finished, on_request)
    with override_settings(SIGNALTRACE={"OTEL_ALL_DISPATCHES": True}):
        request_started.send(sender=None)
        request_finished.send(sender=None)
        Item.objects.create(name="traced")  # post_save: no receiver at all, so still no span
    assert dispatch_names(spans) == ["send request_finished", "send request_started"]
    assert all(span.parent is None for span in spans.named("send request_started"))


def test_allow_and_deny_still_apply_on_top(spans, connect):
    connect(request_started, on_request)
    connect(custom, on_request)
    settings = {"OTEL_ALL_DISPATCHES": True, "OTEL_SIGNALS_DENY": ["request_started"]}
    with override_settings(SIGNALTRACE=settings):
        request_started.send(sender=None)
        request_finished.send(sender=None)
        custom.send(sender=None)
    assert dispatch_names(spans) == ["send request_finished", f"send {__name__}.custom"]
    spans.exporter.clear()
    with override_settings(SIGNALTRACE={"OTEL_SIGNALS_ALLOW": ["request_finished"]}):
        request_finished.send(sender=None)  # allowed, but reaches only Django's receivers
        custom.send(sender=None)
    assert spans.all() == []
