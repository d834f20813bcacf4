"""Signal spans' whole CPU cost, exporting included: signaltrace + OTLP against sentry-sdk.

Usage: python benchmarks/otel_process_cpu.py [--rounds 15] [--sends 200]

``otel_overhead.py`` counts the sending thread only (what a request waits for). This
counts the whole process (``process_time_ns``: every thread), with real exporters
sending to a sink in another process on 127.0.0.1, so the work done on other
threads is in too: the OTLP exporter's protobuf encoding and HTTP posts (its batch
processor's thread), sentry-sdk's envelope serialization and HTTP posts (its
transport worker). Every round ends with a flush of both, inside the timed region.

Modes, taking turns round after round: ``bare`` (Django's ``send``); ``signaltrace``
(``SignalInstrumentor``, ``BatchSpanProcessor`` + ``OTLPSpanExporter`` over HTTP);
``sentry`` (``DjangoIntegration(signals_spans=True)``, ``traces_sample_rate=1.0``,
its HTTP transport) minus ``sentry, no spans`` (the same transaction with Django's
own ``send``): what signal spans add to a request either tool already traces.
Figures: medians over rounds, µs of CPU per receiver call.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
from time import process_time_ns

import django
from django.conf import settings

settings.configure(INSTALLED_APPS=["signaltrace"], SIGNALTRACE={"ENABLED": False}, DATABASES={})
django.setup()

import sentry_sdk  # noqa: E402 - after Django's settings
from django.dispatch import Signal  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from otel_overhead import Order, bench_signal, make_receiver  # noqa: E402 - the same sends
from sentry_sdk.integrations.django import DjangoIntegration  # noqa: E402

import signaltrace  # noqa: E402
from signaltrace.otel import SignalInstrumentor  # noqa: E402

RECEIVER_COUNTS = (1, 2, 5)
MODES = ("bare", "signaltrace", "sentry, no spans", "sentry")

# An HTTP server that reads each POST and answers 200: the OTLP and sentry endpoint.
SINK = """
import http.server

class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class Bench:
    def __init__(self, port: int, sends: int) -> None:
        self.sends = sends
        self.django_live_receivers = Signal.__dict__["_live_receivers"]
        sentry_sdk.init(
            dsn=f"http://public@127.0.0.1:{port}/1",
            integrations=[DjangoIntegration(signals_spans=True)],
            default_integrations=False,
            traces_sample_rate=1.0,
        )
        self.sentry_live_receivers = Signal.__dict__["_live_receivers"]
        Signal._live_receivers = self.django_live_receivers
        self.provider = TracerProvider(resource=Resource.create({"service.name": "otel-process-cpu"}))
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")
        self.provider.add_span_processor(BatchSpanProcessor(exporter))

    def sends_of(self) -> None:
        instance = Order()
        for _ in range(self.sends):
            bench_signal.send(sender=Order, instance=instance, created=True)

    def run(self, mode: str) -> float:
        """µs of process CPU per send, exporting included."""
        gc.collect()
        gc.disable()
        try:
            start = process_time_ns()
            if mode == "signaltrace":
                SignalInstrumentor().instrument(tracer_provider=self.provider)
                self.sends_of()
                self.provider.force_flush()
                SignalInstrumentor().uninstrument()
                signaltrace.uninstall()
            elif mode.startswith("sentry"):
                if mode == "sentry":
                    Signal._live_receivers = self.sentry_live_receivers
                with sentry_sdk.start_transaction(name="bench", op="bench"):
                    self.sends_of()
                Signal._live_receivers = self.django_live_receivers
                sentry_sdk.flush()
            else:
                self.sends_of()
            return (process_time_ns() - start) / self.sends / 1000
        finally:
            gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sends", type=int, default=200, help="sends per round (x 5 receivers <= 1000)")
    args = parser.parse_args()
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None
        bench = Bench(int(sink.stdout.readline()), args.sends)
        print(f"µs of process CPU per receiver call, exporting included; medians of {args.rounds} rounds")
        print()
        print("| receivers | signaltrace + OTLP | sentry-sdk | sentry / signaltrace |")
        print("|---|---|---|---|")
        for count in RECEIVER_COUNTS:
            receivers = [make_receiver(index) for index in range(count)]
            for receiver in receivers:
                bench_signal.connect(receiver, weak=False)
            samples: dict[str, list[float]] = {mode: [] for mode in MODES}
            for _ in range(args.rounds):
                for mode in MODES:
                    samples[mode].append(bench.run(mode))
            for receiver in receivers:
                bench_signal.disconnect(receiver)
            median = {mode: statistics.median(values) for mode, values in samples.items()}
            ours = (median["signaltrace"] - median["bare"]) / count
            sentry = (median["sentry"] - median["sentry, no spans"]) / count
            print(f"| {count} | {ours:.1f} | {sentry:.1f} | {sentry / ours:.2f}x |")
    finally:
        sink.kill()


if __name__ == "__main__":
    main()
