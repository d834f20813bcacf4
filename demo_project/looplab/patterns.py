"""Runners of the "patterns from the tutorials" scenarios (their texts are in scenarios.py).

Each returns outcome lines; ``run_scenario`` records it. Receivers live in receivers.py,
twice.py and twice_uid.py.
"""

from time import perf_counter_ns
from typing import Any

from accounts.models import Profile
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.db.models.signals import post_delete
from django.test.utils import CaptureQueriesContext

import signaltrace
from looplab import storage
from looplab.models import (
    Attachment,
    Bookmark,
    CommittedAttachment,
    DeletionLog,
    Document,
    Invoice,
    Label,
    Member,
    PlainRow,
    Post,
    Subscriber,
    Ticket,
    WatchedRow,
    Welcome,
)
from signaltrace.core import short_path

#: Rows deleted by the delete-cost scenario, with and without a receiver.
DELETE_ROWS = 1000


class LaterStepFailed(Exception):
    """Raised on purpose after a delete, so its transaction rolls back."""


def _attachment_lines(model: type[Attachment] | type[CommittedAttachment]) -> tuple[list[str], int]:
    storage.deleted_names.clear()
    attachment = model(name="report")
    attachment.file.save("report.txt", ContentFile(b"quarterly numbers"), save=True)
    name, pk = attachment.file.name, attachment.pk
    lines = [f"Saved {model._meta.label} #{pk} with its file {name}."]
    try:
        with transaction.atomic():
            attachment.delete()
            raise LaterStepFailed("the step after the delete failed")
    except LaterStepFailed as exc:
        lines.append(f"Deleted it inside a transaction, then {exc}: rolled back.")
    row_kept = model.objects.filter(pk=pk).exists()
    file_kept = attachment.file.storage.exists(name)
    lines.append(f"After the rollback: row kept: {row_kept}; file kept: {file_kept}.")
    calls = ", ".join(f"storage.delete({called!r})" for called in storage.deleted_names) or "none"
    lines.append(f"Storage calls: {calls}.")
    return lines, pk


def run_file_cleanup() -> list[str]:
    lines, _pk = _attachment_lines(Attachment)
    lines.append(
        "The row survived the rollback; its file did not: the receiver ran before the delete was sure."
    )
    return lines


def run_file_cleanup_on_commit() -> list[str]:
    lines, pk = _attachment_lines(CommittedAttachment)
    survivor = CommittedAttachment.objects.get(pk=pk)
    name = survivor.file.name
    with transaction.atomic():
        survivor.delete()
    lines.append(
        f"Then deleted it for good: after the commit the file exists: {survivor.file.storage.exists(name)}."
    )
    return lines


def run_user_cascade() -> list[str]:
    suffix = User.objects.count()
    user = User.objects.create_user(username=f"leaving-{suffix}")  # its Profile comes from post_save
    Post.objects.create(author=user, title="First post")
    Post.objects.create(author=user, title="Second post")
    pk = user.pk
    with signaltrace.record() as trace:
        user.delete()
    lines = [f"Recorded: {delete.summary}." for delete in trace.slow_deletes]
    logged = DeletionLog.objects.filter(how="post_delete").order_by("-pk")[:3]
    lines.append(
        "The deletion log got: " + ", ".join(f"{row.model} #{row.object_id}" for row in logged) + "."
    )
    lines.append(f"Profiles left for the user: {Profile.objects.filter(user_id=pk).count()}.")
    return lines


def _post_delete_receivers(model: type[Any]) -> list[str]:
    from signaltrace.graph import static_connections

    return [
        f"{found.receiver} ({short_path(found.file)}:{found.line})"
        for found in static_connections([post_delete])
        if found.sender == model._meta.label
    ]


def run_soft_delete() -> list[str]:
    saved = Document.objects.create(title="Saved away")
    updated = Document.objects.create(title="Updated away")
    log_before = DeletionLog.objects.count()
    saved.is_deleted = True
    saved.save(update_fields=["is_deleted"])
    Document.objects.filter(pk=updated.pk).update(is_deleted=True)
    skipped = ", ".join(_post_delete_receivers(Document))
    return [
        f"Document #{saved.pk}: is_deleted=True with save(update_fields=['is_deleted']): post_save sent.",
        f"Document #{updated.pk}: is_deleted=True with QuerySet.update(): no signal at all.",
        f"post_delete receivers that never ran: {skipped}.",
        f"New deletion log rows: {DeletionLog.objects.count() - log_before}.",
    ]


