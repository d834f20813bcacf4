"""The twin of ``twice.py``: the same receiver, connected with a ``dispatch_uid``.

Loaded twice too; Django files both connections under the same key and keeps the first.
"""

from typing import Any

from django.db.models import F
from django.db.models.signals import post_save
from django.dispatch import receiver

from looplab.models import Invoice


@receiver(post_save, sender=Invoice, dispatch_uid="looplab.count_invoice_save")
def count_invoice_save(sender: Any, instance: Invoice, created: bool, **kwargs: Any) -> None:
    if created:
        Invoice.objects.filter(pk=instance.pk).update(handled=F("handled") + 1)
