"""The ``SIGNALTRACE`` settings dict: defaults and validation in one place, read once, cached.

Every key is optional. Each key has one :class:`Rule` in :data:`RULES`. The same
rule decides both what the system checks of :mod:`signaltrace.checks` report and
what is used at run time: a value its rule rejects is replaced by the key's default
when the config is built (once, then cached), so a bad setting never breaks a
dispatch and the check and the run time cannot disagree.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

#: Kwarg names whose values are always redacted (searched anywhere in the name,
#: case-insensitively), whatever ``SENSITIVE_KWARGS`` adds. It holds:
#:
#: * Django's ``SafeExceptionReporterFilter.hidden_settings``:
#:   ``API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE``;
#: * what else sentry-sdk's default denylist covers: ``PWD`` (``mysql_pwd``),
#:   ``CREDENTIAL``, ``SESSION``, ``COOKIE`` (``set_cookie``), ``CSRF``, ``XSRF``,
#:   ``FORWARDED_FOR`` (client IP addresses); its other names (``password``,
#:   ``passwd``, ``api_key``, ``private_key``, ``authorization``...) are matched by
#:   Django's part;
#: * payment cards and identity numbers: ``CARD`` (``credit_card``,
#:   ``card_number``), ``CVV``, ``CVC``, ``SSN``.
#:
#: A name is redacted when any part matches, so a few harmless names are too
#: (``author`` through ``AUTH``, ``monkey`` through ``KEY``): erring that way is the point.
SENSITIVE_NAME_PATTERN = (
    "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE"
    "|PWD|CREDENTIAL|SESSION|COOKIE|CSRF|XSRF|FORWARDED_FOR"
    "|CARD|CVV|CVC|SSN"
)

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
    # Estimated bytes a trace may hold (its records and their kept kwargs); dispatches
    # past it are only counted in ``trace.dropped``.
    "MAX_TRACE_BYTES": 64 * 1024 * 1024,
    # Extra regular expression for kwarg names whose values are redacted, on top of
    # SENSITIVE_NAME_PATTERN (case-insensitive).
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
    # Spans for every dispatch. Off (production defaults): none for a dispatch of one of
    # Django's signals that reaches only Django's own receivers (request_started's
    # close_old_connections...), and none for request_started / request_finished while
    # no span is current (they fire outside the request span: each would be a root trace).
    "OTEL_ALL_DISPATCHES": False,
}

REDACTED = "********************"


# ------------------------------------------------------------------ validation


def _shown(value: Any) -> str:
    """A setting's value for a check message: its repr, kept short."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile repr in settings must not break the checks
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:79] + "…"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be True or False, not {_shown(value)}"


def _bool_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    return f"must be True, False or None, not {_shown(value)}"


