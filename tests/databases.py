"""The databases a test can run on: SQLite always, PostgreSQL when it is up.

``tests/scripts/postgres.sh`` starts PostgreSQL and prints ``SIGNALTRACE_TEST_POSTGRES=1``;
with that variable set, ``tests/settings.py`` adds the ``"postgres"`` alias. Parametrize
a test over both with :data:`DATABASE_ALIASES`: each case gets the alias as its
argument and, through its own ``django_db`` mark, exactly that database, set up
transactionally (real commits, so ``on_commit`` callbacks run and other connections
see the rows)::

    @pytest.mark.parametrize("alias", DATABASE_ALIASES)
    def test_something(alias: str) -> None:
        with transaction.atomic(using=alias):
            Ping.objects.using(alias).create()

Without PostgreSQL the ``postgresql`` case skips and says why. For a test run inside
one transaction that is rolled back (pytest-django's default, like Django's
``TestCase``), use :func:`database_params` with ``transaction=False``.
"""

from __future__ import annotations

import os

import pytest

SQLITE = "default"
POSTGRES = "postgres"

#: True when tests/settings.py has the "postgres" alias (it reads the same variable).
POSTGRES_AVAILABLE = os.environ.get("SIGNALTRACE_TEST_POSTGRES") == "1"
POSTGRES_MISSING = (
    "PostgreSQL is not available: SIGNALTRACE_TEST_POSTGRES is not 1 "
    "(tests/scripts/postgres.sh starts PostgreSQL, or says why it cannot)"
)

#: The aliases configured in this run, for a test that uses all of them at once.
AVAILABLE_ALIASES = [SQLITE, POSTGRES] if POSTGRES_AVAILABLE else [SQLITE]


def database_params(*, transaction: bool = True) -> list[pytest.ParameterSet]:
    """One ``pytest.param`` per database (ids ``sqlite`` and ``postgresql``), each
    marked ``django_db`` for its own alias only, so a case sets up and flushes
    nothing else; the PostgreSQL case skips when it is not available."""
    return [
        pytest.param(
            SQLITE,
            id="sqlite",
            marks=pytest.mark.django_db(databases=[SQLITE], transaction=transaction),
        ),
        pytest.param(
            POSTGRES,
            id="postgresql",
            marks=[
                pytest.mark.skipif(not POSTGRES_AVAILABLE, reason=POSTGRES_MISSING),
                pytest.mark.django_db(databases=[POSTGRES], transaction=transaction),
            ],
        ),
    ]


#: ``@pytest.mark.parametrize("alias", DATABASE_ALIASES)``: each database, transactional.
DATABASE_ALIASES = database_params()


def close_thread_connections() -> None:
    """Close the connections this thread opened (a ``sync_to_async`` worker's), for good.

    ``connection.close()`` leaves an in-memory SQLite database's connection open (closing
    it would lose the database). A worker thread's own connection to the shared
    in-memory test database can go, and must, or it is reported unclosed
    (``ResourceWarning``) when the interpreter exits.
    """
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()
        if connection.connection is not None and not connection.in_atomic_block:
            connection.connection.close()  # in-memory SQLite: the database lives on in the others
            connection.connection = None
