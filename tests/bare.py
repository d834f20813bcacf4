"""Run a scenario as plain Django and again recorded, to show that signaltrace changes nothing.

:func:`bare_then_recorded` runs ``scenario()`` once with signaltrace uninstalled (Django's
own methods, as in a project without the package), then once installed and inside
``signaltrace.record()``. The test compares the two results (return values, rows,
exceptions, callbacks run, mail sent) and reads the trace of the second run. Before
each run the ``Item`` rows on the given aliases and the test outbox are emptied, so
both runs start alike: a scenario returns names, never primary keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.core import mail
from django.db.models.signals import post_save

import signaltrace
from signaltrace.core import Trace
from tests.testapp.models import Item

T = TypeVar("T")


def item_names(alias: str) -> list[str]:
    """The names of the ``Item`` rows on ``alias``, sorted."""
    return list(Item.objects.using(alias).order_by("name").values_list("name", flat=True))


def saves(trace: Trace) -> list[Any]:
    """The trace's ``post_save`` dispatches, in order."""
    return [dispatch for dispatch in trace.dispatches if dispatch.signal is post_save]


def _start_afresh(aliases: Iterable[str]) -> None:
    for alias in aliases:
        Item.objects.using(alias).all().delete()
    mail.outbox.clear()


def bare_then_recorded(scenario: Callable[[], T], *, aliases: Iterable[str]) -> tuple[T, T, Trace]:
    """``(bare result, recorded result, trace)`` of ``scenario()`` run uninstalled, then recording."""
    aliases = list(aliases)
    _start_afresh(aliases)
    signaltrace.uninstall()
    try:
        bare = scenario()
    finally:
        signaltrace.install()  # the rest of the suite runs installed, whatever failed here
    _start_afresh(aliases)
    with signaltrace.record() as trace:
        recorded = scenario()
    return bare, recorded, trace


async def abare_then_recorded(
    scenario: Callable[[], Awaitable[T]], *, aliases: Iterable[str]
) -> tuple[T, T, Trace]:
    """:func:`bare_then_recorded` for an async scenario."""
    aliases = list(aliases)
    await sync_to_async(_start_afresh)(aliases)
    signaltrace.uninstall()
    try:
        bare = await scenario()
    finally:
        signaltrace.install()
    await sync_to_async(_start_afresh)(aliases)
    with signaltrace.record() as trace:
        recorded = await scenario()
    return bare, recorded, trace