def _positive_int(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return None
    return f"must be a positive integer, not {_shown(value)}"


def _positive_number(value: Any) -> str | None:
    if _is_number(value) and value > 0:
        return None
    return f"must be a positive number of milliseconds, not {_shown(value)}"


def _loop_policy(value: Any) -> str | None:
    if isinstance(value, str) and value in ("raise", "warn"):
        return None
    return f"must be 'raise' or 'warn', not {_shown(value)}"


def _paths(value: Any) -> str | None:
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return None
    return f"must be a list of dotted import paths of signals, not {_shown(value)}"


def _paths_or_none(value: Any) -> str | None:
    return None if value is None else _paths(value)


def _sample_rates(value: Any) -> str | None:
    if isinstance(value, dict) and all(
        isinstance(path, str) and _is_number(rate) and 0 <= rate <= 1 for path, rate in value.items()
    ):
        return None
    return f"must map dotted paths of signals to numbers from 0 to 1, not {_shown(value)}"


def _sensitive_kwargs(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return f"must be a regular expression (a string) or None, not {_shown(value)}"
    # Exceptions: re.error, or a warning of re's turned into an error by -W error.
    try:
        _compile_strictly(value)  # alone first, so positions in the message are its own
    except Exception as exc:  # noqa: BLE001
        return f"is not a valid regular expression: {exc}"
    try:
        sensitive_names(value)
    except Exception as exc:  # noqa: BLE001
        return f"cannot be combined with the built-in names as (?:<built-in>)|(?:<yours>): {exc}"
    return None


@dataclass(frozen=True)
class Rule:
    """How one key of ``SIGNALTRACE`` is validated.

    ``validate(value)`` returns None for a usable value, else what is wrong with it
    ("must be a positive integer, not 'lots'"). ``check_id`` and ``hint`` are what
    the system check reports it with.
    """

    validate: Callable[[Any], str | None]
    check_id: str
    hint: str


_PATHS_HINT = 'For example ["django.db.models.signals.post_save"].'

#: One rule per key of :data:`DEFAULTS`: the only place values are validated.
RULES: dict[str, Rule] = {
    "ENABLED": Rule(_bool_or_none, "signaltrace.E003", "None follows DEBUG."),
    "IGNORE_SIGNALS": Rule(_paths, "signaltrace.E004", _PATHS_HINT),
    "MAX_DISPATCHES": Rule(_positive_int, "signaltrace.E006", "Dispatches kept per trace."),
    "MAX_TRACE_BYTES": Rule(_positive_int, "signaltrace.E006", "Estimated bytes a trace may hold."),
    "SENSITIVE_KWARGS": Rule(
        _sensitive_kwargs,
        "signaltrace.E005",
        'For example "iban|phone" (matched case-insensitively, in addition to the built-in names).',
    ),
    "MAX_REPR_LENGTH": Rule(_positive_int, "signaltrace.E006", "Longest rendered value, in characters."),
    "REPR_OBJECTS": Rule(_bool, "signaltrace.E007", "True renders arbitrary objects with repr()."),
    "LOOP_POLICY": Rule(
        _loop_policy,
        "signaltrace.E008",
        "'raise' stops a loop with SignalLoopError; 'warn' logs it once and lets it run.",
    ),
    "LOOP_MAX_REENTRIES": Rule(
        _positive_int, "signaltrace.E006", "How many times one instance may be in dispatch at once."
    ),
    "PANEL_SLOW_RECEIVER_MS": Rule(
        _positive_number, "signaltrace.E010", "The panel highlights receivers at least this slow."
    ),
    "OTEL_SIGNALS_ALLOW": Rule(_paths_or_none, "signaltrace.E020", _PATHS_HINT + " None: every signal."),
    "OTEL_SIGNALS_DENY": Rule(_paths, "signaltrace.E020", _PATHS_HINT),
    "OTEL_SAMPLE_RATES": Rule(
        _sample_rates, "signaltrace.E022", 'For example {"django.db.models.signals.post_save": 0.1}.'
    ),
    "OTEL_RECORD_KWARGS": Rule(_bool, "signaltrace.E023", "True adds the redacted kwargs to spans."),
    "OTEL_ALL_DISPATCHES": Rule(
        _bool,
        "signaltrace.E024",
        "True gives spans to every dispatch, also those reaching only Django's own receivers "
        "and request signals outside any span.",
    ),
}


def invalid(key: str, value: Any) -> str | None:
    """What is wrong with ``value`` for ``key`` (None: usable); never raises.

    Unknown keys are not judged here (check ``signaltrace.E002`` reports them).
    """
    rule = RULES.get(key)
    if rule is None:
        return None
    try:
        return rule.validate(value)
    except Exception as exc:  # noqa: BLE001 - a value whose comparisons raise is not usable
        return f"cannot be validated ({type(exc).__name__}), not {_shown(value)}"


def validated(user: dict[str, Any]) -> dict[str, Any]:
    """:data:`DEFAULTS` with each usable value of ``user`` in place of its default.

    A value :func:`invalid` rejects keeps the default; unknown keys are left out.
    """
    config = dict(DEFAULTS)
    for key in DEFAULTS:
        if key in user and invalid(key, user[key]) is None:
            config[key] = user[key]
    return config


_GLOBAL_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")


def sensitive_names(extra: str | None) -> re.Pattern[str]:
    """The compiled pattern of sensitive kwarg names: the built-in names, plus ``extra``.

    ``extra`` is its own alternative, ``(?:built-in)|(?:extra)``, so its ``|`` and
    groups stay its own. Inline global flags at its start (``(?i)card``) would be
    global flags in the middle of the combined pattern, which ``re`` rejects: they
    become scoped flags of its group (``(?i:card)``). Raises ``re.error`` for an
    ``extra`` that still does not compile (check ``signaltrace.E005``).
    """
    pattern = f"(?:{SENSITIVE_NAME_PATTERN})"
    if extra:
        flags = ""
        body = extra
        match = _GLOBAL_FLAGS.match(body)
        while match is not None:
            for flag in match.group(1):
                flags += "" if flag in flags else flag
            body = body[match.end() :]
            match = _GLOBAL_FLAGS.match(body)
        # In verbose mode a trailing comment would swallow the closing parenthesis.
        end = "\n)" if "x" in flags else ")"
        pattern = f"{pattern}|(?{flags}:{body}{end}"
    return _compile_strictly(pattern)


def _compile_strictly(pattern: str) -> re.Pattern[str]:
    """``re.compile(pattern, re.IGNORECASE)``, where what Python 3.10 only deprecates
    (global flags not at the start) is an error, as it is from 3.11 on."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        re.purge()  # a cached compile would skip the parse that warns
        return re.compile(pattern, re.IGNORECASE)


def user_settings() -> dict[str, Any]:
    """The raw ``SIGNALTRACE`` dict, or ``{}`` when settings are not configured."""
    from django.conf import settings

    if not settings.configured:
        return {}
    value = getattr(settings, "SIGNALTRACE", {})
    return value if isinstance(value, dict) else {}


def get_config() -> dict[str, Any]:
    """Defaults merged with the usable values of the user's ``SIGNALTRACE`` dict.

    Validated once per build (:func:`validated`): every value in it is usable.

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
    return validated(user_settings())


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

    enabled = get_config()["ENABLED"]  # True, False or None (validated)
    if enabled is None:
        return bool(settings.configured and settings.DEBUG)
    return enabled is True


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
    try:
        return sensitive_names(get_config()["SENSITIVE_KWARGS"])  # validated: compiles
    except Exception:  # noqa: BLE001 - never let a dispatch fail on the pattern (check E005)
        return sensitive_names(None)


def setting(name: str) -> Any:
    """One value of the merged config; the default if the user's value is unusable."""
    return get_config()[name]


def repr_limit() -> int:
    """``MAX_REPR_LENGTH``: how long a rendered value may be, wherever it is rendered."""
    limit: int = setting("MAX_REPR_LENGTH")
    return limit


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
    return signals_at(setting("IGNORE_SIGNALS"))  # unimportable entries skipped: check E004


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
