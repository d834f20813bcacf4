"""``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``: OpenTelemetry's switch for automatic instrumentation.

A comma-separated list of instrumentation names (the entry point names:
``signaltrace``, ``django``), or ``*`` for all. ``opentelemetry-instrument`` skips
the instrumentations it names; :func:`signaltrace.otel.setup_otlp_from_environment`,
signaltrace's other way of instrumenting on its own, skips them too. As with
OpenTelemetry's contrib instrumentations, an explicit ``instrument()`` call in code
is not affected: the code asked for it.
"""

from __future__ import annotations

import os

VARIABLE = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
_ALL = "*"


def disabled_instrumentations() -> frozenset[str]:
    """The names in the variable now (spaces around them ignored, as OpenTelemetry does)."""
    value = os.environ.get(VARIABLE, "")
    return frozenset(name.strip() for name in value.split(",") if name.strip())


def is_disabled(name: str) -> bool:
    """Whether automatic instrumentation must leave the instrumentation ``name`` out."""
    names = disabled_instrumentations()
    return name in names or _ALL in names
