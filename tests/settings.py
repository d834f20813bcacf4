"""Django settings of the test project (pytest-django loads them)."""

import os

SECRET_KEY = "signaltrace-tests-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "signaltrace",
    "tests.testapp",
    "debug_toolbar",
]

MIDDLEWARE = [
    "debug_toolbar.middleware.DebugToolbarMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "tests.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
    }
}

# PostgreSQL as a second alias when tests/scripts/postgres.sh started it (tests/databases.py
# parametrizes over both). Peer authentication over the socket as role root. The test database's
# name carries this process's id: the legs of tests/scripts/test.sh (and anyone else's run) use one
# server at once, and each run drops and recreates a test database of its own name; pytest-xdist's
# workers are processes of their own, and pytest-django adds _gw<N> besides.
if os.environ.get("SIGNALTRACE_TEST_POSTGRES") == "1":
    DATABASES["postgres"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "signaltrace",
        "HOST": "",
        "USER": "root",
        "TEST": {"NAME": f"test_signaltrace_{os.getpid()}"},
    }

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

SIGNALTRACE = {"ENABLED": True}

# The toolbar shows only on the panel tests' pages (tests/testapp/panel_views.py), so
# other tests' requests and traces are untouched. IS_RUNNING_TESTS False: see FIELD-NOTES.
DEBUG_TOOLBAR_CONFIG = {
    "IS_RUNNING_TESTS": False,
    "SHOW_TOOLBAR_CALLBACK": "tests.testapp.panel_views.show_toolbar",
}
DEBUG_TOOLBAR_PANELS = [
    "debug_toolbar.panels.timer.TimerPanel",
    "debug_toolbar.panels.sql.SQLPanel",
    "signaltrace.panels.SignalTracePanel",
]

# Django's "django" logger without its mail_admins handler. On Django 4.2 that handler
# renders an HTML report of every logged error (a failed send_robust receiver among them),
# whether or not ADMINS is set: a template_rendered dispatch in the middle of a test's trace.
LOGGING = {"version": 1, "disable_existing_loggers": False, "loggers": {"django": {"handlers": []}}}

# Django 6.1 deprecates the default mailer (EMAIL_BACKEND) for MAILERS: name one, so
# sending mail in tests warns nothing; the test runner swaps in locmem either way.
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
