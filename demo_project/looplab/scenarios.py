"""What each lab button does, and what it teaches. Each ``run_*`` returns outcome lines."""

from dataclasses import dataclass
from typing import Any

from django.db import transaction

import signaltrace
from looplab import receivers
from looplab.models import Article, Note, Ping, Tag
from looplab.signals import order_paid, report_requested


@dataclass(frozen=True)
class Scenario:
    slug: str
    title: str
    shows: str  # what the scenario is about
    reveals: str  # what signaltrace makes visible
    expect_loop: bool = False


SCENARIOS = [
    Scenario(
        "ping-pong",
        "Ping-pong save loop",
        "Ping's post_save receiver saves a Pong; Pong's post_save receiver saves the Ping again. "
        "Without a guard the two call each other until Python runs out of stack.",
        "signaltrace stops the loop on its third entry, before any receiver runs again, and names the "
        "whole cycle: each dispatch, each receiver, with file and line.",
        expect_loop=True,
    ),
    Scenario(
        "self-resave",
        "Self re-save loop",
        "A post_save receiver computes a word count and calls instance.save() again. That save sends "
        "post_save again, which calls the receiver again.",
        "The loop error shows one turn of the cycle: post_save of the same Note, through the same receiver.",
        expect_loop=True,
    ),
    Scenario(
        "guarded-resave",
        "Guarded re-save (no loop)",
        "The same receiver, written safely: it saves only word_count with update_fields, and returns "
        "early when the save that comes back is its own.",
        "Two post_save dispatches of the same Article, one nested in the other, and no loop reported: "
        "entering a dispatch twice is allowed, a third time is not.",
    ),
    Scenario(
        "robust",
        "send_robust swallows an error",
        "order_paid is sent with send_robust. One of its three receivers raises; send_robust catches the "
        "exception and returns it among the results, and the page would never know.",
        "The failing receiver is marked in the trace with its exception, flagged as swallowed.",
    ),
    Scenario(
        "slow",
        "A slow receiver",
        "report_requested has a receiver that sleeps 0.3 s, the kind of work that belongs in a task queue. "
        "Every request that sends the signal waits for it.",
        "Each receiver's own duration, so the slow one stands out.",
    ),
    Scenario(
        "bulk-create",
        "bulk_create sends nothing",
        "Tag has a post_save receiver. Tag.objects.create() sends post_save; bulk_create() inserts rows "
        "without calling save() and sends no signal at all (update() and queryset delete of some "
        "models skip signals similarly).",
        "The trace has one post_save for the single create and none for the three bulk rows.",
    ),
]

ASYNC_SCENARIO = Scenario(
    "photo",
    "Async receivers from an async view",
    "An async view sends photo_uploaded with asend. Two receivers are coroutines and run concurrently; "
    "one is a plain function, which Django runs in a thread.",
    "Every receiver, async or not, with its duration; the dispatch's method is asend.",
)

BY_SLUG = {scenario.slug: scenario for scenario in [*SCENARIOS, ASYNC_SCENARIO]}


def run_ping_pong() -> list[str]:
    with transaction.atomic():
        Ping.objects.create()
    return ["The ping-pong finished (it should not have)."]


def run_self_resave() -> list[str]:
    with transaction.atomic():
        Note.objects.create(title="Lab note", body="a note that saves itself forever")
    return ["The note was saved (it should have looped)."]


def run_guarded_resave() -> list[str]:
    article = Article.objects.create(title="Guarded", body="four words right here")
    article.refresh_from_db()
    return [
        f"Article #{article.pk} saved with word_count={article.word_count}; the guard stopped the re-save."
    ]


def run_robust() -> list[str]:
    responses = order_paid.send_robust(sender=None, order_id=42)
    lines = []
    for receiver, response in responses:
        name = getattr(receiver, "__name__", repr(receiver))
        if isinstance(response, Exception):
            lines.append(f"{name} raised {type(response).__name__}: {response} (swallowed by send_robust)")
        else:
            lines.append(f"{name} returned {response!r}")
    return lines


def run_slow() -> list[str]:
    responses = report_requested.send(sender=None, report="monthly sales")
    return [f"{receiver.__name__} returned {response!r}" for receiver, response in responses]


def run_bulk_create() -> list[str]:
    receivers.announced_tags.clear()
    suffix = Tag.objects.count()
    Tag.objects.create(name=f"single-{suffix}")
    Tag.objects.bulk_create([Tag(name=f"bulk-{suffix}-{number}") for number in range(3)])
    return [
        "Inserted 1 tag with create() and 3 with bulk_create().",
        f"The post_save receiver saw: {', '.join(receivers.announced_tags) or 'nothing'}.",
    ]


RUNNERS: dict[str, Any] = {
    "ping-pong": run_ping_pong,
    "self-resave": run_self_resave,
    "guarded-resave": run_guarded_resave,
    "robust": run_robust,
    "slow": run_slow,
    "bulk-create": run_bulk_create,
}


def run_scenario(slug: str) -> tuple[list[str], str, signaltrace.Trace]:
    """Run one scenario while recording: (outcome lines, loop error message or "", trace)."""
    error = ""
    with signaltrace.record() as trace:
        try:
            outcome = RUNNERS[slug]()
        except signaltrace.SignalLoopError as exc:
            outcome = ["SignalLoopError raised; the transaction was rolled back."]
            error = str(exc)
        except RecursionError:
            outcome = ["RecursionError: the loop ran until Python's recursion limit (signaltrace is off)."]
    return outcome, error, trace
