"""``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` is honoured where signaltrace instruments on its own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from signaltrace.otel.disabled import disabled_instrumentations, is_disabled

SET_UP = """
import django
from django.conf import settings

settings.configure(INSTALLED_APPS=["signaltrace"], MIDDLEWARE=[])
django.setup()
from opentelemetry.instrumentation.django import DjangoInstrumentor

from signaltrace.otel import SignalInstrumentor, setup_otlp_from_environment

assert setup_otlp_from_environment()
signals, requests = SignalInstrumentor(), DjangoInstrumentor()
print(signals.is_instrumented_by_opentelemetry, requests.is_instrumented_by_opentelemetry)
SignalInstrumentor().instrument()  # in code: the code asked for it, as with OpenTelemetry's own
print(SignalInstrumentor().is_instrumented_by_opentelemetry)
"""


def set_up_with(disabled: str | None) -> list[str]:
    """What setup_otlp_from_environment() instruments in a fresh process, then what explicit code does."""
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}  # nothing is sent
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", None)
    if disabled is not None:
        env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = disabled
    result = subprocess.run(
        [sys.executable, "-c", SET_UP], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize(
    ("disabled", "signals", "requests"),
    [
        (None, "True", "True"),
        ("signaltrace", "False", "True"),
        ("sqlite3 , signaltrace", "False", "True"),
        ("django", "True", "False"),
        ("*", "False", "False"),
        ("signaltrace-extra,requests", "True", "True"),
    ],
)
def test_setup_otlp_from_environment_leaves_out_what_the_variable_names(
    disabled: str | None, signals: str, requests: str
) -> None:
    assert set_up_with(disabled) == [signals, requests, "True"]


def test_the_list_is_read_as_opentelemetry_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", " django ,, signaltrace,")
    assert disabled_instrumentations() == {"django", "signaltrace"}
    assert is_disabled("signaltrace") and not is_disabled("celery")
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "*")
    assert is_disabled("signaltrace")
    monkeypatch.delenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")
    assert not is_disabled("signaltrace")
