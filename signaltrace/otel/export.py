"""Export spans over OTLP when the standard environment variables ask for it.

For a demo or a small project that does not run under ``opentelemetry-instrument``:
call :func:`setup_otlp_from_environment` once Django's settings are loaded (an
``AppConfig.ready()``, or ``manage.py`` after ``django.setup()``). With
``OTEL_EXPORTER_OTLP_ENDPOINT`` unset it does nothing, so it can stay in the code.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("signaltrace")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def setup_otlp_from_environment(service_name: str = "signaltrace-demo") -> bool:
    """Send spans to the OTLP/HTTP endpoint in ``OTEL_EXPORTER_OTLP_ENDPOINT``.

    Sets a global tracer provider (service name from ``OTEL_SERVICE_NAME``, else
    ``service_name``) with a batch processor and the OTLP/HTTP protobuf exporter
    (port 4318 of Jaeger or any collector), then instruments Django requests when
    ``opentelemetry-instrumentation-django`` is installed, and signals. Returns
    whether it did; idempotent. Needs ``opentelemetry-sdk`` and
    ``opentelemetry-exporter-otlp-proto-http``.
    """
    if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from signaltrace.otel import SignalInstrumentor

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        name = os.environ.get("OTEL_SERVICE_NAME") or service_name
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    try:
        from opentelemetry.instrumentation.django import DjangoInstrumentor
    except ImportError:
        logger.info("opentelemetry-instrumentation-django is not installed: no request spans")
    else:
        if not DjangoInstrumentor().is_instrumented_by_opentelemetry:
            DjangoInstrumentor().instrument()
    if not SignalInstrumentor().is_instrumented_by_opentelemetry:
        SignalInstrumentor().instrument()
    return True
