"""A real OTLP viewer: Arize Phoenix receives our spans and returns them from its REST API.

Runs only when ``PHOENIX_URL`` points at a running ``phoenix serve``;
tests/scripts/phoenix.sh installs Phoenix in its own virtualenv, starts it on
127.0.0.1 with telemetry off, and runs this file. A Django request through the test
client, with ``opentelemetry-instrumentation-django`` making the request span, sends
signals whose spans go to Phoenix over OTLP/HTTP; the spans Phoenix returns must be
the ones the SDK made, with the same parents and attributes.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from typing import Any

import pytest
from django.db.models.signals import post_save
from django.dispatch import Signal
from django.test import Client, override_settings
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from signaltrace.otel import SignalInstrumentor
from tests.testapp.models import Item
from tests.testapp.signals import item_viewed

PHOENIX_URL = os.environ.get("PHOENIX_URL", "")

pytestmark = pytest.mark.skipif(
    not PHOENIX_URL, reason="needs a running Phoenix: run tests/scripts/phoenix.sh (make test does)"
)

item_audited = Signal()


def audit_item(sender: Any, **kwargs: Any) -> None:
    item_audited.send(sender=sender)


def record_audit(sender: Any, **kwargs: Any) -> None:
    """Receives the nested dispatch."""


def count_view(sender: Any, **kwargs: Any) -> None:
    raise LookupError("view counter is down")


def phoenix_spans(project: str, trace_id: str) -> list[dict[str, Any]]:
    url = f"{PHOENIX_URL}/v1/projects/{project}/spans?trace_id={trace_id}&limit=1000"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]


def wait_for_spans(project: str, trace_id: str, count: int) -> list[dict[str, Any]]:
    """Phoenix ingests in the background: ask until every span is there (or give up)."""
    deadline = time.monotonic() + 60
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            found = phoenix_spans(project, trace_id)
        except OSError:
            found = []  # the project appears with its first span
        if len(found) >= count:
            break
        time.sleep(0.5)
    return found


@pytest.mark.django_db
def test_phoenix_shows_signal_spans_under_the_request() -> None:
    project = f"signaltrace-test-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(
        resource=Resource.create({"service.name": "signaltrace-tests", "openinference.project.name": project})
    )
    local = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(local))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{PHOENIX_URL}/v1/traces")))
    post_save.connect(audit_item, sender=Item)
    item_audited.connect(record_audit)
    item_viewed.connect(count_view)
    DjangoInstrumentor().instrument(tracer_provider=provider)
    SignalInstrumentor().instrument(tracer_provider=provider)
    try:
        with override_settings(ROOT_URLCONF="tests.phoenix.urls"):
            response = Client().get("/items/view/", {"name": "phoenix"})
        assert provider.force_flush(10_000)
    finally:
        SignalInstrumentor().uninstrument()
        DjangoInstrumentor().uninstrument()
        post_save.disconnect(audit_item, sender=Item)
        item_audited.disconnect(record_audit)
        item_viewed.disconnect(count_view)
        provider.shutdown()
    assert response.status_code == 200

    (request,) = [span for span in local.get_finished_spans() if span.kind is SpanKind.SERVER]
    trace_id = format(request.context.trace_id, "032x")
    # Only the spans of the request's own trace: by default request_started/request_finished,
    # which fire outside the request span, get no spans at all (OTEL_ALL_DISPATCHES).
    sent = {
        format(span.context.span_id, "016x"): span
        for span in local.get_finished_spans()
        if span.context.trace_id == request.context.trace_id
    }
    assert len(sent) == 7
    received = wait_for_spans(project, trace_id, len(sent))

    by_id = {span["context"]["span_id"]: span for span in received}
    assert set(by_id) == set(sent), "Phoenix must return every span the SDK made"
    for span_id, span in sent.items():
        shown = by_id[span_id]
        assert shown["name"] == span.name
        assert shown["context"]["trace_id"] == trace_id
        expected_parent = format(span.parent.span_id, "016x") if span.parent else None
        assert shown["parent_id"] == expected_parent, span.name
        for key, value in span.attributes.items():
            if key.startswith(("signaltrace.", "code.", "error.")):
                assert shown["attributes"].get(key) == value, (span.name, key)

    def shown(name: str) -> dict[str, Any]:
        (match,) = [span for span in received if span["name"] == name]
        return match

    request_id = shown(request.name)["context"]["span_id"]
    saved = shown("send post_save")
    audit = shown("receiver tests.phoenix.test_phoenix.audit_item")
    audited = shown("send tests.phoenix.test_phoenix.item_audited")
    viewed = shown("send_robust tests.testapp.signals.item_viewed")
    counter = shown("receiver tests.phoenix.test_phoenix.count_view")
    assert saved["parent_id"] == request_id
    assert audit["parent_id"] == saved["context"]["span_id"]
    assert audited["parent_id"] == audit["context"]["span_id"]
    assert (
        shown("receiver tests.phoenix.test_phoenix.record_audit")["parent_id"]
        == audited["context"]["span_id"]
    )
    assert viewed["parent_id"] == request_id
    assert counter["parent_id"] == viewed["context"]["span_id"]

    assert saved["attributes"]["signaltrace.sender"] == "testapp.Item"
    assert audited["attributes"]["signaltrace.depth"] == 1
    assert audit["attributes"]["code.function.name"] == "tests.phoenix.test_phoenix.audit_item"
    assert audit["attributes"]["code.file.path"] == __file__
    assert audit["attributes"]["code.line.number"] == audit_item.__code__.co_firstlineno
    assert counter["status_code"] == "ERROR"
    assert counter["attributes"]["error.type"] == "LookupError"
    assert [event["name"] for event in counter["events"]] == ["exception"]
    assert counter["events"][0]["attributes"]["exception.message"] == "view counter is down"
    assert viewed["status_code"] == "UNSET"
