"""System checks for the ``SIGNALTRACE`` setting and for receiver connections.

Bad values are reported here, by ``manage.py check`` and at startup, instead of
failing deep inside a dispatch. Each id is listed in docs/settings.md.

Whether a value is usable is decided by :data:`signaltrace.conf.RULES` alone: the
run time uses the default for exactly the values reported here.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning

from signaltrace.conf import DEFAULTS, RULES, get_config, invalid, user_settings
from signaltrace.core import (
    SideEffectCall,
    connection_problems,
    discover_signals,
    scan_receivers,
    signal_name,
)
from signaltrace.safety import report_internal_error

# Keys holding dotted paths of signals (the keys of OTEL_SAMPLE_RATES), and the id
# a path reports with when it does not import or is not a Signal. Such entries are
# skipped at run time; the rest of the value is used. The OTEL_* keys also take the
# short names spans show for Django's signals (post_save), as signaltrace.otel does.
_PATH_KEYS = {
    "IGNORE_SIGNALS": "signaltrace.E004",
    "OTEL_SIGNALS_ALLOW": "signaltrace.E021",
    "OTEL_SIGNALS_DENY": "signaltrace.E021",
    "OTEL_SAMPLE_RATES": "signaltrace.E021",
}


def _key_errors(config: dict[str, Any], keys: list[str]) -> list[CheckMessage]:
    """One error per key whose value its rule rejects, then per unusable signal path."""
    errors: list[CheckMessage] = []
    for key in keys:
        if key not in config:
            continue
        value = config[key]
        problem = invalid(key, value)
        if problem is not None:
            rule = RULES[key]
            errors.append(
                Error(
                    f"SIGNALTRACE[{key!r}] {problem}.",
                    hint=f"{rule.hint} Until it is fixed, the default is used: {DEFAULTS[key]!r}.",
                    id=rule.check_id,
                )
            )
        elif key in _PATH_KEYS and value is not None:
            errors.extend(_check_signal_paths(key, value, _PATH_KEYS[key]))
    return errors


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate every key of ``SIGNALTRACE`` but the ``OTEL_*`` ones (E001-E010)."""
    from django.conf import settings

    raw = getattr(settings, "SIGNALTRACE", {})
    if not isinstance(raw, dict):
        return [
            Error(
                "SIGNALTRACE must be a dict.",
                hint="For example SIGNALTRACE = {'ENABLED': True}. Until it is fixed, the defaults are used.",
                id="signaltrace.E001",
            )
        ]
    config = user_settings()
    errors: list[CheckMessage] = []
    unknown = sorted(map(str, set(config) - set(DEFAULTS)))
    if unknown:
        errors.append(
            Error(
                f"SIGNALTRACE has unknown keys: {', '.join(unknown)}.",
                hint=f"Known keys: {', '.join(DEFAULTS)}.",
                id="signaltrace.E002",
            )
        )
    errors.extend(_key_errors(config, [key for key in RULES if not key.startswith("OTEL_")]))
    return errors


def _short_signal_names() -> set[str]:
    """The names spans show for Django's signals (``post_save``): the names without a dot."""
    names = {signal_name(signal) for signal in discover_signals()}
    return {name for name in names if "." not in name and " " not in name}


def _check_signal_paths(key: str, paths: Any, check_id: str) -> list[CheckMessage]:
    """Each of ``paths`` (validated strings) importable and a Signal; for the ``OTEL_*``
    keys, a name without a dot must be one spans show for Django's signals (``post_save``)."""
    from django.dispatch import Signal
    from django.utils.module_loading import import_string

    errors: list[CheckMessage] = []
    short_names: set[str] | None = None
    for path in paths:
        if key.startswith("OTEL_") and "." not in path:
            if short_names is None:
                short_names = _short_signal_names()
            if path not in short_names:
                errors.append(
                    Error(
                        f"SIGNALTRACE[{key!r}] names {path!r}, which is not a dotted path "
                        "nor the name of one of Django's signals.",
                        hint="Use a dotted path (shop.signals.paid), or the name spans show for "
                        "one of Django's signals (post_save).",
                        id=check_id,
                    )
                )
            continue
        try:
            signal = import_string(path)
        except ImportError as exc:
            errors.append(
                Error(
                    f"SIGNALTRACE[{key!r}] names {path!r}, which cannot be imported ({exc}).",
                    hint="Use the dotted path of the module attribute holding the signal.",
                    id=check_id,
                )
            )
            continue
        if not isinstance(signal, Signal):
            errors.append(
                Error(
                    f"SIGNALTRACE[{key!r}] names {path!r}, which is not a Signal.",
                    hint="Use the dotted path of a django.dispatch.Signal instance.",
                    id=check_id,
                )
            )
    return errors


