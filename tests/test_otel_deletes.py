"""A delete that took Django's slow path because of delete receivers: one event on the current span."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models.signals import post_delete

from tests.testapp.models import Item

pytestmark = pytest.mark.django_db


def forget_item(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Its presence alone turns off Django's fast delete."""


def test_a_slow_delete_is_one_event_on_the_current_span(spans, connect) -> None:
    connect(post_delete, forget_item, sender=Item)
    Item.objects.bulk_create([Item(name=f"item {n}") for n in range(3)])
    tracer = spans.provider.get_tracer("tests")
    with tracer.start_as_current_span("view"):
        Item.objects.all().delete()

    [view] = spans.named("view")
    [event] = [event for event in view.events if event.name == "signaltrace.slow_delete"]
    attributes = event.attributes
    assert attributes["signaltrace.delete.model"] == "testapp.Item"
    assert attributes["signaltrace.delete.rows"] == 3
    assert attributes["signaltrace.delete.signals_sent"] == 6
    assert attributes["signaltrace.delete.summary"] == "delete of testapp.Item: 3 testapp.Item; 6 signals"
    line = forget_item.__code__.co_firstlineno
    assert attributes["signaltrace.delete.receivers"] == (
        f"post_delete {__name__}.forget_item (tests/test_otel_deletes.py:{line})",
    )
    # The post_delete dispatches, one per row, are spans of their own under the view.
    assert len(spans.named("send post_delete")) == 3


def test_a_fast_delete_makes_no_event(spans) -> None:
    Item.objects.bulk_create([Item(name="plain")])
    tracer = spans.provider.get_tracer("tests")
    with tracer.start_as_current_span("view"):
        Item.objects.all().delete()
    [view] = spans.named("view")
    assert view.events == ()
