"""What each lab button does, and what it teaches. Each ``run_*`` returns outcome lines."""

from dataclasses import dataclass
from typing import Any

from django.db import transaction

import signaltrace
from looplab import hazards, patterns, receivers
from looplab.models import Article, Note, Ping, Tag
from looplab.signals import order_paid, report_requested


@dataclass(frozen=True)
class Scenario:
    slug: str
    title: str
    shows: str  # what the scenario is about
    reveals: str  # what signaltrace makes visible
    expect_loop: bool = False
    twin: str = ""  # slug of the scenario that fixes this one's mistake
    kwargs_of: str = ""  # a signal whose recorded kwargs the result page lists


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

PATTERNS = [
    Scenario(
        "file-cleanup",
        "pre_delete removes a file",
        "Attachment has a FileField; a pre_delete receiver deletes the file so no orphan stays in "
        "storage. The mistake: pre_delete runs before the row is gone. Here the delete's transaction "
        "rolls back (a later step fails): the row comes back, the file does not.",
        "The pre_delete dispatch of looplab.Attachment with its receiver, file and line, and the storage "
        "call it made (listed above); the slow delete it caused, with the receiver that forced it.",
        twin="file-cleanup-on-commit",
    ),
    Scenario(
        "file-cleanup-on-commit",
        "post_delete removes a file on commit (the fix)",
        "The same clean-up in post_delete, handed to transaction.on_commit: a rolled-back delete keeps "
        "both the row and the file; a committed one removes the file after the commit.",
        "Both post_delete dispatches and their receiver; the file is deleted only by the delete that "
        "committed.",
    ),
    Scenario(
        "user-cascade",
        "post_delete across a cascade",
        "Deleting a User cascades to its Profile and its Posts. post_delete receivers on Profile and Post "
        "keep a deletion log in step, as a database trigger would, so Django must load every cascaded "
        "row and send pre_delete and post_delete for each.",
        "The delete as one entry: the model and primary key, the rows per model, the signals sent and "
        "the receivers that forced the slow path; every cascaded dispatch in the trace below.",
    ),
    Scenario(
        "soft-delete",
        "Soft delete skips post_delete",
        "Documents are hidden with is_deleted=True instead of being deleted, once with save() and once "
        "with QuerySet.update(). Document's post_delete receiver, which keeps the deletion log, never "
        "hears of either.",
        "The save's post_save is recorded (update_fields=is_deleted); the update() sends nothing; the "
        "post_delete receivers that did not run are named with file and line.",
        twin="soft-delete-signal",
    ),
    Scenario(
        "soft-delete-signal",
        "Soft delete with a signal of its own (the fix)",
        "Document.soft_delete() saves the flag and sends document_soft_deleted, which the log's receiver "
        "listens to: the side effect no longer depends on a delete that never happens.",
        "post_save, then the custom signal with its receiver, nested nowhere: two plain dispatches.",
    ),
    Scenario(
        "m2m-tags",
        "m2m_changed: add, remove, clear",
        "A bookmark's labels are added, one is removed, the rest cleared. Each change sends m2m_changed "
        "twice (pre_ and post_); a receiver recounts the labels after each.",
        "Six dispatches of m2m_changed with their action, pk_set and reverse kwargs as recorded (pk_set "
        "is None for a clear).",
        kwargs_of="m2m_changed",
    ),
    Scenario(
        "not-idempotent",
        "A receiver that is not idempotent",
        "Subscriber's post_save receiver queues a welcome message with create(). It runs on every save, "
        "so saving the subscriber a second time queues a duplicate.",
        "Two post_save dispatches, each calling queue_welcome, each with its INSERT behind it.",
        twin="idempotent",
    ),
    Scenario(
        "idempotent",
        "get_or_create makes it idempotent (the fix)",
        "Member's receiver queues the same message with get_or_create(): however often it runs, one "
        "welcome message per address.",
        "The same two dispatches and calls; the outcome differs, not the signals.",
    ),
    Scenario(
        "connected-twice",
        "A receiver connected twice",
        "looplab/twice.py connects its receiver with @receiver and no dispatch_uid. The lab loads the "
        "file a second time under another module name (as two sys.path entries would), so Django holds "
        "two receivers and runs both.",
        "One post_save with the same receiver twice (looplab.twice... and twice...), same file and line; "
        "manage.py check and the log report it as signaltrace.W101.",
        twin="dispatch-uid",
    ),
    Scenario(
        "dispatch-uid",
        "dispatch_uid keeps one connection (the fix)",
        "looplab/twice_uid.py is loaded twice too, but connects with dispatch_uid: Django files both "
        "connections under one key and keeps the first.",
        "One post_save, one receiver call.",
    ),
    Scenario(
        "delete-cost",
        "What a delete receiver costs",
        "1,000 rows deleted with QuerySet.delete(), from a model without delete receivers and from one "
        "with a post_delete receiver that does nothing. The first is one DELETE; for the second Django "
        "selects every row, deletes them in batches and sends 2,000 signals.",
        "The slow delete with its rows, signals and the receiver that forced it; queries and time of "
        "both deletes are above.",
    ),
]

