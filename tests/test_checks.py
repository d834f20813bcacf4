"""System checks for the SIGNALTRACE setting and for receiver connections."""

from __future__ import annotations

import importlib.util
import sys
import types
from io import StringIO

import pytest
from django.core.checks import WARNING, run_checks
from django.core.checks import Warning as CheckWarning
from django.core.management import call_command
from django.dispatch import Signal
from django.test import override_settings

import signaltrace
from signaltrace.checks import check_connections
from signaltrace.core import connection_problems, connections, register_signal_name


@pytest.fixture(autouse=True)
def _no_connection_problems():
    """Problems found by other tests would show up as signaltrace.W101 here."""
    connections.clear_problems()
    yield
    connections.clear_problems()


def ids(settings_value):
    with override_settings(SIGNALTRACE=settings_value):
        return [error.id for error in run_checks() if error.id.startswith("signaltrace.")]


def test_valid_settings_pass():
    assert (
        ids({"ENABLED": True, "MAX_DISPATCHES": 5, "LOOP_POLICY": "warn", "SENSITIVE_KWARGS": "iban"}) == []
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("not a dict", "signaltrace.E001"),
        ({"ENABLD": True}, "signaltrace.E002"),
        ({"ENABLED": "yes"}, "signaltrace.E003"),
        ({"IGNORE_SIGNALS": ["no.such.module.signal"]}, "signaltrace.E004"),
        ({"IGNORE_SIGNALS": ["django.db.models.signals.ModelSignal"]}, "signaltrace.E004"),
        ({"IGNORE_SIGNALS": "django.db.models.signals.pre_init"}, "signaltrace.E004"),
        ({"SENSITIVE_KWARGS": "(unclosed"}, "signaltrace.E005"),
        ({"MAX_DISPATCHES": 0}, "signaltrace.E006"),
        ({"LOOP_MAX_REENTRIES": "2"}, "signaltrace.E006"),
        ({"REPR_OBJECTS": 1}, "signaltrace.E007"),
        ({"LOOP_POLICY": "explode"}, "signaltrace.E008"),
    ],
)
def test_each_bad_value_gets_its_own_clear_error(value, expected):
    assert ids(value) == [expected]


def test_messages_name_the_key_and_give_a_hint():
    with override_settings(SIGNALTRACE={"MAX_DISPATCHES": -1}):
        [error] = [e for e in run_checks() if e.id == "signaltrace.E006"]
    assert "MAX_DISPATCHES" in error.msg and "-1" in error.msg and error.hint


def test_bad_settings_never_break_a_dispatch():
    from django.dispatch import Signal

    import signaltrace

    signal = Signal()
    signal.connect(lambda sender, **kwargs: 1, weak=False)
    with override_settings(SIGNALTRACE={"SENSITIVE_KWARGS": "(unclosed", "IGNORE_SIGNALS": ["x.y"]}):
        with signaltrace.record() as trace:
            assert [r for _, r in signal.send(sender=None, password="p")] == [1]
    assert set(trace.dispatches[0].kwargs["password"]) == {"*"}


def make_receiver():
    def on_checked(sender, **kwargs):
        return None

    return on_checked


def test_connection_problems_are_listed_by_the_system_check():
    signaltrace.install()
    assert [message for message in run_checks() if message.id == "signaltrace.W101"] == []
    signal = Signal()
    register_signal_name(signal, "tests.checked")
    first, second = make_receiver(), make_receiver()  # ready() run twice
    signal.connect(first)
    signal.connect(second)
    [problem] = connection_problems()
    assert "is connected twice to tests.checked" in problem
    warnings = [message for message in run_checks() if message.id == "signaltrace.W101"]
    assert warnings == check_connections()
    [warning] = warnings
    assert isinstance(warning, CheckWarning) and warning.level == WARNING
    assert warning.msg == problem
    assert "SILENCED_SYSTEM_CHECKS" in warning.hint


def test_each_connection_problem_gets_its_own_warning_in_manage_py_check():
    signaltrace.install()

    def email(sender, **kwargs):
        return "email"

    def sms(sender, **kwargs):
        return "sms"

    signal = Signal()
    register_signal_name(signal, "tests.checked")
    first, second = make_receiver(), make_receiver()
    signal.connect(first)
    signal.connect(second)
    signal.connect(email, dispatch_uid="welcome")
    signal.connect(sms, dispatch_uid="welcome")
    assert len(check_connections()) == 2
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err)
    output = out.getvalue() + err.getvalue()
    assert output.count("(signaltrace.W101)") == 2
    for problem in connection_problems():
        assert problem in output


def asgi_warnings() -> list[str]:
    return [message.id for message in run_checks() if message.id == "signaltrace.W021"]


def test_asgi_without_its_instrumentation_warns_while_signal_spans_are_on(spans, monkeypatch):
    installed = importlib.util.find_spec("opentelemetry.instrumentation.asgi") is not None
    with override_settings(ASGI_APPLICATION="tests.asgi.application"):
        assert asgi_warnings() == ([] if installed else ["signaltrace.W021"])
        monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.asgi", None)  # not importable
        assert asgi_warnings() == ["signaltrace.W021"]
    assert asgi_warnings() == []  # WSGI only
    monkeypatch.setitem(sys.modules, "uvicorn", types.ModuleType("uvicorn"))  # served by uvicorn
    assert asgi_warnings() == ["signaltrace.W021"]


def test_asgi_without_signal_spans_is_not_warned_about(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.asgi", None)
    with override_settings(ASGI_APPLICATION="tests.asgi.application"):
        assert asgi_warnings() == []