def run_soft_delete_signal() -> list[str]:
    document = Document.objects.create(title="Retired")
    document.soft_delete()
    logged = DeletionLog.objects.filter(how="document_soft_deleted", object_id=str(document.pk)).count()
    return [
        f"Document #{document.pk}.soft_delete() saved is_deleted and sent document_soft_deleted.",
        f"Deletion log rows written by its receiver: {logged}.",
    ]


def run_m2m_tags() -> list[str]:
    bookmark = Bookmark.objects.create(title="Django signals docs")
    labels = [Label.objects.get_or_create(name=name)[0] for name in ("django", "signals", "orm")]
    bookmark.labels.add(*labels)
    counts = [Bookmark.objects.get(pk=bookmark.pk).label_count]
    bookmark.labels.remove(labels[2])
    counts.append(Bookmark.objects.get(pk=bookmark.pk).label_count)
    bookmark.labels.clear()
    counts.append(Bookmark.objects.get(pk=bookmark.pk).label_count)
    return [
        "Added 3 labels, removed 1, cleared the rest: six m2m_changed dispatches (pre_ and post_ each).",
        f"label_count kept by the receiver after each step: {', '.join(map(str, counts))}.",
    ]


def _welcome_lines(model: type[Subscriber] | type[Member]) -> list[str]:
    email = f"{model._meta.model_name}-{model.objects.count()}@example.com"
    person = model.objects.create(email=email)
    person.save()  # a second save: the receiver runs again
    count = Welcome.objects.filter(address=email).count()
    return [f"Saved {model._meta.label} #{person.pk} twice: {count} welcome message(s) queued for {email}."]


def run_not_idempotent() -> list[str]:
    return _welcome_lines(Subscriber)


def run_idempotent() -> list[str]:
    return _welcome_lines(Member)


def _handled_lines(model: type[Ticket] | type[Invoice]) -> list[str]:
    item = model.objects.create(title="Printer on fire")
    item.refresh_from_db()
    return [f"Created {model._meta.label} #{item.pk}: its receiver ran {item.handled} time(s)."]


def run_connected_twice() -> list[str]:
    return [
        *_handled_lines(Ticket),
        "manage.py check reports it too (signaltrace.W101): the same function, connected as "
        "looplab.twice.count_ticket_save and as twice.count_ticket_save.",
    ]


def run_dispatch_uid() -> list[str]:
    return _handled_lines(Invoice)


def _timed_delete(model: type[PlainRow] | type[WatchedRow]) -> tuple[int, int, float]:
    model.objects.bulk_create([model(number=number) for number in range(DELETE_ROWS)])
    with CaptureQueriesContext(connection) as queries:
        start = perf_counter_ns()
        deleted, _ = model.objects.all().delete()
        elapsed = perf_counter_ns() - start
    return deleted, len(queries.captured_queries), elapsed / 1e6


def run_delete_cost() -> list[str]:
    lines = []
    for model, what in (
        (PlainRow, "no receiver"),
        (WatchedRow, "one post_delete receiver that does nothing"),
    ):
        deleted, queries, ms = _timed_delete(model)
        signals = 2 * deleted if model is WatchedRow else 0
        lines.append(
            f"{model._meta.label} ({what}): {deleted} rows deleted in {queries} queries, "
            f"{ms:.1f} ms, {signals} signals sent."
        )
    return lines


RUNNERS: dict[str, Any] = {
    "file-cleanup": run_file_cleanup,
    "file-cleanup-on-commit": run_file_cleanup_on_commit,
    "user-cascade": run_user_cascade,
    "soft-delete": run_soft_delete,
    "soft-delete-signal": run_soft_delete_signal,
    "m2m-tags": run_m2m_tags,
    "not-idempotent": run_not_idempotent,
    "idempotent": run_idempotent,
    "connected-twice": run_connected_twice,
    "dispatch-uid": run_dispatch_uid,
    "delete-cost": run_delete_cost,
}
