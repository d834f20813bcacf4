"""System checks for the ``SIGNALTRACE`` setting (ids ``signaltrace.E001``...).

Bad values are reported here, by ``manage.py check`` and at startup, instead of
failing deep inside a dispatch. Each id is listed in docs/settings.md.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.checks import CheckMessage, Error, register
from django.core.checks import Warning as CheckWarning

from signaltrace.conf import DEFAULTS, user_settings


def _error(message: str, hint: str, number: int) -> Error:
    return Error(message, hint=hint, id=f"signaltrace.E{number:03d}")


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Validate every key of ``SIGNALTRACE``."""
    from django.conf import settings

    raw = getattr(settings, "SIGNALTRACE", {})
    if not isinstance(raw, dict):
        return [_error("SIGNALTRACE must be a dict.", "For example SIGNALTRACE = {'ENABLED': True}.", 1)]
    config = user_settings()
    errors: list[Error] = []
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        errors.append(
            _error(
                f"SIGNALTRACE has unknown keys: {', '.join(map(str, unknown))}.",
                f"Known keys: {', '.join(DEFAULTS)}.",
                2,
            )
        )
    if "ENABLED" in config and config["ENABLED"] not in (None, True, False):
        errors.append(_error("SIGNALTRACE['ENABLED'] must be True, False or None.", "None follows DEBUG.", 3))
    if "IGNORE_SIGNALS" in config:
        errors.extend(_check_signal_paths("IGNORE_SIGNALS", config["IGNORE_SIGNALS"], 4, 4))
    for key in ("MAX_DISPATCHES", "MAX_REPR_LENGTH", "LOOP_MAX_REENTRIES"):
        if key in config and not _is_positive_int(config[key]):
            errors.append(
                _error(
                    f"SIGNALTRACE[{key!r}] must be a positive integer, not {config[key]!r}.",
                    f"The default is {DEFAULTS[key]!r}.",
                    6,
                )
            )
    if config.get("SENSITIVE_KWARGS") is not None:
        pattern = config["SENSITIVE_KWARGS"]
        try:
            if not isinstance(pattern, str):
                raise TypeError("not a string")
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            errors.append(
                _error(
                    f"SIGNALTRACE['SENSITIVE_KWARGS'] is not a valid regular expression: {exc}.",
                    'For example "card|iban" (matched case-insensitively, in addition to Django\'s pattern).',
                    5,
                )
            )
    if "REPR_OBJECTS" in config and not isinstance(config["REPR_OBJECTS"], bool):
        errors.append(
            _error("SIGNALTRACE['REPR_OBJECTS'] must be True or False.", "The default is False.", 7)
        )
    if "LOOP_POLICY" in config and config["LOOP_POLICY"] not in ("raise", "warn"):
        errors.append(
            _error(
                f"SIGNALTRACE['LOOP_POLICY'] must be 'raise' or 'warn', not {config['LOOP_POLICY']!r}.",
                "'raise' stops a loop with SignalLoopError; 'warn' logs it once and lets it run.",
                8,
            )
        )
    if "PANEL_SLOW_RECEIVER_MS" in config and not _is_positive_number(config["PANEL_SLOW_RECEIVER_MS"]):
        errors.append(
            _error(
                "SIGNALTRACE['PANEL_SLOW_RECEIVER_MS'] must be a positive number of milliseconds, "
                f"not {config['PANEL_SLOW_RECEIVER_MS']!r}.",
                f"The default is {DEFAULTS['PANEL_SLOW_RECEIVER_MS']!r}.",
                10,
            )
        )
    return errors


def _check_signal_paths(key: str, value: Any, shape_error: int, path_error: int) -> list[Error]:
    """A list (or dict keyed by) dotted paths of signals; each importable and a Signal.

    ``shape_error`` and ``path_error`` are the check numbers to report with.
    """
    from django.dispatch import Signal
    from django.utils.module_loading import import_string

    paths = list(value) if isinstance(value, dict) else value
    if not isinstance(paths, (list, tuple)) or not all(isinstance(item, str) for item in paths):
        return [
            _error(
                f"SIGNALTRACE[{key!r}] must be a list of dotted import paths of signals.",
                'For example ["django.db.models.signals.post_save"].',
                shape_error,
            )
        ]
    errors = []
    for path in paths:
        try:
            signal = import_string(path)
        except ImportError as exc:
            errors.append(
                _error(
                    f"SIGNALTRACE[{key!r}] names {path!r}, which cannot be imported ({exc}).",
                    "Use the dotted path of the module attribute holding the signal.",
                    path_error,
                )
            )
            continue
        if not isinstance(signal, Signal):
            errors.append(
                _error(
                    f"SIGNALTRACE[{key!r}] names {path!r}, which is not a Signal.",
                    "Use the dotted path of a django.dispatch.Signal instance.",
                    path_error,
                )
            )
    return errors


@register()
def check_otel_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate the ``OTEL_*`` keys used by :mod:`signaltrace.otel` (E020-E023, W020)."""
    config = user_settings()
    errors: list[CheckMessage] = []
    if config.get("OTEL_SIGNALS_ALLOW") is not None:
        errors.extend(_check_signal_paths("OTEL_SIGNALS_ALLOW", config["OTEL_SIGNALS_ALLOW"], 20, 21))
    if "OTEL_SIGNALS_DENY" in config:
        errors.extend(_check_signal_paths("OTEL_SIGNALS_DENY", config["OTEL_SIGNALS_DENY"], 20, 21))
    if "OTEL_SAMPLE_RATES" in config:
        rates = config["OTEL_SAMPLE_RATES"]
        if not isinstance(rates, dict) or not all(
            isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0 <= rate <= 1
            for rate in rates.values()
        ):
            errors.append(
                _error(
                    "SIGNALTRACE['OTEL_SAMPLE_RATES'] must map dotted paths of signals to numbers "
                    "from 0 to 1.",
                    'For example {"django.db.models.signals.post_save": 0.1}.',
                    22,
                )
            )
        else:
            errors.extend(_check_signal_paths("OTEL_SAMPLE_RATES", rates, 20, 21))
    if "OTEL_RECORD_KWARGS" in config and not isinstance(config["OTEL_RECORD_KWARGS"], bool):
        errors.append(
            _error("SIGNALTRACE['OTEL_RECORD_KWARGS'] must be True or False.", "The default is False.", 23)
        )
    allowed = config.get("OTEL_SIGNALS_ALLOW")
    ignored = config.get("IGNORE_SIGNALS", DEFAULTS["IGNORE_SIGNALS"])
    if isinstance(allowed, (list, tuple)) and isinstance(ignored, (list, tuple)):
        never = [path for path in allowed if path in ignored]
        if never:
            errors.append(
                CheckWarning(
                    f"SIGNALTRACE['OTEL_SIGNALS_ALLOW'] names signals that IGNORE_SIGNALS excludes, "
                    f"which never get spans: {', '.join(map(str, never))}.",
                    hint="Remove them from IGNORE_SIGNALS to trace them (they may be hot).",
                    id="signaltrace.W020",
                )
            )
    return errors
