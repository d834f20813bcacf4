"""The loop lab's Celery tasks, found by the app's autodiscovery and run by the worker thread (worker.py).

Imported only where Celery is installed: the receivers that publish these tasks import
them when they run.
"""

import threading
from typing import Any

from celery import shared_task
from celery.signals import after_task_publish

from looplab.models import CommittedOrder, Order

# Per thread: each request (its own thread under runserver) sees only the tasks it published.
_local = threading.local()


def published() -> list[str]:
    """Ids of the lab's tasks this thread published, in order, so a page can wait for their results."""
    ids: list[str] | None = getattr(_local, "ids", None)
    if ids is None:
        ids = _local.ids = []
    return ids


@shared_task
def confirm_order(order_id: int) -> str:
    """Mark the order confirmed. Raises ``Order.DoesNotExist`` if the row is not committed yet."""
    return _confirm(Order, order_id)


@shared_task
def confirm_committed_order(order_id: int) -> str:
    return _confirm(CommittedOrder, order_id)


def _confirm(model: type[Order] | type[CommittedOrder], pk: int) -> str:
    order = model.objects.get(pk=pk)
    order.confirmed = True
    order.save(update_fields=["confirmed"])
    return f"{model._meta.label} #{pk} confirmed"


@after_task_publish.connect
def remember_published(
    sender: str | None = None, headers: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    """Sent in the publishing thread (the request's) once the broker holds the task
    (``sender`` is the task's name)."""
    if sender in {confirm_order.name, confirm_committed_order.name} and headers:
        published().append(headers["id"])
