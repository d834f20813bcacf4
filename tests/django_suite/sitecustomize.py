"""Loaded by Python at startup when this folder is on PYTHONPATH.

Installs signaltrace before Django's own test suite starts, so every dispatch of
Django's tests goes through the hooks, in one of two modes:

* ``SIGNALTRACE_SUITE_RECORD=1``: records for the whole process. The trace's cap
  is raised so recording stays on for the whole run; at exit the number of
  recorded dispatches is printed, proving the hooks were really in the path.
* ``SIGNALTRACE_SUITE_OTEL=1``: nothing records, the OpenTelemetry instrumentor
  makes spans (the observers' path); at exit the number of spans is printed.
  ``OTEL_ALL_DISPATCHES`` is on: in the transaction suites only Django's own
  receivers listen (``post_migrate``'s), and the production defaults would give
  them no spans at all.
"""

import atexit
import os

if os.environ.get("SIGNALTRACE_SUITE_RECORD") == "1":
    import signaltrace
    from signaltrace import conf

    conf.DEFAULTS["MAX_DISPATCHES"] = 10_000_000
    signaltrace.install()
    _recording = signaltrace.record()
    _trace = _recording.__enter__()

    def _report() -> None:
        print(
            f"signaltrace: installed={signaltrace.is_installed()} "
            f"recorded={len(_trace)} dispatches in the main context"
        )

    atexit.register(_report)

if os.environ.get("SIGNALTRACE_SUITE_OTEL") == "1":
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    import signaltrace
    from signaltrace import conf
    from signaltrace.otel import SignalInstrumentor

    conf.DEFAULTS["OTEL_ALL_DISPATCHES"] = True

    class _CountingExporter(SpanExporter):
        def __init__(self) -> None:
            self.count = 0

        def export(self, spans):  # type: ignore[no-untyped-def]
            self.count += len(spans)
            return SpanExportResult.SUCCESS

    _exporter = _CountingExporter()
    _provider = TracerProvider()
    _provider.add_span_processor(SimpleSpanProcessor(_exporter))
    SignalInstrumentor().instrument(tracer_provider=_provider)

    def _report_spans() -> None:
        installed = signaltrace.is_installed()
        print(f"signaltrace: instrumented={installed} spans={_exporter.count}")

    atexit.register(_report_spans)
