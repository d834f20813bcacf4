"""The spans on the wire: the real OTLP/HTTP exporter to a receiver on 127.0.0.1.

The receiver is a plain ``http.server`` that decodes each request body as an OTLP
``ExportTraceServiceRequest`` (protobuf), the way a collector would.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db.models.signals import post_save
from django.dispatch import Signal
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from signaltrace.otel import SignalInstrumentor
from tests.testapp.models import Item

wire_signal = Signal()


class Collector(ThreadingHTTPServer):
    """Keeps every decoded export request it was sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CollectorHandler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"

    def spans(self) -> list[Span]:
        return [
            span
            for request in self.requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]


class CollectorHandler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append(request)
        self.server.paths.append(self.path)
        self.server.content_types.append(self.headers.get("Content-Type", ""))
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows failures, not request lines."""


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def on_saved(sender: Any, **kwargs: Any) -> None:
    wire_signal.send(sender=sender)


def on_wire(sender: Any, **kwargs: Any) -> None:
    raise ValueError("wire receiver failed")


@pytest.mark.django_db
def test_spans_arrive_over_otlp_http(collector: Collector) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "signaltrace-wire-test"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=collector.endpoint)))
    post_save.connect(on_saved, sender=Item)
    wire_signal.connect(on_wire)
    SignalInstrumentor().instrument(tracer_provider=provider)
    try:
        with pytest.raises(ValueError, match="wire receiver failed"):
            Item.objects.create(name="wire")
        wire_signal.send_robust(sender=None)
        assert provider.force_flush(10_000)
    finally:
        SignalInstrumentor().uninstrument()
        post_save.disconnect(on_saved, sender=Item)
        wire_signal.disconnect(on_wire)
        provider.shutdown()

    assert collector.paths and set(collector.paths) == {"/v1/traces"}
    assert set(collector.content_types) == {"application/x-protobuf"}
    resource = collector.requests[0].resource_spans[0].resource
    assert {attr.key: attr.value.string_value for attr in resource.attributes}["service.name"] == (
        "signaltrace-wire-test"
    )
    scope = collector.requests[0].resource_spans[0].scope_spans[0].scope
    assert scope.name == "signaltrace.otel"

    spans = collector.spans()
    by_name: dict[str, list[Span]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    assert sorted(by_name) == [
        "receiver tests.test_otel_wire.on_saved",
        "receiver tests.test_otel_wire.on_wire",
        "send post_save",
        "send tests.test_otel_wire.wire_signal",
        "send_robust tests.test_otel_wire.wire_signal",
    ]

    def attributes(span: Span) -> dict[str, Any]:
        values = {}
        for attr in span.attributes:
            kind = attr.value.WhichOneof("value")
            values[attr.key] = getattr(attr.value, kind)
        return values

    (saved,) = by_name["send post_save"]
    (saved_receiver,) = by_name["receiver tests.test_otel_wire.on_saved"]
    (nested,) = by_name["send tests.test_otel_wire.wire_signal"]
    (robust,) = by_name["send_robust tests.test_otel_wire.wire_signal"]
    nested_receiver, robust_receiver = sorted(
        by_name["receiver tests.test_otel_wire.on_wire"], key=lambda span: span.start_time_unix_nano
    )

    assert len(saved.trace_id) == 16 and len(saved.span_id) == 8
    assert saved.parent_span_id == b""
    assert saved.kind == Span.SpanKind.SPAN_KIND_INTERNAL
    assert attributes(saved) == {
        "signaltrace.signal": "post_save",
        "signaltrace.sender": "testapp.Item",
        "signaltrace.method": "send",
        "signaltrace.depth": 0,
        "signaltrace.receiver_count": 1,
        "signaltrace.transaction.alias": "default",
        "signaltrace.transaction.in_atomic": False,
        "error.type": "ValueError",
    }
    assert saved_receiver.parent_span_id == saved.span_id
    assert attributes(saved_receiver)["code.function.name"] == "tests.test_otel_wire.on_saved"
    assert attributes(saved_receiver)["code.file.path"] == __file__
    assert attributes(saved_receiver)["code.line.number"] == on_saved.__code__.co_firstlineno
    assert nested.parent_span_id == saved_receiver.span_id
    assert attributes(nested)["signaltrace.depth"] == 1
    assert nested_receiver.parent_span_id == nested.span_id
    assert {saved.trace_id} == {saved_receiver.trace_id, nested.trace_id, nested_receiver.trace_id}

    # The nested plain send raised through on_saved and save(): every span on that path failed.
    for span in (nested_receiver, nested, saved_receiver, saved):
        assert span.status.code == Status.STATUS_CODE_ERROR, span.name
        assert attributes(span)["error.type"] == "ValueError"
    assert [event.name for event in nested_receiver.events] == ["exception"]

    # send_robust handled it: the receiver failed, the dispatch did not.
    assert robust.trace_id != saved.trace_id
    assert robust_receiver.parent_span_id == robust.span_id
    assert robust_receiver.status.code == Status.STATUS_CODE_ERROR
    assert attributes(robust_receiver)["signaltrace.swallowed"] is True
    assert robust.status.code == Status.STATUS_CODE_UNSET


SETUP_FROM_ENVIRONMENT = """
import django
from django.conf import settings

settings.configure(INSTALLED_APPS=["signaltrace"], MIDDLEWARE=[])
django.setup()
from django.dispatch import Signal
from opentelemetry import trace

from signaltrace.otel import setup_otlp_from_environment

demo_signal = Signal()
demo_signal.connect(lambda sender, **kwargs: None, weak=False)
assert setup_otlp_from_environment(service_name="fallback-name")
demo_signal.send(sender=None)
assert trace.get_tracer_provider().force_flush(10_000)
"""


def test_setup_otlp_from_environment_exports_to_the_endpoint(collector: Collector) -> None:
    """The demo's switch: OTEL_EXPORTER_OTLP_ENDPOINT set means spans go there over OTLP/HTTP."""
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint.removesuffix("/v1/traces"),
        "OTEL_SERVICE_NAME": "signaltrace-demo-test",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None)
    result = subprocess.run(
        [sys.executable, "-c", SETUP_FROM_ENVIRONMENT], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert [span.name for span in collector.spans()] == [
        "receiver __main__.<lambda>",
        "send __main__.demo_signal",
    ]
    resource = collector.requests[0].resource_spans[0].resource
    assert {attr.key: attr.value.string_value for attr in resource.attributes}["service.name"] == (
        "signaltrace-demo-test"
    )


def test_setup_otlp_from_environment_does_nothing_without_an_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from signaltrace.otel import setup_otlp_from_environment

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert setup_otlp_from_environment() is False
