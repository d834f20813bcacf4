"""System checks for the ``SIGNALTRACE`` setting (ids ``signaltrace.E001``...).

Bad values are reported here, by ``manage.py check`` and at startup, instead of
failing deep inside a dispatch. Each id is listed in docs/settings.md.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.checks import Error, register

from signaltrace.conf import DEFAULTS, user_settings


def _error(message: str, hint: str, number: int) -> Error:
    return Error(message, hint=hint, id=f"signaltrace.E{number:03d}")


def _check_ignore_signals(value: Any) -> list[Error]:
    from django.dispatch import Signal
    from django.utils.module_loading import import_string

    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        return [
            _error(
                "SIGNALTRACE['IGNORE_SIGNALS'] must be a list of dotted import paths.",
                'For example ["django.db.models.signals.pre_init"].',
                4,
            )
        ]
    errors = []
    for path in value:
        try:
            signal = import_string(path)
        except ImportError as exc:
            errors.append(
                _error(
                    f"SIGNALTRACE['IGNORE_SIGNALS'] names {path!r}, which cannot be imported ({exc}).",
                    "Use the dotted path of the module attribute holding the signal.",
                    4,
                )
            )
            continue
        if not isinstance(signal, Signal):
            errors.append(
                _error(
                    f"SIGNALTRACE['IGNORE_SIGNALS'] names {path!r}, which is not a Signal.",
                    "Use the dotted path of a django.dispatch.Signal instance.",
                    4,
                )
            )
    return errors


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
        errors.extend(_check_ignore_signals(config["IGNORE_SIGNALS"]))
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
