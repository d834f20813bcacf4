"""Settings for Django's own test suite on PostgreSQL (``runtests.py --settings=postgres_settings``).

Django's ``test_sqlite.py`` (the sdist's default settings, found on the same PYTHONPATH)
with its two databases, ``default`` and ``other``, moved to the PostgreSQL server that
``tests/scripts/postgres.sh`` starts: peer authentication over the socket as role root.
The test databases' names carry this process's id, so the legs of tests/scripts/test.sh
can run the suites on one server at once.
"""

import os

from test_sqlite import *  # noqa: F403  (the rest of Django's settings for its suite, as this version has them)

_SERVER = {"ENGINE": "django.db.backends.postgresql", "NAME": "signaltrace", "HOST": "", "USER": "root"}
_TEST_NAME = f"test_signaltrace_{os.getpid()}_django"

DATABASES = {
    "default": {**_SERVER, "TEST": {"NAME": _TEST_NAME}},
    "other": {**_SERVER, "TEST": {"NAME": f"{_TEST_NAME}_other"}},
}
