"""The loop lab's transaction hazards through Django's test client, under the demo's settings.

As tests/test_demo_patterns.py does, the main run launches this file again in a
subprocess with ``--ds=demo_site.settings`` (and ``-W error``); the page tests run there.
Each runs in real transactions (``transaction=True``): on_commit callbacks must run, and
a task published before the commit must meet the demo's real Celery worker, a thread
with a database connection of its own. So the test database is a file: an in-memory
SQLite database shared between connections would lock the table instead of hiding the
uncommitted row.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import threading
from html import escape
from typing import Any

import pytest
from django.core import mail

import signaltrace
from tests.demo_launcher import DEMO, assert_only_the_launcher_skipped, demo_only, launcher, run_under_demo
from tests.demo_launcher import run_lab_scenario as run
from tests.locations import where

HAZARD_SLUGS = [
    "task-before-commit",
    "task-on-commit",
    "mail-then-rollback",
    "mail-on-commit",
    "bulk-create-skips",
    "save-each-row",
]
WORKER_THREAD = "looplab-celery-worker"


@launcher
def test_hazard_pages_pass_under_the_demo_settings() -> None:
    assert_only_the_launcher_skipped(run_under_demo(__file__, "-W", "error", "-o", "django_debug_mode=true"))


# ----------------------------------------------------------------- hazard pages

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory) -> None:
    """A file for the test database (see the module's docstring); pytest-django's hook for it."""
    from django.conf import settings

    name = tmp_path_factory.mktemp("demo-db") / "test.sqlite3"
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(name)


def _line_of(function: Any, text: str) -> str:
    """``looplab/module.py:line`` of the first line of ``function``'s source containing ``text``."""
    lines, first = inspect.getsourcelines(function)
    offset = next(number for number, line in enumerate(lines) if text in line)
    return f"{where(function).rsplit(':', 1)[0]}:{first + offset}"


def _the_one_hazard(trace: signaltrace.Trace, kind: str, receiver: Any, call_text: str) -> Any:
    """The trace's one hazard: of ``kind``, made by ``receiver``, placed at the line of
    ``receiver``'s source that holds ``call_text``."""
    (hazard,) = trace.hazards
    assert hazard.kind == kind
    assert hazard.place == _line_of(receiver, call_text)
    assert hazard.finding.receiver.receiver_name == f"looplab.receivers.{receiver.__name__}"
    return hazard


def _product_post_saves(trace: signaltrace.Trace) -> list[set[str]]:
    """The receivers each post_save of looplab.Product called."""
    return [
        {call.receiver_name for call in dispatch.calls}
        for dispatch in trace.dispatches
        if dispatch.signal_name == "post_save" and dispatch.sender_name == "looplab.Product"
    ]


@demo_only
def test_the_lab_lists_every_hazard_with_its_text_and_twin(client) -> None:
    from looplab.scenarios import HAZARDS

    content = client.get("/lab/").content.decode()
    assert 'id="hazards">Transaction hazards</h1>' in content
    assert [scenario.slug for scenario in HAZARDS] == HAZARD_SLUGS
    for scenario in HAZARDS:
        assert f'action="/lab/{scenario.slug}/"' in content
        assert escape(scenario.shows) in content and scenario.reveals
    assert [scenario.twin for scenario in HAZARDS] == [
        "task-on-commit",
        "",
        "mail-on-commit",
        "",
        "save-each-row",
        "",
    ]


@demo_only
def test_each_request_thread_waits_for_the_tasks_it_published_only() -> None:
    """Concurrent lab pages must not wait for (or report) each other's tasks."""
    from looplab import tasks

    tasks.published().clear()
    tasks.remember_published(sender=tasks.confirm_order.name, headers={"id": "mine"})
    seen_there: list[list[str]] = []

    def other_request() -> None:
        tasks.remember_published(sender=tasks.confirm_order.name, headers={"id": "theirs"})
        seen_there.append(list(tasks.published()))

    thread = threading.Thread(target=other_request)
    thread.start()
    thread.join(timeout=10)
    assert seen_there == [["theirs"]]
    assert tasks.published() == ["mine"]


@demo_only
def test_a_task_published_before_the_commit_fails_in_the_worker_with_does_not_exist(client) -> None:
    from celery.result import AsyncResult
    from looplab import receivers, tasks
    from looplab.models import Order

    with signaltrace.record() as trace:
        content = run(client, "task-before-commit")
    order = Order.objects.get()  # committed after the worker had looked for it
    assert not order.confirmed
    assert f"published confirm_order({order.pk}): tasks on the broker before the commit: 1." in content
    assert (
        "The worker ran it while the transaction was still open and raised DoesNotExist: "
        "Order matching query does not exist." in content
    )
    (task_id,) = tasks.published()
    result = AsyncResult(task_id)
    assert result.state == "FAILURE" and type(result.result).__name__ == "DoesNotExist"
    assert "looplab.receivers.publish_order_confirmation" in content  # its post_save call, in the trace
    assert 'action="/lab/task-on-commit/"' in content  # the twin's button
    workers = [thread for thread in threading.enumerate() if thread.name == WORKER_THREAD]
    assert len(workers) == 1 and workers[0].daemon
    # What the panel's Hazards box shows: the receiver (file:line), the task, the
    # transaction and the fix; its place is the line that published the task.
    hazard = _the_one_hazard(
        trace, "task_before_commit", receivers.publish_order_confirmation, "confirm_order.delay("
    )
    publish = hazard.finding
    assert (publish.kind, publish.what) == ("celery_task", "looplab.tasks.confirm_order")
    assert publish.transaction.summary == "atomic block (depth 1) on 'default', committed"
    named = f"looplab.receivers.publish_order_confirmation ({where(receivers.publish_order_confirmation)})"
    assert hazard.message.startswith(f"{named} published Celery task looplab.tasks.confirm_order ")
    assert "atomic block (depth 1) on 'default', committed" in hazard.message
    assert "task.delay_on_commit(...)" in hazard.message
    assert trace.side_effects == [publish]


@demo_only
def test_delay_on_commit_publishes_after_the_commit_and_the_worker_finds_the_row(client) -> None:
    from looplab import tasks
    from looplab.models import CommittedOrder

    with signaltrace.record() as trace:
        content = run(client, "task-on-commit")
    order = CommittedOrder.objects.get()
    assert order.confirmed  # by the worker, on its own connection
    assert "tasks on the broker before the commit: 0, after it: 1." in content
    assert (
        escape(
            f"The worker ran it after the commit and returned 'looplab.CommittedOrder #{order.pk} confirmed'."
        )
        in content
    )
    assert len(tasks.published()) == 1
    assert "looplab.receivers.publish_committed_order_confirmation" in content
    # No hazard: the task waits for the commit as an on_commit callback, which ran.
    assert trace.hazards == [] and trace.side_effects == []  # published after the receiver returned
    (callback,) = trace.on_commit_callbacks
    assert (callback.callback, callback.fate) == ("looplab.tasks.confirm_committed_order.delay", "ran")
    assert callback.receiver.receiver_name == "looplab.receivers.publish_committed_order_confirmation"
    assert callback.transaction.summary == "atomic block (depth 1) on 'default', committed"
    assert callback.ran_ns > callback.registered_ns


@demo_only
def test_an_email_sent_before_a_rollback_stays_sent_for_a_row_that_is_gone(client) -> None:
    from looplab import receivers
    from looplab.models import Invitation

    with signaltrace.record() as trace:
        content = run(client, "mail-then-rollback")
    assert not Invitation.objects.exists()
    assert [(message.subject, message.to) for message in mail.outbox] == [
        ("Your invitation", ["grace@example.com"])
    ]
    assert "After the rollback the row exists: False." in content
    assert escape("E-mails sent: 1 ('Your invitation' to grace@example.com).") in content
    assert "looplab.receivers.mail_invitation" in content
    assert 'action="/lab/mail-on-commit/"' in content
    # The Hazards box: the receiver (file:line), the mail (its recipients counted, never
    # named), the transaction, rolled back, and the fix.
    hazard = _the_one_hazard(trace, "mail_before_commit", receivers.mail_invitation, "send_mail(")
    sent = hazard.finding
    assert (sent.kind, sent.what) == ("email", "'Your invitation' to 1 recipient")
    assert sent.transaction.rolled_back and sent.transaction.rollback_scope == "transaction"
    named = f"looplab.receivers.mail_invitation ({where(receivers.mail_invitation)})"
    assert hazard.message.startswith(f"{named} sent an e-mail to 1 recipient ")
    assert "atomic block (depth 1) on 'default', rolled back (transaction)" in hazard.message
    assert "transaction.on_commit(lambda: send_mail(...))" in hazard.message
    assert "grace@example.com" not in hazard.message


@demo_only
def test_an_email_sent_on_commit_is_not_sent_for_the_rollback_and_sent_after_the_commit(client) -> None:
    from looplab.models import CommittedInvitation

    with signaltrace.record() as trace:
        content = run(client, "mail-on-commit")
    assert list(CommittedInvitation.objects.values_list("email", flat=True)) == ["grace@example.com"]
    assert [message.to for message in mail.outbox] == [["grace@example.com"]]  # the committed one only
    assert "After the rollback the row exists: False." in content
    assert "E-mails sent: 0." in content
    assert "e-mails sent before the commit: 0; after it: 1" in content
    # No hazard: two on_commit callbacks, one discarded with the rollback, one ran after the commit.
    assert trace.hazards == [] and trace.side_effects == []
    callbacks = trace.on_commit_callbacks
    assert [(c.callback, c.fate, c.transaction.outcome) for c in callbacks] == [
        ("django.core.mail.send_mail", "discarded", "rolled back"),
        ("django.core.mail.send_mail", "ran", "committed"),
    ]
    assert {c.receiver.receiver_name for c in callbacks} == {"looplab.receivers.mail_committed_invitation"}


@demo_only
def test_bulk_create_runs_no_post_save_receiver(client) -> None:
    from looplab import hazards, receivers
    from looplab.models import PriceHistory, Product, SearchEntry

    with signaltrace.record() as trace:
        content = run(client, "bulk-create-skips")
    assert Product.objects.count() == 3
    assert not SearchEntry.objects.exists() and not PriceHistory.objects.exists()
    assert (
        "0 search entries (index_product), 0 price history rows (record_price); 3 of each expected."
        in content
    )
    assert _product_post_saves(trace) == []
    assert 'action="/lab/save-each-row/"' in content
    # A bypassed write, and the hazard it is: both receivers named with file:line.
    (hazard,) = trace.hazards
    assert hazard.kind == "bypassed_write"
    assert hazard.place == _line_of(hazards.run_bulk_create_skips, ".bulk_create(")
    (write,) = trace.bypassed_writes
    assert hazard.finding is write
    assert write.summary == "bulk_create of 3 looplab.Product rows: 2 post_save receivers did not run"
    assert [(ref.signal, ref.receiver) for ref in write.receivers] == [
        ("post_save", "looplab.receivers.index_product"),
        ("post_save", "looplab.receivers.record_price"),
    ]
    for function in (receivers.index_product, receivers.record_price):
        assert f"looplab.receivers.{function.__name__} ({where(function)})" in hazard.message
    assert "Fix: save() each object" in hazard.message


@demo_only
def test_save_for_each_row_runs_both_receivers_for_each(client) -> None:
    from looplab.models import PriceHistory, Product, SearchEntry

    with signaltrace.record() as trace:
        content = run(client, "save-each-row")
    assert Product.objects.count() == 3
    assert SearchEntry.objects.count() == 3 and PriceHistory.objects.count() == 3
    assert (
        "3 search entries (index_product), 3 price history rows (record_price); 3 of each expected."
        in content
    )
    both = {"looplab.receivers.index_product", "looplab.receivers.record_price"}
    assert _product_post_saves(trace) == [both, both, both]
    assert trace.hazards == [] and trace.bypassed_writes == []


@demo_only
def test_manage_py_starts_the_worker_on_first_use_and_exits_with_it_running(tmp_path) -> None:
    """A process of its own, as runserver is: the worker starts with the first task scenario,
    and the process exits on its own (no hang at exit, the worker thread being a daemon)."""
    env = {**os.environ, "DEMO_DATABASE": str(tmp_path / "db.sqlite3")}
    manage = [sys.executable, "-W", "error", str(DEMO / "manage.py")]
    subprocess.run(
        [*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, capture_output=True, timeout=180
    )
    script = (
        "import threading\n"
        "from looplab.scenarios import run_scenario\n"
        f"workers = lambda: [t.daemon for t in threading.enumerate() if t.name == {WORKER_THREAD!r}]\n"
        "print('before:', workers())\n"
        "for slug in ('task-before-commit', 'task-on-commit'):\n"
        "    print(*run_scenario(slug)[0], sep='\\n')\n"
        "print('after:', workers())\n"
    )
    done = subprocess.run(
        [*manage, "shell", "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "before: []" in done.stdout and "after: [True]" in done.stdout, done.stdout
    assert "raised DoesNotExist: Order matching query does not exist." in done.stdout
    assert "returned 'looplab.CommittedOrder #1 confirmed'." in done.stdout
