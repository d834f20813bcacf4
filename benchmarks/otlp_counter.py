"""A local OTLP/HTTP receiver that counts the spans it is sent, per service.

Usage: python benchmarks/otlp_counter.py  (prints ``port <n>`` once it listens on 127.0.0.1)

``POST /v1/traces``: an ``ExportTraceServiceRequest`` (protobuf, gzip or not), as the
real ``OTLPSpanExporter`` sends it, decoded with ``opentelemetry-proto`` like a
collector does. ``GET /counts``: JSON ``{service.name: {"spans", "server", "signal",
"dispatch", "receiver", "exports"}}`` where ``server`` counts request spans (kind
SERVER), ``signal`` the spans of signaltrace's tracer, split into ``dispatch`` and
``receiver`` spans. Runs in a process of its own, so decoding never shares a GIL
with the load client.
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

SIGNAL_SCOPE = "signaltrace.otel"
_REPLY = ExportTraceServiceResponse().SerializeToString()


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CountingHandler)
        self.lock = threading.Lock()
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            service = "?"
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    service = attribute.value.string_value
            counted: Counter[str] = Counter(exports=1)
            for scope_spans in resource_spans.scope_spans:
                is_signal = scope_spans.scope.name == SIGNAL_SCOPE
                for span in scope_spans.spans:
                    counted["spans"] += 1
                    if span.kind == Span.SPAN_KIND_SERVER:
                        counted["server"] += 1
                    if is_signal:
                        counted["signal"] += 1
                        counted["receiver" if span.name.startswith("receiver ") else "dispatch"] += 1
            with self.lock:
                self.counts[service].update(counted)


class CountingHandler(BaseHTTPRequestHandler):
    server: CountingServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.add(request)
        self._reply(_REPLY, "application/x-protobuf")

    def do_GET(self) -> None:
        with self.server.lock:
            counts = {service: dict(counted) for service, counted in self.server.counts.items()}
        self._reply(json.dumps(counts).encode(), "application/json")

    def _reply(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def main() -> None:
    server = CountingServer()
    print(f"port {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
