"""The ``SIGNALTRACE`` settings dict: defaults in one place, read once, cached.

Every key is optional. Values are validated by the system checks in
:mod:`signaltrace.checks`; code here assumes they are valid and falls back to the
default for a value it cannot use, so a bad setting never breaks a dispatch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

#: Django's own pattern for names of sensitive settings
#: (``SafeExceptionReporterFilter.hidden_settings``), reused for signal kwargs.
DJANGO_SENSITIVE_PATTERN = "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE"

DEFAULTS: dict[str, Any] = {
    # Install the hooks when Django starts. None means "follow settings.DEBUG".
    "ENABLED": None,
    # Signals never recorded (dotted import paths). pre_init/post_init fire once per
    # model instance built, i.e. per row of every queryset.
    "IGNORE_SIGNALS": [
        "django.db.models.signals.pre_init",
        "django.db.models.signals.post_init",
    ],
    # Dispatches kept per trace; later ones are only counted in ``trace.dropped``.
    "MAX_DISPATCHES": 10_000,
    # Extra regular expression for kwarg names whose values are redacted, on top of
    # Django's own pattern (case-insensitive).
    "SENSITIVE_KWARGS": None,
    # Longest rendered value, in characters.
    "MAX_REPR_LENGTH": 200,
    # Render arbitrary objects with repr() (may run user code); off: by type name.
    "REPR_OBJECTS": False,
    # What to do when a signal loop is detected: "raise" SignalLoopError or "warn".
    "LOOP_POLICY": "raise",
    # How many times one instance (or receiver path) may be in dispatch at once
    # before it counts as a loop. 2 allows one guarded re-save.
    "LOOP_MAX_REENTRIES": 2,
    # The debug-toolbar panel highlights receivers at least this slow (milliseconds).
    "PANEL_SLOW_RECEIVER_MS": 50,
    # OpenTelemetry (signaltrace.otel): only these signals get spans (dotted paths);
    # None: every signal not ignored.
    "OTEL_SIGNALS_ALLOW": None,
    # Signals that never get spans (dotted paths).
    "OTEL_SIGNALS_DENY": [],
    # Fraction (0 to 1) of dispatches traced, per signal: {"dotted.path": 0.1}.
    "OTEL_SAMPLE_RATES": {},
    # Add the redacted, rendered kwargs as signaltrace.kwargs.<name> span attributes.
    "OTEL_RECORD_KWARGS": False,
}

REDACTED = "********************"


def user_settings() -> dict[str, Any]:
    """The raw ``SIGNALTRACE`` dict, or ``{}`` when settings are not configured."""
    from django.conf import settings

    if not settings.configured:
        return {}
    value = getattr(settings, "SIGNALTRACE", {})
    return value if isinstance(value, dict) else {}


def get_config() -> dict[str, Any]:
    """Defaults merged with the user's ``SIGNALTRACE`` dict.

    Cached once settings are configured; the cache is cleared by
    :func:`reset_config` on Django's ``setting_changed``. Before settings are
    configured (OpenTelemetry auto-instrumentation runs that early) the defaults
    are returned and nothing is cached.
    """
    if not _settings_configured():
        return dict(DEFAULTS)
    return _configured_config()


@cache
def _configured_config() -> dict[str, Any]:
    config = dict(DEFAULTS)
    config.update(user_settings())
    return config


def reset_config(*, setting: str = "", **kwargs: Any) -> None:
    """``setting_changed`` receiver: forget cached settings when they change."""
    global generation, ignored_now
    if setting in ("SIGNALTRACE", "DEBUG", ""):
        generation += 1
        ignored_now = None
        _configured_config.cache_clear()
        _sensitive_pattern.cache_clear()
        _ignored_signals.cache_clear()
        for callback in _reset_callbacks:
            callback()


#: Called with no arguments whenever the config is reset (see :func:`when_reset`).
_reset_callbacks: list[Callable[[], None]] = []


def when_reset(callback: Callable[[], None]) -> Callable[[], None]:
    """Have ``callback`` called whenever cached settings are forgotten.

    For caches built from settings in the layers above (the core's per-type
    snapshot decisions), which this module must not import.
    """
    _reset_callbacks.append(callback)
    return callback


def is_enabled() -> bool:
    """Whether the hooks should be installed at startup."""
    from django.conf import settings

    enabled = get_config()["ENABLED"]
    if enabled is None:
        return bool(settings.configured and settings.DEBUG)
    return bool(enabled)


_configured = False

#: Bumped whenever the config in force may change (settings configured, or reset on
#: ``setting_changed``), so caches built from it elsewhere (the observers' kwargs
#: needs, the OpenTelemetry selection rules) can tell they are stale with one comparison.
generation = 0


def _settings_configured() -> bool:
    """Whether Django's settings are configured; remembered once they are.

    Called on every dispatch: ``settings.configured`` goes through ``LazySettings``
    and an import, which costs more than the rest of the settings lookup.
    """
    global _configured, generation
    if _configured:
        return True
    from django.conf import settings

    _configured = settings.configured
    if _configured:
        generation += 1  # the defaults used until now give way to the settings
    return _configured


def sensitive_pattern() -> re.Pattern[str]:
    """Compiled pattern matching kwarg names whose values must be redacted."""
    return _sensitive_pattern(_settings_configured())


@cache
def _sensitive_pattern(configured: bool) -> re.Pattern[str]:
    extra = get_config()["SENSITIVE_KWARGS"]
    pattern = DJANGO_SENSITIVE_PATTERN
    if extra:
        try:
            re.compile(extra)
        except (re.error, TypeError):
            extra = None  # reported by check signaltrace.E005
        else:
            pattern = f"{pattern}|{extra}"
    return re.compile(pattern, re.IGNORECASE)


def setting(name: str) -> Any:
    """One value of the merged config; the default if the user's value is unusable."""
    return get_config().get(name, DEFAULTS[name])


def repr_limit() -> int:
    """``MAX_REPR_LENGTH``: how long a rendered value may be, wherever it is rendered."""
    limit = setting("MAX_REPR_LENGTH")
    return limit if isinstance(limit, int) and limit > 0 else DEFAULTS["MAX_REPR_LENGTH"]


#: ``ignored_signals()`` once settings are configured (None until then, and after a
#: reset): read directly on the dispatch hot path, which then makes no call.
ignored_now: frozenset[Any] | None = None


def ignored_signals() -> frozenset[Any]:
    """The Signal objects named in ``IGNORE_SIGNALS`` (unimportable ones skipped)."""
    global ignored_now
    found = _ignored_signals(_settings_configured())
    if _configured:
        ignored_now = found
    return found


@cache
def _ignored_signals(configured: bool) -> frozenset[Any]:
    return signals_at(setting("IGNORE_SIGNALS"))  # unusable entries: check signaltrace.E004


def signals_at(paths: Any) -> frozenset[Any]:
    """The Signal objects named by a list of dotted paths (or Signal objects).

    Entries that do not import or are not signals are skipped here; the system
    checks report them.
    """
    from django.dispatch import Signal
    from django.utils.module_loading import import_string

    found = set()
    for path in paths if isinstance(paths, (list, tuple, set, frozenset)) else ():
        try:
            signal = import_string(path) if isinstance(path, str) else path
        except ImportError:
            continue
        if isinstance(signal, Signal):
            found.add(signal)
    return frozenset(found)
