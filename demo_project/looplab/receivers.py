"""Receivers of the loop lab, connected in ``LoopLabConfig.ready()``.

Several are wrong on purpose; each says what a correct version would do.
"""

import asyncio
import time
from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from looplab.models import Article, Note, Ping, Pong, Tag
from looplab.signals import order_paid, photo_uploaded, report_requested

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
