"""Settings of the signaltrace demo site: SQLite, DEBUG on, django-debug-toolbar.

For local use only (the secret key is public). ``DEMO_DATABASE`` chooses the
SQLite file (the smoke test uses a throwaway one).
"""

import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "signaltrace-demo-only-never-deploy"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INTERNAL_IPS = ["127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "debug_toolbar",
    "signaltrace",
    "accounts",
    "looplab",
]

MIDDLEWARE = [
    "debug_toolbar.middleware.DebugToolbarMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"
ASGI_APPLICATION = "demo_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "demo_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DATABASE") or BASE_DIR / "db.sqlite3",
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"

# signaltrace: installed because DEBUG is on; stated here to make it plain.
SIGNALTRACE = {"ENABLED": True}

# The signaltrace toolbar panel, when this version of signaltrace has it.
try:
    from signaltrace.panels import SignalTracePanel  # noqa: F401
except ImportError:
    pass
else:
    from debug_toolbar.settings import PANELS_DEFAULTS

    # Right after the toolbar's own Signals panel, as docs/panel.md lists them (last, it
    # would sit below the fold of a 1000 px window). base.html opens it on the loop lab.
    _SIGNALS = "debug_toolbar.panels.signals.SignalsPanel"
    _AT = PANELS_DEFAULTS.index(_SIGNALS) + 1 if _SIGNALS in PANELS_DEFAULTS else len(PANELS_DEFAULTS)
    DEBUG_TOOLBAR_PANELS = [
        *PANELS_DEFAULTS[:_AT],
        "signaltrace.panels.SignalTracePanel",
        *PANELS_DEFAULTS[_AT:],
    ]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"signaltrace": {"handlers": ["console"], "level": "WARNING"}},
}

# E-mail stays in memory (django.core.mail.outbox): the loop lab shows what a receiver sent.
# Django 6.1 configures mail with MAILERS and deprecates EMAIL_BACKEND.
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# Celery (demo_site/celery.py), for the loop lab's task scenarios: the broker and the
# results live in this process's memory and the worker is a thread of the web process
# (looplab/worker.py), so nothing else needs to run. The worker polls the in-memory
# queue every 50 ms (kombu's default is 1 s), so a click's task runs at once.
CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = "cache+memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {"polling_interval": 0.05}
