"""System checks for the SIGNALTRACE setting."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.test import override_settings


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
