"""Receivers of the loop lab, connected in ``LoopLabConfig.ready()``.

Several are wrong on purpose; each says what a correct version would do.
"""

import asyncio
import time
from functools import partial
from typing import Any

from accounts.models import Profile
from django.core.mail import send_mail
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.dispatch import receiver

from looplab.models import (
    Article,
    Attachment,
    Bookmark,
    CommittedAttachment,
    CommittedInvitation,
    CommittedOrder,
    DeletionLog,
    Document,
    Invitation,
    Member,
    Note,
    Order,
    Ping,
    Pong,
    Post,
    PriceHistory,
    Product,
    SearchEntry,
    Subscriber,
    Tag,
    WatchedRow,
    Welcome,
)
from looplab.signals import document_soft_deleted, order_paid, photo_uploaded, report_requested

# Tags that post_save announced, so a page can show whether the receiver ran.
announced_tags: list[str] = []


@receiver(post_save, sender=Ping)
def ping_saved(sender: Any, instance: Ping, **kwargs: Any) -> None:
    """Mirror the Ping into a Pong. Wrong: Pong's receiver mirrors it back."""
    Pong(pk=instance.pk, counter=instance.counter).save()


@receiver(post_save, sender=Pong)
def pong_saved(sender: Any, instance: Pong, **kwargs: Any) -> None:
    """Mirror the Pong into a Ping, which saves the Pong again, and so on."""
    Ping(pk=instance.pk, counter=instance.counter + 1).save()


@receiver(post_save, sender=Note)
def count_note_words(sender: Any, instance: Note, **kwargs: Any) -> None:
    """Store the word count and save. Wrong: that save sends post_save again."""
    instance.word_count = len(instance.body.split())
    instance.save()


@receiver(post_save, sender=Article)
def count_article_words(sender: Any, instance: Article, update_fields: Any = None, **kwargs: Any) -> None:
    """Store the word count, saving only that field, and stop when that save comes back."""
    if update_fields and set(update_fields) == {"word_count"}:
        return
    instance.word_count = len(instance.body.split())
    instance.save(update_fields=["word_count"])


@receiver(post_save, sender=Tag)
def announce_tag(sender: Any, instance: Tag, created: bool, **kwargs: Any) -> None:
    if created:
        announced_tags.append(instance.name)


@receiver(order_paid)
def send_receipt(sender: Any, order_id: int, **kwargs: Any) -> str:
    return f"receipt for order {order_id} queued"


@receiver(order_paid)
def notify_warehouse(sender: Any, order_id: int, **kwargs: Any) -> str:
    raise ConnectionError("warehouse API unreachable")


@receiver(order_paid)
def add_loyalty_points(sender: Any, order_id: int, **kwargs: Any) -> str:
    return "10 points added"


@receiver(report_requested)
def build_report(sender: Any, **kwargs: Any) -> str:
    """Slow on purpose: work like this belongs in a task queue, not in a receiver."""
    time.sleep(0.3)
    return "report built"


@receiver(report_requested)
def log_report_request(sender: Any, **kwargs: Any) -> str:
    return "logged"


@receiver(photo_uploaded)
async def make_thumbnail(sender: Any, name: str, **kwargs: Any) -> str:
    await asyncio.sleep(0.05)
    return f"thumbnail of {name}"


@receiver(photo_uploaded)
async def scan_photo(sender: Any, name: str, **kwargs: Any) -> str:
    await asyncio.sleep(0.02)
    return f"{name} is clean"


@receiver(photo_uploaded)
def log_upload(sender: Any, name: str, **kwargs: Any) -> str:
    """A sync receiver of the same signal: asend runs it in a thread."""
    return f"upload of {name} logged"


# ------------------------------------------------------------ patterns from the tutorials


@receiver(pre_delete, sender=Attachment)
def remove_attachment_file(sender: Any, instance: Attachment, **kwargs: Any) -> None:
    """Remove the file before the row. Wrong: if the delete rolls back, the row stays, the file is gone."""
    instance.file.delete(save=False)


@receiver(post_delete, sender=CommittedAttachment)
def remove_committed_attachment_file(sender: Any, instance: CommittedAttachment, **kwargs: Any) -> None:
    """Remove the file once the delete is committed: a rolled-back delete keeps both."""
    storage, name = instance.file.storage, instance.file.name
    if name:
        transaction.on_commit(lambda: storage.delete(name))


def _log_deletion(instance: Any, how: str = "post_delete") -> None:
    DeletionLog.objects.create(model=instance._meta.label, object_id=str(instance.pk), how=how)


