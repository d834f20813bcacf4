"""A receiver connected without a ``dispatch_uid``.

``LoopLabConfig.ready()`` imports this module as ``looplab.twice`` and loads it a second time
as ``twice``, as happens when a project directory and its parent are both on ``sys.path``.
Each import makes a new function object, so Django connects it twice and runs it twice.
"""

from typing import Any

from django.db.models import F
from django.db.models.signals import post_save
from django.dispatch import receiver

from looplab.models import Ticket


@receiver(post_save, sender=Ticket)
def count_ticket_save(sender: Any, instance: Ticket, created: bool, **kwargs: Any) -> None:
    """Count the runs in the row itself (``update()`` sends no signal)."""
    if created:
        Ticket.objects.filter(pk=instance.pk).update(handled=F("handled") + 1)