HAZARDS = [
    Scenario(
        "task-before-commit",
        "A Celery task published before the commit",
        "Order's post_save receiver calls confirm_order.delay(order.pk) while the view's "
        "transaction.atomic() is still open. A real Celery worker (a thread of this process, in-memory "
        "broker) takes the task on its own database connection, where the row is not committed yet: "
        "the task fails with DoesNotExist. The view keeps its transaction open until the worker has "
        "answered, as a slow request would; in production it is a race the worker wins now and then.",
        "A Hazards box in the panel: the receiver looplab.receivers.publish_order_confirmation (file and "
        "line) published the task looplab.tasks.confirm_order inside the transaction on 'default' "
        "(depth 1), which then committed; the fix: confirm_order.delay_on_commit(...).",
        twin="task-on-commit",
    ),
    Scenario(
        "task-on-commit",
        "delay_on_commit publishes after the commit (the fix)",
        "CommittedOrder's receiver calls confirm_committed_order.delay_on_commit(order.pk) (Celery 5.4+): "
        "the task is handed to transaction.on_commit and published once the row is committed, so the "
        "worker finds it and confirms the order.",
        "No hazard: the on_commit callback as a row with its fate (ran), and the task published after "
        "the commit, outside any receiver.",
    ),
    Scenario(
        "mail-then-rollback",
        "An e-mail sent, then the transaction rolled back",
        "Invitation's post_save receiver sends the invitation with send_mail() at once. A later step of "
        "the same transaction fails and everything rolls back: the row is gone, the e-mail is not.",
        "A Hazards box: the receiver looplab.receivers.mail_invitation (file and line) sent an e-mail "
        "to 1 recipient (never named) inside the transaction on 'default' (depth 1), which rolled "
        "back; the fix: transaction.on_commit(partial(send_mail, ...)).",
        twin="mail-on-commit",
    ),
    Scenario(
        "mail-on-commit",
        "The e-mail sent on commit (the fix)",
        "CommittedInvitation's receiver hands send_mail() to transaction.on_commit: the save that rolls "
        "back sends nothing; a save that commits sends its e-mail after the commit.",
        "The on_commit callbacks as rows with their fate: discarded with the rollback, ran after the commit.",
    ),
    Scenario(
        "bulk-create-skips",
        "bulk_create skips the receivers",
        "Product has two post_save receivers: one adds a search entry, one starts the price history. "
        "bulk_create() inserts three products without calling save(), so neither runs: no search "
        "entries, no prices, and no error to say so.",
        "A row 'bulk_create of 3 looplab.Product rows: 2 post_save receivers did not run', naming "
        "index_product and record_price with file and line.",
        twin="save-each-row",
    ),
    Scenario(
        "save-each-row",
        "save() for each row runs them (the fix)",
        "The same three products created with save(), one at a time: each save sends post_save and both "
        "receivers run, for one INSERT and one dispatch per row. Where bulk_create() is needed for speed, "
        "do the receivers' work in bulk too.",
        "Three post_save dispatches of looplab.Product, each calling index_product and record_price.",
    ),
]

ASYNC_SCENARIO = Scenario(
    "photo",
    "Async receivers from an async view",
    "An async view sends photo_uploaded with asend. Two receivers are coroutines and run concurrently; "
    "one is a plain function, which Django runs in a thread.",
    "Every receiver, async or not, with its duration; the dispatch's method is asend.",
)

BY_SLUG = {scenario.slug: scenario for scenario in [*SCENARIOS, *PATTERNS, *HAZARDS, ASYNC_SCENARIO]}


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
    **patterns.RUNNERS,
    **hazards.RUNNERS,
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
