"""Smoke test of an installed signaltrace, run by tests/scripts/package.sh in a clean
virtualenv that holds only the built wheel and its dependencies (Django).

Configures Django in this process with signaltrace in INSTALLED_APPS, migrates an
in-memory database, records a ``User`` save and a custom signal, and checks what the
trace saw; then that the package data (the panel's template and static files, and
``py.typed``) came with the wheel. Run it with ``python -I`` from outside the
checkout, so ``import signaltrace`` can only find the installed copy.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.staticfiles",
        "signaltrace",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
    STATIC_URL="/static/",
    SIGNALTRACE={"ENABLED": True},
    USE_TZ=True,
)
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.contrib.staticfiles import finders  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.dispatch import Signal  # noqa: E402
from django.template.loader import get_template  # noqa: E402

import signaltrace  # noqa: E402 - after settings, as in a project


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"package smoke test FAILED: {message}")


def greet(sender: object, **kwargs: object) -> str:
    return f"hello {kwargs['name']}"


installed_at = Path(signaltrace.__file__).resolve().parent
check(
    installed_at.is_relative_to(Path(sys.prefix).resolve()),
    f"signaltrace imported from {installed_at}, not from this virtualenv ({sys.prefix})",
)
check(signaltrace.is_installed(), "the app did not install the hooks at django.setup() with ENABLED True")

call_command("migrate", verbosity=0)
call_command("check", fail_level="WARNING", verbosity=0)

greeted = Signal()
greeted.connect(greet, weak=False)
with signaltrace.record() as trace:
    User.objects.create(username="ada")
    responses = greeted.send(sender="smoke", name="ada")

seen = [(dispatch.signal_name, dispatch.sender_name) for dispatch in trace.dispatches]
check(("post_save", "auth.User") in seen, f"no post_save of auth.User in the trace: {seen}")
check(responses == [(greet, "hello ada")], f"Signal.send returned {responses!r}")
custom = [dispatch for dispatch in trace.dispatches if dispatch.sender_name == "'smoke'"]
check(len(custom) == 1, f"the custom signal was recorded {len(custom)} times: {seen}")
check(
    [call.receiver_name for call in custom[0].calls] == ["__main__.greet"],
    f"receivers of the custom signal: {[call.receiver_name for call in custom[0].calls]}",
)
check(custom[0].kwargs.get("name") == "'ada'", f"kwargs of the custom signal: {custom[0].kwargs}")

package = resources.files("signaltrace")
check(package.joinpath("py.typed").is_file(), "py.typed is missing")
get_template("signaltrace/panel.html")  # raises TemplateDoesNotExist if the wheel lacks it
for name in ("signaltrace/panel.css", "signaltrace/panel.js"):
    check(finders.find(name) is not None, f"static file {name} is missing")

print(
    f"package smoke test passed: signaltrace {signaltrace.__version__} from {installed_at}, "
    f"Django {django.get_version()}; recorded {len(trace.dispatches)} dispatches "
    f"({', '.join(sorted({name for name, _ in seen}))}); template, static files and py.typed present"
)
