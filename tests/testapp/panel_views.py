"""Pages for the debug-toolbar panel tests (tests/test_panels.py, tests/test_panel_browser.py).

The toolbar shows only under ``/panel/`` (see :func:`show_toolbar`), and the signals
here are this module's own, so no other test sees these receivers or the toolbar.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import django
from django.dispatch import Signal, receiver
from django.http import HttpRequest, HttpResponse
from django.urls import path

from signaltrace import SignalLoopError
from tests.testapp.models import Item

HOSTILE = "<script>alert('signaltrace')</script>"

order_placed = Signal()
stock_checked = Signal()
audit_logged = Signal()
cache_cleared = Signal()
echo = Signal()
tagged = Signal()

#: Set by the concurrency tests: both requests wait here between their two sends.
barrier: threading.Barrier | None = None
async_gate: dict[str, Any] = {}


def show_toolbar(request: HttpRequest) -> bool:
    """``SHOW_TOOLBAR_CALLBACK`` of the test project: only the panel pages."""
    return request.path.startswith(("/panel/", "/__debug__/"))


@receiver(order_placed, dispatch_uid="orders.reserve_stock")
def reserve_stock(sender: Any, **kwargs: Any) -> None:
    stock_checked.send(sender=sender, sku=kwargs.get("sku"))


@receiver(order_placed)
def send_receipt(sender: Any, **kwargs: Any) -> None:
    time.sleep(0.06)  # a slow receiver (> PANEL_SLOW_RECEIVER_MS)


@receiver(stock_checked)
def count_stock(sender: Any, **kwargs: Any) -> None:
    Item.objects.create(name="stock")


@receiver(audit_logged, dispatch_uid=HOSTILE)
def failing_audit(sender: Any, **kwargs: Any) -> None:
    raise ValueError(f"audit backend down {HOSTILE}")


@receiver(audit_logged)
def audit_to_log(sender: Any, **kwargs: Any) -> None:
    return None


@receiver(echo)
def echo_again(sender: Any, **kwargs: Any) -> None:
    echo.send(sender=sender)


@receiver(tagged)
def note_tag(sender: Any, **kwargs: Any) -> None:
    return None


async def notify_async(sender: Any, **kwargs: Any) -> None:
    await asyncio.sleep(0)


if django.VERSION >= (5, 0):  # async receivers and asend() arrived in Django 5.0
    order_placed.connect(notify_async)


def _page(title: str) -> HttpResponse:
    head = f"<!DOCTYPE html><html><head><title>{title}</title></head>"
    return HttpResponse(f"{head}<body><h1>{title}</h1></body></html>")


def signals_page(request: HttpRequest) -> HttpResponse:
    """Nested dispatches, a slow receiver, swallowed and raised errors, a loop, an empty send."""
    Item.objects.create(name="first")
    order_placed.send(sender=Item, sku="A-1", password="hunter2")
    audit_logged.send_robust(sender=HOSTILE, note=HOSTILE)
    try:
        audit_logged.send(sender="plain-send")
    except ValueError:
        pass
    cache_cleared.send(sender=Item)
    try:
        echo.send(sender="echo")
    except SignalLoopError:
        pass
    return _page("signaltrace panel test page")


async def async_page(request: HttpRequest) -> HttpResponse:
    """The same kind of work from an async view."""
    await Item.objects.acreate(name="async")
    await order_placed.asend(sender=Item, sku="B-2")
    await audit_logged.asend_robust(sender="async-audit")
    return _page("signaltrace async panel test page")


def tagged_page(request: HttpRequest, tag: str) -> HttpResponse:
    """Two sends around a barrier, so concurrent requests interleave."""
    tagged.send(sender=f"{tag}-before")
    if barrier is not None:
        barrier.wait(timeout=10)
    tagged.send(sender=f"{tag}-after")
    return _page(tag)


async def async_tagged_page(request: HttpRequest, tag: str) -> HttpResponse:
    """Async twin of :func:`tagged_page`: waits until both requests are in the view."""
    await tagged.asend(sender=f"{tag}-before")
    if async_gate:
        async_gate["arrived"] += 1
        if async_gate["arrived"] == async_gate["expected"]:
            async_gate["event"].set()
        await asyncio.wait_for(async_gate["event"].wait(), timeout=10)
    await tagged.asend(sender=f"{tag}-after")
    return _page(tag)


def many_page(request: HttpRequest) -> HttpResponse:
    """``?n=`` dispatches, for the render benchmark."""
    count = int(request.GET.get("n", "2000"))
    for number in range(count):
        if number % 10 == 0:
            audit_logged.send_robust(sender=f"batch-{number}")
        else:
            tagged.send(sender=f"row-{number % 50}")
    return _page(f"{count} dispatches")


urlpatterns = [
    path("signals/", signals_page, name="panel_signals"),
    path("async/", async_page, name="panel_async"),
    path("tagged/<str:tag>/", tagged_page, name="panel_tagged"),
    path("async-tagged/<str:tag>/", async_tagged_page, name="panel_async_tagged"),
    path("many/", many_page, name="panel_many"),
]