@register()
def check_otel_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate the ``OTEL_*`` keys used by :mod:`signaltrace.otel` (E020-E023, W020)."""
    errors = _key_errors(user_settings(), [key for key in RULES if key.startswith("OTEL_")])
    config = get_config()  # the values in force: a rejected one is its default
    allowed = config["OTEL_SIGNALS_ALLOW"]
    ignored = config["IGNORE_SIGNALS"]
    if allowed is not None:
        never = [path for path in allowed if path in ignored]
        if never:
            errors.append(
                CheckWarning(
                    f"SIGNALTRACE['OTEL_SIGNALS_ALLOW'] names signals that IGNORE_SIGNALS excludes, "
                    f"which never get spans: {', '.join(never)}.",
                    hint="Remove them from IGNORE_SIGNALS to trace them (they may be hot).",
                    id="signaltrace.W020",
                )
            )
    return errors


#: Modules of ASGI servers: one imported means this process serves over ASGI.
ASGI_SERVERS = ("uvicorn", "daphne", "hypercorn", "granian")
ASGI_INSTRUMENTATION = "opentelemetry.instrumentation.asgi"


def _served_over_asgi() -> bool:
    """``ASGI_APPLICATION`` is set (Channels and daphne need it), or an ASGI server runs this process.

    uvicorn and gunicorn's uvicorn worker run no system checks: ``manage.py check``
    (in CI, or ``--deploy``) sees the setting.
    """
    from django.conf import settings

    return bool(getattr(settings, "ASGI_APPLICATION", None)) or any(
        server in sys.modules for server in ASGI_SERVERS
    )


def _signal_spans_on() -> bool:
    """Whether signaltrace.otel makes spans in this process (looked up, never imported here)."""
    otel = sys.modules.get("signaltrace.otel")
    instrumentor = getattr(otel, "SignalInstrumentor", None)
    try:
        return instrumentor is not None and bool(instrumentor().is_instrumented_by_opentelemetry)
    except Exception:  # noqa: BLE001 - a check must not fail on a broken install
        return False


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@register()
def check_asgi_request_spans(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W021: signal spans over ASGI without ``opentelemetry-instrumentation-asgi``.

    Without it ``opentelemetry-instrumentation-django`` makes no request span for
    ASGI requests, so every dispatch of a request is a root trace of its own.
    """
    if not _signal_spans_on() or not _served_over_asgi() or _importable(ASGI_INSTRUMENTATION):
        return []
    return [
        CheckWarning(
            "Signal spans are on and the project is served over ASGI, but "
            "opentelemetry-instrumentation-asgi is not installed: ASGI requests get no request "
            "span, and each signal dispatch becomes a root trace of its own.",
            hint="pip install opentelemetry-instrumentation-asgi (or signaltrace[otel]). "
            "If this project is served over WSGI only, add 'signaltrace.W021' to SILENCED_SYSTEM_CHECKS.",
            id="signaltrace.W021",
        )
    ]


@register(Tags.signals)
def check_connections(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """One warning per receiver connected twice or dropped for a taken ``dispatch_uid`` (W101).

    Lists what signaltrace's ``connect`` hook found so far in this process (it is
    installed when signaltrace starts, see ``ENABLED``): at ``manage.py check``,
    ``runserver`` and ``test`` that is every receiver connected while Django started.
    """
    return [
        CheckWarning(
            problem,
            hint=(
                "Found when the receiver was connected, and logged then on the 'signaltrace' logger. "
                "If it is intended, add 'signaltrace.W101' to SILENCED_SYSTEM_CHECKS."
            ),
            id="signaltrace.W101",
        )
        for problem in connection_problems()
    ]


_TASK_FIX = (
    "transaction.on_commit(lambda: task.delay(...)), or Celery's task.delay_on_commit(...) "
    "(apply_async_on_commit)"
)
_MAIL_FIX = "transaction.on_commit(lambda: send_mail(...)) (or functools.partial)"


def _side_effect_warning(found: SideEffectCall) -> CheckMessage:
    fix = _TASK_FIX if found.kind == "task" else _MAIL_FIX
    return CheckWarning(
        f"Receiver {found.receiver} ({found.location}) calls {found.call} outside "
        f"transaction.on_commit() (connected to {', '.join(found.signals)}).",
        hint=(
            "A static hint, read from the receiver's source, not from a run: if the signal is sent "
            "inside a transaction, this runs before the commit, and also when it rolls back. "
            f"Fix: {fix}. signaltrace.record() and the debug-toolbar panel show whether a dispatch "
            "really ran inside a transaction. If it is intended, add 'signaltrace.W102' to "
            "SILENCED_SYSTEM_CHECKS."
        ),
        id="signaltrace.W102",
    )


def _in_apps(receiver: str, app_configs: Any) -> bool:
    """Whether a receiver's dotted path is in one of ``app_configs`` (all apps when None)."""
    if app_configs is None:
        return True
    return any(receiver == app.name or receiver.startswith(app.name + ".") for app in app_configs)


@register(Tags.signals)
def check_side_effects_outside_on_commit(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W102: the project's receivers whose source publishes a Celery task or sends mail
    outside ``transaction.on_commit`` (see :mod:`signaltrace.core.side_effect_scan`).

    Static: the receivers connected in this process are read, never run.
    """
    try:
        return [
            _side_effect_warning(found) for found in scan_receivers() if _in_apps(found.receiver, app_configs)
        ]
    except Exception:  # noqa: BLE001 - a check must not fail on a broken receiver
        report_internal_error("checks.side_effects")
        return []
