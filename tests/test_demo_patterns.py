"""The loop lab's "patterns from the tutorials" through Django's test client, under the demo's settings.

As tests/test_demo.py does, the main run launches this file again in a subprocess with
``--ds=demo_site.settings`` and ``demo_project`` on the path; the page tests run there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

import signaltrace
from tests.demo_launcher import DEMO, assert_only_the_launcher_skipped, demo_only, launcher, run_under_demo
from tests.demo_launcher import run_lab_scenario as run

PATTERN_SLUGS = [
    "file-cleanup",
    "file-cleanup-on-commit",
    "user-cascade",
    "soft-delete",
    "soft-delete-signal",
    "m2m-tags",
    "not-idempotent",
    "idempotent",
    "connected-twice",
    "dispatch-uid",
    "delete-cost",
]


@launcher
def test_pattern_pages_pass_under_the_demo_settings() -> None:
    assert_only_the_launcher_skipped(run_under_demo(__file__, "-o", "django_debug_mode=true"))


# ----------------------------------------------------------------- pattern pages

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _lab_media(settings, tmp_path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")


@demo_only
def test_the_lab_lists_every_pattern_with_its_text(client) -> None:
    from looplab.scenarios import PATTERNS

    content = client.get("/lab/").content.decode()
    assert "Patterns from the tutorials" in content
    assert [scenario.slug for scenario in PATTERNS] == PATTERN_SLUGS
    for scenario in PATTERNS:
        assert f'action="/lab/{scenario.slug}/"' in content
        assert scenario.shows and scenario.reveals


@demo_only
def test_pre_delete_file_cleanup_loses_the_file_when_the_delete_rolls_back(client, settings) -> None:
    from looplab.models import Attachment

    content = run(client, "file-cleanup")
    attachment = Attachment.objects.get()
    assert "After the rollback: row kept: True; file kept: False." in content
    assert "storage.delete(&#x27;attachments/report" in content
    assert not (Path(settings.MEDIA_ROOT) / attachment.file.name).exists()
    assert "looplab.receivers.remove_attachment_file" in content
    assert "delete of looplab.Attachment #" in content  # the slow delete it caused
    assert 'action="/lab/file-cleanup-on-commit/"' in content  # the twin's button


@demo_only
@pytest.mark.django_db(transaction=True)
def test_post_delete_on_commit_keeps_the_file_until_the_delete_commits(client, settings) -> None:
    from looplab.models import CommittedAttachment

    content = run(client, "file-cleanup-on-commit")
    assert "After the rollback: row kept: True; file kept: True." in content
    assert "Then deleted it for good: after the commit the file exists: False." in content
    assert "looplab.receivers.remove_committed_attachment_file" in content
    assert not CommittedAttachment.objects.exists()
    assert not list((Path(settings.MEDIA_ROOT) / "attachments").iterdir())


@demo_only
def test_user_cascade_is_one_entry_with_rows_signals_and_receivers(client) -> None:
    from django.contrib.auth.models import User
    from looplab.models import DeletionLog

    with signaltrace.record() as trace:
        content = run(client, "user-cascade")
    (delete,) = [d for d in trace.slow_deletes if d.model == "auth.User"]
    assert dict(delete.rows) == {"auth.User": 1, "accounts.Profile": 1, "looplab.Post": 2}
    assert delete.signals_sent == 8
    assert {r.receiver for r in delete.receivers} == {
        "looplab.receivers.log_profile_deletion",
        "looplab.receivers.log_post_deletion",
    }
    summary = delete.summary
    assert summary.startswith("delete of auth.User #") and summary.endswith("; 8 signals")
    assert "1 accounts.Profile, 2 looplab.Post; 8 signals" in content
    assert "Deletes that lost Django's fast path" in content
    assert 'forced by <span class="mono">looplab.receivers.log_post_deletion</span>' in content
    assert not User.objects.exists()
    assert DeletionLog.objects.filter(how="post_delete").count() == 3


@demo_only
def test_soft_delete_names_the_post_delete_receivers_that_never_ran(client) -> None:
    from looplab.models import DeletionLog, Document

    with signaltrace.record() as trace:
        content = run(client, "soft-delete")
    assert Document.objects.filter(is_deleted=True).count() == 2
    assert not DeletionLog.objects.exists()
    assert "post_delete receivers that never ran: looplab.receivers.log_document_deletion (" in content
    assert "looplab/receivers.py:" in content
    saves = [
        d for d in trace.dispatches if d.signal_name == "post_save" and d.sender_name == "looplab.Document"
    ]
    assert [d.kwargs.get("update_fields") for d in saves][-1] == "frozenset({'is_deleted'})"
    assert not any(d.signal_name == "post_delete" for d in trace.dispatches)
    assert 'action="/lab/soft-delete-signal/"' in content


@demo_only
def test_soft_delete_with_its_own_signal_runs_the_receiver(client) -> None:
    from looplab.models import DeletionLog

    content = run(client, "soft-delete-signal")
    assert "Deletion log rows written by its receiver: 1." in content
    assert "looplab.signals.document_soft_deleted" in content
    assert "looplab.receivers.log_document_soft_deletion" in content
    assert DeletionLog.objects.get().how == "document_soft_deleted"


@demo_only
def test_m2m_changed_shows_action_pk_set_and_reverse(client) -> None:
    content = run(client, "m2m-tags")
    assert "label_count kept by the receiver after each step: 3, 2, 0." in content
    assert "Kwargs as recorded" in content
    for action in ("pre_add", "post_add", "pre_remove", "post_remove", "pre_clear", "post_clear"):
        assert f"&#x27;{action}&#x27;" in content
    assert '<span class="mono">reverse</span>=False' in content
    assert '<span class="mono">pk_set</span>=None' in content  # a clear has no pk_set
    assert content.count("looplab.receivers.count_bookmark_labels") == 6


@demo_only
def test_a_receiver_that_is_not_idempotent_queues_a_duplicate(client) -> None:
    content = run(client, "not-idempotent")
    assert "twice: 2 welcome message(s) queued" in content
    assert content.count("looplab.receivers.queue_welcome") == 2
    assert 'action="/lab/idempotent/"' in content


@demo_only
def test_get_or_create_makes_the_receiver_idempotent(client) -> None:
    content = run(client, "idempotent")
    assert "twice: 1 welcome message(s) queued" in content
    assert content.count("looplab.receivers.queue_member_welcome") == 2


@demo_only
def test_a_receiver_connected_twice_runs_twice_and_the_check_says_so(client) -> None:
    content = run(client, "connected-twice")
    assert "its receiver ran 2 time(s)." in content
    assert ">looplab.twice.count_ticket_save</span>" in content
    assert ">twice.count_ticket_save</span>" in content
    # The problems found at start-up are forgotten between tests (tests/conftest.py): ask a fresh process.
    check = subprocess.run(
        [sys.executable, str(DEMO / "manage.py"), "check"], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stderr
    output = check.stdout + check.stderr  # check prints its warnings on stderr
    w101 = [line for line in output.splitlines() if "(signaltrace.W101)" in line]
    assert len(w101) == 1 and "twice.count_ticket_save (looplab/twice.py:" in w101[0], output
    assert "count_invoice_save" not in check.stdout + check.stderr


@demo_only
def test_dispatch_uid_keeps_one_connection(client) -> None:
    content = run(client, "dispatch-uid")
    assert "its receiver ran 1 time(s)." in content
    assert content.count("count_invoice_save</span>") == 1


@demo_only
def test_delete_cost_shows_queries_time_and_the_slow_delete(client) -> None:
    import re

    content = run(client, "delete-cost")
    plain = re.search(r"looplab.PlainRow \(no receiver\): 1000 rows deleted in (\d+) queries", content)
    watched = re.search(
        r"looplab.WatchedRow \(one post_delete .*?\): 1000 rows deleted in (\d+) queries", content
    )
    assert plain and watched
    assert int(watched.group(1)) > int(plain.group(1))
    assert "2000 signals sent." in content and "0 signals sent." in content
    assert "delete of looplab.WatchedRow: 1000 looplab.WatchedRow; 2000 signals" in content
    assert "looplab.receivers.forget_watched_row" in content
    assert "more dispatches are not listed here." in content


@demo_only
def test_existing_scenarios_still_run(client) -> None:
    from looplab.models import Tag

    assert "saved with word_count=4" in run(client, "guarded-resave")
    run(client, "bulk-create")
    assert Tag.objects.count() == 4


@demo_only
def test_graph_draws_the_delete_path_of_a_user(capsys) -> None:
    call_command("signaltrace", "graph", "--deletes", "auth.User")
    text = capsys.readouterr().out
    assert "delete auth.User" in text
    assert "-> accounts.Profile (CASCADE via Profile.user)  slow path" in text
    assert "looplab.receivers.log_post_deletion" in text
