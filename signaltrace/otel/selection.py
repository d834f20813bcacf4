"""Which dispatches become spans: the ``OTEL_*`` keys of the ``SIGNALTRACE`` setting.

The instrumentor may be created before Django's settings are configured
(``opentelemetry-instrument`` loads it first), so nothing is read at import or at
``instrument()``: the rules are built on the first dispatch from the merged config
of :mod:`signaltrace.conf`, and rebuilt whenever that config object changes (it is
cached, and replaced on ``setting_changed``).
"""

from __future__ import annotations

import random
import sys
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from signaltrace import conf
from signaltrace.conf import get_config, signals_at
from signaltrace.core import discover_signals, signal_name

if TYPE_CHECKING:
    from collections.abc import Iterable

    from django.dispatch import Signal
    from opentelemetry.context import Context


def signals_by_short_name() -> dict[str, Signal]:
    """The signals a span names without a dot (``post_save``: Django's), by that name.

    Scans the imported modules (:func:`signaltrace.core.discover_signals`): made when
    rules are built, never per dispatch.
    """
    found: dict[str, Signal] = {}
    for signal in discover_signals():
        name = signal_name(signal)
        if "." not in name and " " not in name:
            found.setdefault(name, signal)
    return found


def _resolve(entries: Iterable[Any], short: dict[str, Signal]) -> tuple[set[Signal], set[str]]:
    """The signals ``entries`` name (dotted paths, short names, Signal objects), and the
    short names ``short`` lacks (no imported module holds them yet). Dotted paths that
    do not import are skipped: check ``signaltrace.E021`` reports them."""
    found: set[Signal] = set()
    pending: set[str] = set()
    for entry in entries:
        if isinstance(entry, str) and "." not in entry:
            signal = short.get(entry)
            if signal is None:
                pending.add(entry)
            else:
                found.add(signal)
        else:
            found.update(signals_at([entry]))
    return found, pending


_MASK_64 = (1 << 64) - 1


def _mix(value: int) -> int:
    """splitmix64's finalizer: 64 well-mixed bits from 64 bits."""
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK_64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK_64
    return value ^ (value >> 31)


def _salt(signal: Signal) -> int:
    """A per-signal 64-bit value, the same in every process (from the signal's name)."""
    return int.from_bytes(blake2b(signal_name(signal).encode(), digest_size=8).digest(), "big")


class Selection:
    """The rules of one config: allow list, deny list, sampling rates, kwargs.

    Signals are named as spans show them (``post_save``, for Django's) or by dotted
    path (``django.db.models.signals.post_save``, ``shop.signals.paid``).

    Sampling is decided per trace, as OpenTelemetry's ``TraceIdRatioBased`` does: a
    dispatch of a signal with rate ``r`` gets spans when a 64-bit hash of the trace
    id of the span it would nest under, mixed with the signal, is below
    ``r * 2**64``. So every dispatch of that signal in one trace is kept or dropped
    together (every call site gets its share of the traces, whatever the order of
    the sends), different signals are decided independently, and the same trace is
    decided the same way in every process. Outside any trace, each dispatch is
    kept with probability ``r``. A rate of 0 keeps none, 1 keeps all.
    """

    __slots__ = (
        "_modules_seen",
        "_pending",
        "_sampling",
        "all_dispatches",
        "allowed",
        "config",
        "denied",
        "filters",
        "rates",
        "record_kwargs",
    )

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.record_kwargs = config.get("OTEL_RECORD_KWARGS") is True
        #: ``OTEL_ALL_DISPATCHES``: the production defaults are off (see :mod:`signaltrace.otel.spans`).
        self.all_dispatches = config.get("OTEL_ALL_DISPATCHES") is True
        self._resolve_names()
        #: Whether any rule applies at all: without one, every dispatch gets spans
        #: and :meth:`wants` need not be asked.
        self.filters = (
            config.get("OTEL_SIGNALS_ALLOW") is not None
            or bool(config.get("OTEL_SIGNALS_DENY"))
            or bool(config.get("OTEL_SAMPLE_RATES"))
        )

    def _resolve_names(self) -> None:
        """Build the rules' signal sets from the config (again when short names were missing)."""
        config = self.config
        self._modules_seen = len(sys.modules)
        allow = config.get("OTEL_SIGNALS_ALLOW")
        allow = None if allow is None else list(allow) if isinstance(allow, (list, tuple)) else []
        deny = config.get("OTEL_SIGNALS_DENY")
        deny = list(deny) if isinstance(deny, (list, tuple)) else []
        value = config.get("OTEL_SAMPLE_RATES")
        usable_rates = {
            path: float(rate)
            for path, rate in (value.items() if isinstance(value, dict) else ())
            if not isinstance(rate, bool) and isinstance(rate, (int, float)) and 0 <= rate <= 1
        }
        named = [*(allow or ()), *deny, *usable_rates]
        needs_short = any(isinstance(entry, str) and "." not in entry for entry in named)
        short = signals_by_short_name() if needs_short else {}  # one scan, only if used
        pending: set[str] = set()
        allowed = None
        if allow is not None:
            found, missing = _resolve(allow, short)
            allowed, pending = frozenset(found), pending | missing
        denied, missing = _resolve(deny, short)
        pending |= missing
        rates: dict[Signal, float] = {}
        for path, rate in usable_rates.items():
            found, missing = _resolve([path], short)
            pending |= missing
            rates.update(dict.fromkeys(found, rate))
        # Each replaced whole: a thread deciding meanwhile sees the old rule or the new.
        self.allowed: frozenset[Signal] | None = allowed
        self.denied = frozenset(denied)
        self.rates = rates
        #: signal -> (rate, keep below this hash: rate * 2**64, the signal's salt).
        self._sampling: dict[Signal, tuple[float, int, int]] = {
            signal: (rate, int(rate * 2.0**64), _salt(signal)) for signal, rate in rates.items()
        }
        #: Short names no imported module held: looked up again when modules are imported.
        self._pending = frozenset(pending)

    def wants(self, signal: Signal, context: Context | None = None) -> bool:
        """Whether this dispatch of ``signal`` gets spans.

        ``context``: the OpenTelemetry context its span would start in, whose trace
        id decides sampling (None: the current one).
        """
        if self._pending and len(sys.modules) != self._modules_seen:
            self._resolve_names()
        if self.allowed is not None and signal not in self.allowed:
            return False
        if signal in self.denied:
            return False
        sampling = self._sampling.get(signal)
        if sampling is None:
            return True
        rate, bound, salt = sampling
        if bound <= 0:
            return False
        if bound >= 1 << 64:
            return True
        trace_id = trace.get_current_span(context).get_span_context().trace_id
        if not trace_id:  # no valid trace: a coin per dispatch
            return random.random() < rate
        return _mix(((trace_id ^ (trace_id >> 64)) ^ salt) & _MASK_64) < bound


_current: Selection | None = None
# The conf generation _current was checked against, or -1 while settings are not
# configured (then the defaults are in force and the check is made every time).
_checked_generation = -1


def current_selection() -> Selection:
    """The rules for the settings in force now (rebuilt only when they change).

    Called once per dispatch: when the config has not been reset since the last
    call, this is two comparisons.
    """
    global _current, _checked_generation
    selection = _current
    if selection is not None and _checked_generation == conf.generation:
        return selection
    generation = conf.generation
    config = get_config()
    if selection is None or selection.config is not config:
        selection = _current = Selection(config)
    _checked_generation = generation if conf._settings_configured() else -1
    return selection
