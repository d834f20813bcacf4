"""Which dispatches become spans: the ``OTEL_*`` keys of the ``SIGNALTRACE`` setting.

The instrumentor may be created before Django's settings are configured
(``opentelemetry-instrument`` loads it first), so nothing is read at import or at
``instrument()``: the rules are built on the first dispatch from the merged config
of :mod:`signaltrace.conf`, and rebuilt whenever that config object changes (it is
cached, and replaced on ``setting_changed``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signaltrace import conf
from signaltrace.conf import get_config, signals_at

if TYPE_CHECKING:
    from django.dispatch import Signal


def _rates(value: Any) -> dict[Signal, float]:
    if not isinstance(value, dict):
        return {}
    rates = {}
    for path, rate in value.items():
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            continue
        for signal in signals_at([path]):
            rates[signal] = float(rate)
    return rates


# Tolerates the rounding of repeated float additions (ten times 0.1 is not 1.0).
_ALMOST_ONE = 1.0 - 1e-9


class Selection:
    """The rules of one config: allow list, deny list, sampling rates, kwargs.

    Sampling is deterministic: a signal with rate ``r`` gets a span for exactly
    ``r`` of its dispatches, spread evenly (an accumulator per signal), so a hot
    signal sampled at 0.01 yields one dispatch span in a hundred. Concurrent
    threads may race on an accumulator; that only shifts which dispatch is kept.
    """

    __slots__ = ("_credit", "allowed", "config", "denied", "filters", "rates", "record_kwargs")

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        allow = config.get("OTEL_SIGNALS_ALLOW")
        self.allowed: frozenset[Signal] | None = None if allow is None else signals_at(allow)
        self.denied = signals_at(config.get("OTEL_SIGNALS_DENY"))
        self.rates = _rates(config.get("OTEL_SAMPLE_RATES"))
        self.record_kwargs = config.get("OTEL_RECORD_KWARGS") is True
        #: Whether any rule applies at all: without one, every dispatch gets spans
        #: and :meth:`wants` need not be asked.
        self.filters = self.allowed is not None or bool(self.denied) or bool(self.rates)
        self._credit: dict[Signal, float] = {}

    def wants(self, signal: Signal) -> bool:
        """Whether this dispatch of ``signal`` gets spans (advances sampling)."""
        if self.allowed is not None and signal not in self.allowed:
            return False
        if signal in self.denied:
            return False
        rate = self.rates.get(signal)
        if rate is None:
            return True
        credit = self._credit.get(signal, 1.0 - rate) + rate
        if credit >= _ALMOST_ONE:
            self._credit[signal] = credit - 1.0
            return True
        self._credit[signal] = credit
        return False


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