@receiver(post_delete, sender=Profile)
def log_profile_deletion(sender: Any, instance: Profile, **kwargs: Any) -> None:
    """Keep the deletion log in step, as a database trigger would."""
    _log_deletion(instance)


@receiver(post_delete, sender=Post)
def log_post_deletion(sender: Any, instance: Post, **kwargs: Any) -> None:
    _log_deletion(instance)


@receiver(post_delete, sender=Document)
def log_document_deletion(sender: Any, instance: Document, **kwargs: Any) -> None:
    """Never runs for a soft delete: nothing is deleted."""
    _log_deletion(instance)


@receiver(document_soft_deleted)
def log_document_soft_deletion(sender: Any, instance: Document, **kwargs: Any) -> None:
    _log_deletion(instance, how="document_soft_deleted")


@receiver(m2m_changed, sender=Bookmark.labels.through)
def count_bookmark_labels(sender: Any, instance: Any, action: str, reverse: bool, **kwargs: Any) -> None:
    """Recount after every change. ``pk_set`` is None for a clear, so it is not relied on."""
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    bookmarks = instance.bookmark_set.all() if reverse else [instance]
    for bookmark in bookmarks:
        Bookmark.objects.filter(pk=bookmark.pk).update(label_count=bookmark.labels.count())


@receiver(post_save, sender=Subscriber)
def queue_welcome(sender: Any, instance: Subscriber, **kwargs: Any) -> None:
    """Wrong: not idempotent. Each save (or a second connection) queues another Welcome."""
    Welcome.objects.create(address=instance.email)


@receiver(post_save, sender=Member)
def queue_member_welcome(sender: Any, instance: Member, **kwargs: Any) -> None:
    """Idempotent: ``get_or_create`` queues one Welcome however often it runs."""
    Welcome.objects.get_or_create(address=instance.email)


@receiver(post_delete, sender=WatchedRow)
def forget_watched_row(sender: Any, instance: WatchedRow, **kwargs: Any) -> None:
    """Does nothing at all; being connected is enough to cost every delete its fast path."""


# ------------------------------------------------------------ transaction hazards
# The task receivers import their task when they run: Celery is an optional extra of the
# demo (demo_site/__init__.py), and these receivers run only in its task scenarios.


@receiver(post_save, sender=Order)
def publish_order_confirmation(sender: Any, instance: Order, created: bool, **kwargs: Any) -> None:
    """Publish the confirmation task at once. Wrong: inside a transaction, the worker can run it
    before the commit, on its own connection, and not find the row."""
    from looplab.tasks import confirm_order

    if created:
        confirm_order.delay(instance.pk)


@receiver(post_save, sender=CommittedOrder)
def publish_committed_order_confirmation(
    sender: Any, instance: CommittedOrder, created: bool, **kwargs: Any
) -> None:
    """Publish the task once the row is committed: ``delay_on_commit`` (Celery 5.4+) waits for it."""
    from looplab.tasks import confirm_committed_order

    if created:
        confirm_committed_order.delay_on_commit(instance.pk)


INVITATION_SUBJECT = "Your invitation"
INVITATION_BODY = "You are invited to the signaltrace launch."


@receiver(post_save, sender=Invitation)
def mail_invitation(sender: Any, instance: Invitation, created: bool, **kwargs: Any) -> None:
    """Mail the guest at once. Wrong: if the transaction rolls back, the mail is out for a row that is not."""
    if created:
        send_mail(INVITATION_SUBJECT, INVITATION_BODY, "lab@example.com", [instance.email])


@receiver(post_save, sender=CommittedInvitation)
def mail_committed_invitation(
    sender: Any, instance: CommittedInvitation, created: bool, **kwargs: Any
) -> None:
    """Mail the guest once the row is committed: a save that rolls back sends nothing."""
    if created:
        transaction.on_commit(
            partial(send_mail, INVITATION_SUBJECT, INVITATION_BODY, "lab@example.com", [instance.email])
        )


@receiver(post_save, sender=Product)
def index_product(sender: Any, instance: Product, created: bool, **kwargs: Any) -> None:
    """Add the new product to the search index. ``bulk_create()`` never calls it."""
    if created:
        SearchEntry.objects.create(product=instance, text=instance.name)


@receiver(post_save, sender=Product)
def record_price(sender: Any, instance: Product, created: bool, **kwargs: Any) -> None:
    """Start the new product's price history. ``bulk_create()`` never calls it either."""
    if created:
        PriceHistory.objects.create(product=instance, price_cents=instance.price_cents)
