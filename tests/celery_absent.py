"""A project without Celery: run only by ``tests/test_transaction_edges.py``, in a fresh process.

That test starts Python with ``sys.modules["celery"] = None`` before pytest, and so Django
and signaltrace, start: ``import celery`` fails as if it were not installed. signaltrace
never imports Celery; here it must record a mail hazard as usual, log no internal error
and record no Celery side effect. (Not named ``test_*.py``: a normal run, where Celery is
installed, does not collect it.)
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.db.models.signals import post_save

import signaltrace
from signaltrace.core import MAIL_BEFORE_COMMIT, Transaction
from tests.bare import bare_then_recorded, item_names, saves
from tests.databases import DATABASE_ALIASES
from tests.testapp.models import Item

if sys.modules.get("celery", "importable") is not None:
    pytest.skip(
        "runs only where Celery cannot be imported (tests/test_transaction_edges.py starts it)",
        allow_module_level=True,
    )


def _mail_on_save(sender: Any, instance: Any, **kwargs: Any) -> None:
    mail.send_mail("Welcome", "body", "from@example.com", ["a@example.com"])


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_save_and_a_mail_in_a_block_without_celery(
    alias: str, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    connect(post_save, _mail_on_save, sender=Item)

    def scenario() -> Any:
        with transaction.atomic(using=alias):
            item = Item.objects.using(alias).create(name="a")
        return item.name, item_names(alias), [m.subject for m in mail.outbox]

    with caplog.at_level(logging.DEBUG, logger="signaltrace"):
        bare, recorded, trace = bare_then_recorded(scenario, aliases=[alias])
    assert recorded == bare == ("a", ["a"], ["Welcome"])
    assert signaltrace.is_installed()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("signaltrace")] == []
    assert [(e.kind, e.what) for e in trace.side_effects] == [("email", "'Welcome' to 1 recipient")]
    [hazard] = trace.hazards
    assert hazard.kind == MAIL_BEFORE_COMMIT
    assert hazard.finding.transaction == saves(trace)[0].transaction
    assert hazard.finding.transaction == Transaction(alias, True, 1, False, "committed")
    assert sys.modules["celery"] is None  # nothing imported it behind the test's back
    with pytest.raises(ImportError):
        import celery  # noqa: F401
