"""Fixtures shared by the test modules; pytester runs real pytest sessions for the plugin tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.dispatch import Signal

pytest_plugins = ["pytester"]


@pytest.fixture
def connect() -> Iterator[Callable[..., Any]]:
    """``connect(signal, receiver, **kwargs)``: connected strongly for one test, disconnected after."""
    connected = []

    def connect(signal: Signal, receiver: Any, **kwargs: Any) -> Any:
        signal.connect(receiver, weak=False, **kwargs)
        connected.append((signal, receiver, kwargs.get("sender"), kwargs.get("dispatch_uid")))
        return receiver

    yield connect
    for signal, receiver, sender, uid in connected:
        signal.disconnect(receiver, sender=sender, dispatch_uid=uid)


@pytest.fixture
def fresh_internal_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """signaltrace logs each internal error's full report once per process and place:
    start this test's process afresh, so its report is logged whatever ran before."""
    from signaltrace import safety

    monkeypatch.setattr(safety, "_reported", set())


@pytest.fixture(autouse=True)
def _forget_connection_problems() -> Iterator[None]:
    """Connection problems are kept per process for check W101: one test's must not
    show up in another test's check run."""
    from signaltrace.core import connections

    yield
    connections.clear_problems()


@pytest.fixture
def spans() -> Iterator[Any]:
    """Signals instrumented for one test with an in-memory exporter (``tests.spans.Spans``)."""
    from signaltrace.otel import SignalInstrumentor
    from tests.spans import Spans

    spans = Spans()
    SignalInstrumentor().instrument(tracer_provider=spans.provider)
    yield spans
    SignalInstrumentor().uninstrument()
