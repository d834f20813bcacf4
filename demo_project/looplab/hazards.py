"""Runners of the "transaction hazards" scenarios (their texts are in scenarios.py).

Work a receiver starts inside a transaction (a Celery task, an e-mail), and writes that
send no signals (``bulk_create``). Each runner returns outcome lines; ``run_scenario``
records it. Receivers live in receivers.py, the tasks in tasks.py, the worker in worker.py.
"""

from importlib.util import find_spec
from typing import Any

from django.core import mail
from django.db import transaction

from looplab.models import (
    CommittedInvitation,
    CommittedOrder,
    Invitation,
    Order,
    PriceHistory,
    Product,
    SearchEntry,
)
from looplab.patterns import LaterStepFailed

#: Seconds a page waits for the worker's answer.
TASK_TIMEOUT = 10.0

PRODUCTS = (("kettle", 3900), ("toaster", 4900), ("teapot", 2500))


# ------------------------------------------------------------ a task published before the commit


def _worker_problem() -> str:
    """Start the lab's worker (once per process); "" when it takes tasks, else why not."""
    if find_spec("celery") is None:
        return "Celery is not installed: pip install -e '.[celery]' (make demo installs it)."
    from looplab import worker

    return worker.ensure_worker()


def _published() -> list[str]:
    from looplab import tasks

    return tasks.published()


def _task_outcome() -> str:
    """What the last published lab task did, waiting for it up to ``TASK_TIMEOUT``."""
    from celery.exceptions import TimeoutError as TaskTimeout
    from celery.result import AsyncResult, allow_join_result

    if not _published():
        return "no task was published"
    result = AsyncResult(_published()[-1])
    try:
        # The solo pool marks joins as blocking for the whole process; this thread is no task.
        with allow_join_result():
            value = result.get(timeout=TASK_TIMEOUT, propagate=False, interval=0.05)
    except TaskTimeout:
        return f"gave no answer within {TASK_TIMEOUT:g} s"
    if result.failed():
        return f"raised {type(value).__name__}: {str(value).rstrip('.')}"
    return f"returned {value!r}"


def run_task_before_commit() -> list[str]:
    problem = _worker_problem()
    if problem:
        return [problem]
    _published().clear()
    with transaction.atomic():
        order = Order.objects.create(item="kettle")
        lines = [
            f"Saved looplab.Order #{order.pk} inside transaction.atomic(); its post_save receiver published "
            f"confirm_order({order.pk}): tasks on the broker before the commit: {len(_published())}."
        ]
        # Standing in for the rest of a slow request: the transaction stays open until the
        # worker has answered, so the race the worker wins now and then is won every time.
        lines.append(f"The worker ran it while the transaction was still open and {_task_outcome()}.")
    order.refresh_from_db()
    lines.append(
        f"After the commit the row is there, and no task will confirm it: confirmed={order.confirmed}."
    )
    return lines


def run_task_on_commit() -> list[str]:
    problem = _worker_problem()
    if problem:
        return [problem]
    _published().clear()
    with transaction.atomic():
        order = CommittedOrder.objects.create(item="kettle")
        before_commit = len(_published())
    lines = [
        f"Saved looplab.CommittedOrder #{order.pk} inside transaction.atomic(); its post_save receiver "
        f"called confirm_committed_order.delay_on_commit({order.pk}): tasks on the broker before the "
        f"commit: {before_commit}, after it: {len(_published())}.",
        f"The worker ran it after the commit and {_task_outcome()}.",
    ]
    order.refresh_from_db()
    lines.append(f"The row, as the worker left it: confirmed={order.confirmed}.")
    return lines


# ------------------------------------------------------------ an e-mail, then a rollback


def _outbox() -> list[Any]:
    """The locmem backend's outbox (settings.py); it exists once the backend first sent."""
    return getattr(mail, "outbox", [])


def _mails_since(count: int) -> str:
    sent = _outbox()[count:]
    listed = "; ".join(f"{message.subject!r} to {', '.join(message.to)}" for message in sent)
    return f"{len(sent)}" + (f" ({listed})" if listed else "")


def _rolled_back_lines(model: type[Invitation] | type[CommittedInvitation]) -> list[str]:
    before = len(_outbox())
    try:
        with transaction.atomic():
            invitation = model.objects.create(email="grace@example.com")
            raise LaterStepFailed("the step after the save failed")
    except LaterStepFailed as exc:
        lines = [
            f"Saved {model._meta.label} #{invitation.pk} for {invitation.email} inside a transaction, "
            f"then {exc}: rolled back."
        ]
    lines.append(f"After the rollback the row exists: {model.objects.filter(pk=invitation.pk).exists()}.")
    lines.append(f"E-mails sent: {_mails_since(before)}.")
    return lines


def run_mail_then_rollback() -> list[str]:
    return [*_rolled_back_lines(Invitation), "The guest holds an invitation for a row that does not exist."]


def run_mail_on_commit() -> list[str]:
    lines = _rolled_back_lines(CommittedInvitation)
    before = len(_outbox())
    with transaction.atomic():
        invitation = CommittedInvitation.objects.create(email="grace@example.com")
        inside = _mails_since(before)
    lines.append(
        f"Then saved #{invitation.pk} in a transaction that committed: e-mails sent before the commit: "
        f"{inside}; after it: {_mails_since(before)}."
    )
    return lines


# ------------------------------------------------------------ bulk_create skips the receivers


def _product_lines(products: list[Product], how: str) -> list[str]:
    indexed = SearchEntry.objects.filter(product__in=products).count()
    priced = PriceHistory.objects.filter(product__in=products).count()
    return [
        f"Created {len(products)} looplab.Product rows with {how}.",
        f"Work of their post_save receivers: {indexed} search entries (index_product), {priced} price "
        f"history rows (record_price); {len(products)} of each expected.",
    ]


def run_bulk_create_skips() -> list[str]:
    products = Product.objects.bulk_create(
        [Product(name=name, price_cents=cents) for name, cents in PRODUCTS]
    )
    return _product_lines(products, "bulk_create()")


def run_save_each_row() -> list[str]:
    products = []
    for name, cents in PRODUCTS:
        product = Product(name=name, price_cents=cents)
        product.save()
        products.append(product)
    return _product_lines(products, "save(), one at a time")


RUNNERS: dict[str, Any] = {
    "task-before-commit": run_task_before_commit,
    "task-on-commit": run_task_on_commit,
    "mail-then-rollback": run_mail_then_rollback,
    "mail-on-commit": run_mail_on_commit,
    "bulk-create-skips": run_bulk_create_skips,
    "save-each-row": run_save_each_row,
}
