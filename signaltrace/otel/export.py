"""Export spans over OTLP when the standard environment variables ask for it.

For a demo or a small project that does not run under ``opentelemetry-instrument``:
call :func:`setup_otlp_from_environment` once Django's settings are loaded (an
``AppConfig.ready()``, or ``manage.py`` after ``django.setup()``). With
``OTEL_EXPORTER_OTLP_ENDPOINT`` unset it does nothing, so it can stay in the code.
"""

from __future__ import annotations

import logging
import os

from django.core.exceptions import ImproperlyConfigured

from signaltrace.otel.disabled import VARIABLE, is_disabled

logger = logging.getLogger("signaltrace")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
MISSING_PACKAGES = "opentelemetry-sdk opentelemetry-exporter-otlp-proto-http"


def setup_otlp_from_environment(service_name: str = "signaltrace-demo") -> bool:
    """Send spans to the OTLP/HTTP endpoint in ``OTEL_EXPORTER_OTLP_ENDPOINT``.

    Sets a global tracer provider (service name from ``OTEL_SERVICE_NAME``, else
    ``service_name``) with a batch processor and the OTLP/HTTP protobuf exporter
    (port 4318 of Jaeger or any collector), then instruments Django requests when
    ``opentelemetry-instrumentation-django`` is installed, and signals, each
    unless ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` names it (``django``,
    ``signaltrace``) or is ``*``. Returns whether it set up the export;
    idempotent. Needs ``opentelemetry-sdk`` and
    ``opentelemetry-exporter-otlp-proto-http``: without them it raises
    ``ImproperlyConfigured`` naming them.
    """
    if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        return False
    from opentelemetry import trace

    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as missing:
        raise ImproperlyConfigured(
            f"{ENDPOINT_VARIABLES[1]} is set, but exporting spans over OTLP needs "
            f"{MISSING_PACKAGES}: pip install {MISSING_PACKAGES} ({missing})"
        ) from missing

    from signaltrace.otel import SignalInstrumentor

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        name = os.environ.get("OTEL_SERVICE_NAME") or service_name
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    if is_disabled("django"):
        logger.info("%s names django: no request spans from signaltrace's set-up", VARIABLE)
    else:
        _instrument_django()
    if is_disabled("signaltrace"):
        logger.info("%s names signaltrace: no signal spans", VARIABLE)
    elif not SignalInstrumentor().is_instrumented_by_opentelemetry:
        SignalInstrumentor().instrument()
    return True


def _instrument_django() -> None:
    """Request spans, when ``opentelemetry-instrumentation-django`` is installed (idempotent)."""
    try:
        from opentelemetry.instrumentation.django import DjangoInstrumentor
    except ImportError:
        logger.info("opentelemetry-instrumentation-django is not installed: no request spans")
    else:
        if not DjangoInstrumentor().is_instrumented_by_opentelemetry:
            DjangoInstrumentor().instrument()
