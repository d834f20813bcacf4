"""The demo site as a production deployment runs it, for ``benchmarks/production.py``.

The demo's settings, then: DEBUG off, no toolbar, a cheap password hasher (sign-ups
must measure the app, not PBKDF2), SQLite in WAL mode with a busy timeout, no
logging to the console. ``BENCH_DATABASE`` is the SQLite file; ``BENCH_SIGNALTRACE``
the ``SIGNALTRACE`` dict, as JSON.
"""

import json
import os

import django
from demo_site.settings import *  # noqa: F403
from demo_site.settings import DATABASES, INSTALLED_APPS, MIDDLEWARE

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "debug_toolbar"]
MIDDLEWARE = [middleware for middleware in MIDDLEWARE if not middleware.startswith("debug_toolbar.")]
ROOT_URLCONF = "benchmarks.production_urls"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

DATABASES = {
    "default": {
        **DATABASES["default"],
        "NAME": os.environ.get("BENCH_DATABASE", DATABASES["default"]["NAME"]),
        # The file is in WAL mode already (production.py sets it once: it persists).
        "OPTIONS": {"timeout": 30},
    }
}
if django.VERSION >= (5, 1):
    DATABASES["default"]["OPTIONS"].update(
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )

SIGNALTRACE = json.loads(os.environ.get("BENCH_SIGNALTRACE") or "{}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # ERROR: the loop lab connects a receiver twice on purpose, and says so at startup.
    "loggers": {"signaltrace": {"handlers": ["console"], "level": "ERROR"}},
}
