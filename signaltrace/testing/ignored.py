"""Count what ``IGNORE_SIGNALS`` keeps out of a test run's traces.

The core drops a dispatch of an ignored signal (``pre_init`` and ``post_init`` by
default) before recording anything, and counts nothing. So that a report can say
what the ignore list hid, :class:`IgnoredCounter` counts those dispatches itself
while a test runs: it shadows ``send`` and ``send_robust`` on each ignored
``Signal`` *instance* (never on the class, which the core patches) with a function
that counts the dispatch by sender, calls the class's method and counts the
receivers in the responses. Async sends are counted without their receivers.

It costs one extra call per dispatch of an ignored signal (about 0.2 µs per model
instance built). Labels are resolved when counted, so a sender collected later
keeps its name. :meth:`IgnoredCounter.uninstall` removes every shadow it set.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from signaltrace.conf import ignored_signals
from signaltrace.core import receiver_info, sender_name, signal_name
from signaltrace.safety import report_internal_error

#: The send methods shadowed; the async ones return their coroutine unchanged.
SYNC_METHODS = ("send", "send_robust")
ASYNC_METHODS = ("asend", "asend_robust")


class _Tally:
    """What one part of a test sent on ignored signals: per signal, senders and receivers."""

    __slots__ = ("receivers", "senders")

    def __init__(self) -> None:
        self.senders: dict[tuple[str, str], int] = {}
        self.receivers: dict[tuple[str, str], int] = {}

    def summary(self) -> dict[str, Any]:
        """``{"signals": [{"signal", "dispatches", "senders": [...], "receivers": [...]}]}``."""
        signals: dict[str, dict[str, Any]] = {}
        for (signal, sender), count in self.senders.items():
            entry = signals.setdefault(
                signal, {"signal": signal, "dispatches": 0, "senders": [], "receivers": []}
            )
            entry["dispatches"] += count
            entry["senders"].append({"sender": sender, "dispatches": count})
        for (signal, receiver), count in self.receivers.items():
            entry = signals.setdefault(
                signal, {"signal": signal, "dispatches": 0, "senders": [], "receivers": []}
            )
            entry["receivers"].append({"receiver": receiver, "calls": count})
        for entry in signals.values():
            entry["senders"].sort(key=lambda item: (-item["dispatches"], item["sender"]))
            entry["receivers"].sort(key=lambda item: (-item["calls"], item["receiver"]))
        return {"signals": sorted(signals.values(), key=lambda entry: entry["signal"])}


class IgnoredCounter:
    """Counts dispatches of ignored signals into the tally :meth:`start` opened.

    One per test run; the front ends call :meth:`install` when the run starts,
    :meth:`start` and :meth:`stop` around each part of a test, :meth:`uninstall`
    at the end. Dispatches from any thread count towards the open tally.
    """

    def __init__(self) -> None:
        self._shadowed: list[tuple[weakref.ref[Any], str]] = []
        self._tally: _Tally | None = None
        self._installed = False
        self.signal_names: list[str] = []

    def install(self) -> None:
        """Shadow the send methods of every signal ``IGNORE_SIGNALS`` names (idempotent)."""
        if self._installed:
            return
        try:
            for signal in ignored_signals():
                name = signal_name(signal)
                for method in (*SYNC_METHODS, *ASYNC_METHODS):
                    if method in vars(signal) or not hasattr(type(signal), method):
                        continue  # shadowed already by someone else: leave it alone
                    setattr(signal, method, self._shadow(signal, name, method))
                    self._shadowed.append((weakref.ref(signal), method))
                self.signal_names.append(name)
            self._installed = True
        except Exception:  # noqa: BLE001 - counting is a courtesy, never a failure
            report_internal_error("IgnoredCounter.install")

    def uninstall(self) -> None:
        """Remove every shadow :meth:`install` set."""
        for ref, method in self._shadowed:
            signal = ref()
            if signal is not None:
                vars(signal).pop(method, None)
        self._shadowed.clear()
        self.signal_names.clear()
        self._installed = False

    def start(self) -> None:
        """Open a new tally (one part of one test)."""
        self._tally = _Tally()

    def stop(self) -> dict[str, Any]:
        """Close the tally and return its summary (empty when nothing was sent)."""
        tally, self._tally = self._tally, None
        return tally.summary() if tally is not None else {"signals": []}

    def hidden_receivers(self) -> dict[str, list[dict[str, Any]]]:
        """The receivers connected now to each ignored signal: what the traces never showed."""
        hidden: dict[str, list[dict[str, Any]]] = {}
        for signal in ignored_signals():
            receivers = []
            for entry in list(signal.receivers):
                target = entry[1]
                if isinstance(target, weakref.ReferenceType):
                    target = target()
                if target is None:
                    continue
                name, file, line = receiver_info(target)
                receivers.append({"receiver": name, "location": f"{file}:{line}" if file else ""})
            if receivers:
                hidden[signal_name(signal)] = receivers
        return hidden

    def _shadow(self, signal: Any, name: str, method: str) -> Callable[..., Any]:
        signal_ref = weakref.ref(signal)  # the shadow lives on the signal: no cycle through it
        counts_receivers = method in SYNC_METHODS

        def counted(sender: Any, **named: Any) -> Any:
            owner = signal_ref()
            tally = self._tally
            # The class's method as it is now: the hooks (or another tool) may patch it later.
            responses = getattr(type(owner), method)(owner, sender, **named)
            if tally is not None:
                try:
                    key = (name, sender_name(sender))
                    tally.senders[key] = tally.senders.get(key, 0) + 1
                    if counts_receivers:
                        for receiver, _response in responses:
                            key = (name, receiver_info(receiver)[0])
                            tally.receivers[key] = tally.receivers.get(key, 0) + 1
                except Exception:  # noqa: BLE001
                    report_internal_error("IgnoredCounter")
            return responses

        counted.__name__ = method
        counted.__qualname__ = f"{type(signal).__qualname__}.{method}"
        counted.__doc__ = getattr(type(signal), method).__doc__
        return counted
