"""The test databases really work: SQLite, and PostgreSQL when it is up (tests/databases.py).

Each case runs on one alias with real commits: a rolled-back row is gone, ``on_commit``
callbacks run after the commit (when another connection already sees the row) and are
dropped with a rollback, and PostgreSQL is a real PostgreSQL server.
"""

from __future__ import annotations

import os
import runpy
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connections, transaction

from tests.databases import DATABASE_ALIASES, POSTGRES, POSTGRES_AVAILABLE, database_params
from tests.testapp.models import Ping

SETTINGS = Path(__file__).with_name("settings.py")
VENDORS = {"default": "sqlite", "postgres": "postgresql"}


def names_seen_elsewhere(alias: str) -> list[str]:
    """The Ping names another connection to ``alias`` sees (a thread has its own connection)."""

    def look() -> list[str]:
        try:
            return list(Ping.objects.using(alias).order_by("name").values_list("name", flat=True))
        finally:
            # Closed for real: Django's close() leaves an in-memory SQLite database open, to
            # keep its data (the test's own connection keeps this shared one alive).
            if connections[alias].connection is not None:
                connections[alias].connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(look).result()


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_each_alias_is_its_own_vendor_on_a_test_database(alias: str) -> None:
    connection = connections[alias]
    assert connection.vendor == VENDORS[alias]
    assert connection.settings_dict["NAME"].startswith(("test_", "file:memorydb_"))
    if alias == POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute("select version()")
            [(version,)] = cursor.fetchall()
        assert version.startswith("PostgreSQL ")
        assert connection.settings_dict["NAME"].startswith(f"test_signaltrace_{os.getpid()}")


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_a_row_saved_in_a_block_that_raises_is_gone(alias: str) -> None:
    Ping.objects.using(alias).create(name="kept")
    with pytest.raises(RuntimeError, match="undo"), transaction.atomic(using=alias):
        Ping.objects.using(alias).create(name="undone")
        assert Ping.objects.using(alias).count() == 2
        raise RuntimeError("undo")
    assert list(Ping.objects.using(alias).values_list("name", flat=True)) == ["kept"]
    assert names_seen_elsewhere(alias) == ["kept"]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_on_commit_runs_after_the_commit(alias: str) -> None:
    seen_by_callback: list[list[str]] = []
    with transaction.atomic(using=alias):
        Ping.objects.using(alias).create(name="committed")
        transaction.on_commit(lambda: seen_by_callback.append(names_seen_elsewhere(alias)), using=alias)
        assert seen_by_callback == []
    assert seen_by_callback == [["committed"]]


@pytest.mark.parametrize("alias", DATABASE_ALIASES)
def test_on_commit_callbacks_go_with_their_rollback(alias: str) -> None:
    ran: list[str] = []
    with transaction.atomic(using=alias):
        transaction.on_commit(lambda: ran.append("outer"), using=alias)
        with pytest.raises(RuntimeError), transaction.atomic(using=alias):  # a savepoint
            transaction.on_commit(lambda: ran.append("savepoint"), using=alias)
            raise RuntimeError
    with pytest.raises(RuntimeError), transaction.atomic(using=alias):
        transaction.on_commit(lambda: ran.append("rolled back"), using=alias)
        raise RuntimeError
    assert ran == ["outer"]


@pytest.mark.parametrize("alias", database_params(transaction=False))
def test_without_transaction_true_nothing_commits(alias: str) -> None:
    """pytest-django's default wraps the test in a block it rolls back, as TestCase does:
    ``on_commit`` callbacks wait for a commit that never comes."""
    ran: list[str] = []
    with transaction.atomic(using=alias):
        transaction.on_commit(lambda: ran.append("committed"), using=alias)
    assert ran == []
    assert connections[alias].in_atomic_block


@pytest.mark.parametrize("variable", ["1", None])
def test_the_postgres_alias_exists_only_when_postgres_is_up(
    monkeypatch: pytest.MonkeyPatch, variable: str | None
) -> None:
    if variable is None:
        monkeypatch.delenv("SIGNALTRACE_TEST_POSTGRES", raising=False)
    else:
        monkeypatch.setenv("SIGNALTRACE_TEST_POSTGRES", variable)
    databases = runpy.run_path(str(SETTINGS))["DATABASES"]
    if variable is None:
        assert list(databases) == ["default"]
    else:
        assert databases["postgres"]["ENGINE"] == "django.db.backends.postgresql"
        assert (databases["postgres"]["HOST"], databases["postgres"]["USER"]) == ("", "root")
        # Its own test database per process: concurrent runs and xdist workers never share one.
        assert databases["postgres"]["TEST"]["NAME"] == f"test_signaltrace_{os.getpid()}"


def test_this_run_has_the_postgres_alias_when_the_variable_says_so() -> None:
    from django.conf import settings

    assert ("postgres" in settings.DATABASES) is POSTGRES_AVAILABLE
