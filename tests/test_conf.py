"""Settings: a value its rule rejects is reported by the checks and replaced by its default at run time;
sensitive kwarg names are redacted, whatever SENSITIVE_KWARGS adds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.core.checks import run_checks
from django.dispatch import Signal
from django.test import override_settings

import signaltrace
from signaltrace import conf
from signaltrace.conf import DEFAULTS, REDACTED, RULES, get_config, is_enabled


def check_ids(value: dict[str, Any]) -> list[str]:
    with override_settings(SIGNALTRACE=value):
        return [message.id for message in run_checks() if message.id.startswith("signaltrace.E")]


@pytest.fixture
def signal() -> Iterator[Signal]:
    signal = Signal()

    def answer(sender: Any, **kwargs: Any) -> str:
        return "answered"

    signal.connect(answer, weak=False)
    yield signal
    signal.disconnect(answer)


# ------------------------------------------------------------------ one rule per key


# Values of the wrong type or range for each key (several reached run-time code before).
BAD_VALUES: dict[str, list[Any]] = {
    "ENABLED": ["False", 1, 0, "yes"],
    "IGNORE_SIGNALS": ["django.db.models.signals.pre_init", [3], None],
    "MAX_DISPATCHES": ["lots", 0, -1, True, 2.5],
    "MAX_TRACE_BYTES": ["a lot", 0, -5, False, 1.5],
    "SENSITIVE_KWARGS": [3, "(unclosed", ["iban"]],
    "MAX_REPR_LENGTH": ["200", 0, False],
    "REPR_OBJECTS": ["False", 1, None],
    "LOOP_POLICY": ["explode", None, ["raise"]],
    "LOOP_MAX_REENTRIES": ["2", 0, 1.5, True],
    "PANEL_SLOW_RECEIVER_MS": ["50", 0, -5, True, None],
    "OTEL_SIGNALS_ALLOW": ["django.db.models.signals.post_save", [3]],
    "OTEL_SIGNALS_DENY": [None, "django.db.models.signals.post_save"],
    "OTEL_SAMPLE_RATES": [["django.db.models.signals.post_save"], {"x.y": 1.5}, {"x.y": "0.5"}, {3: 0.5}],
    "OTEL_RECORD_KWARGS": ["yes", 1],
    "OTEL_ALL_DISPATCHES": ["true", 1, None],
}


def test_every_key_has_one_rule_that_its_default_passes() -> None:
    assert list(RULES) == list(DEFAULTS) == list(BAD_VALUES)
    for key, default in DEFAULTS.items():
        assert conf.invalid(key, default) is None, key


@pytest.mark.parametrize(
    ("key", "value"), [(key, value) for key, values in BAD_VALUES.items() for value in values]
)
def test_the_check_and_the_run_time_agree_on_every_bad_value(key: str, value: Any) -> None:
    assert conf.invalid(key, value) is not None
    with override_settings(SIGNALTRACE={key: value}):
        errors = [message for message in run_checks() if message.id == RULES[key].check_id]
        assert get_config()[key] == DEFAULTS[key]  # what runs
    assert len(errors) == 1  # what is reported
    assert key in errors[0].msg
    assert errors[0].hint.endswith(f"the default is used: {DEFAULTS[key]!r}.")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ENABLED", False),
        ("IGNORE_SIGNALS", []),
        ("MAX_DISPATCHES", 5),
        ("SENSITIVE_KWARGS", "iban"),
        ("MAX_REPR_LENGTH", 40),
        ("REPR_OBJECTS", True),
        ("LOOP_POLICY", "warn"),
        ("LOOP_MAX_REENTRIES", 3),
        ("PANEL_SLOW_RECEIVER_MS", 12.5),
        ("OTEL_SIGNALS_ALLOW", ["django.db.models.signals.post_save"]),
        ("OTEL_SIGNALS_DENY", ("django.db.models.signals.post_save",)),
        ("OTEL_SAMPLE_RATES", {"django.db.models.signals.post_save": 1}),
        ("OTEL_RECORD_KWARGS", True),
        ("OTEL_ALL_DISPATCHES", True),
    ],
)
def test_usable_values_are_used_and_not_reported(key: str, value: Any) -> None:
    assert value != DEFAULTS[key]
    assert check_ids({key: value}) == []
    with override_settings(SIGNALTRACE={key: value}):
        assert get_config()[key] == value


def test_unknown_keys_are_reported_and_left_out() -> None:
    assert check_ids({"ENABLD": True}) == ["signaltrace.E002"]
    with override_settings(SIGNALTRACE={"ENABLD": True}):
        assert "ENABLD" not in get_config()


# ------------------------------------------------------------------ the four that broke at run time


def test_max_dispatches_of_the_wrong_type_keeps_the_default_number(signal: Signal) -> None:
    assert check_ids({"MAX_DISPATCHES": "lots"}) == ["signaltrace.E006"]
    with override_settings(SIGNALTRACE={"MAX_DISPATCHES": "lots"}), signaltrace.record() as trace:
        for _ in range(3):
            signal.send(sender=None)
    assert len(trace.dispatches) == 3 and trace.dropped == 0


echo = Signal()
echoes: list[int] = []


def echo_again(sender: Any, **kwargs: Any) -> None:
    echoes.append(1)
    if len(echoes) < 10:  # bounded, so a guard that never stops it fails the test, not the run
        echo.send(sender=sender)


def test_loop_max_reentries_of_the_wrong_type_still_stops_loops() -> None:
    assert check_ids({"LOOP_MAX_REENTRIES": "2"}) == ["signaltrace.E006"]
    echoes.clear()
    echo.connect(echo_again)
    try:
        with (
            override_settings(SIGNALTRACE={"ENABLED": True, "LOOP_MAX_REENTRIES": "2"}),
            pytest.raises(signaltrace.SignalLoopError),
        ):
            echo.send(sender="lab")
    finally:
        echo.disconnect(echo_again)
    assert len(echoes) == 2  # stopped at the third entry, as with the default 2


@pytest.mark.parametrize("debug", [False, True])
def test_enabled_of_the_wrong_type_follows_debug(debug: bool) -> None:
    assert check_ids({"ENABLED": "False"}) == ["signaltrace.E003"]
    app = apps.get_app_config("signaltrace")
    was_installed = signaltrace.is_installed()
    signaltrace.uninstall()
    try:
        with override_settings(SIGNALTRACE={"ENABLED": "False"}, DEBUG=debug):
            assert is_enabled() is debug
            app.ready()  # what Django runs at startup
            assert signaltrace.is_installed() is debug
    finally:
        signaltrace.uninstall()
        if was_installed:
            signaltrace.install()


class Noisy:
    reprs = 0

    def __repr__(self) -> str:
        Noisy.reprs += 1
        return "<user code ran>"


def test_repr_objects_of_the_wrong_type_keeps_repr_off(signal: Signal) -> None:
    assert check_ids({"REPR_OBJECTS": "False"}) == ["signaltrace.E007"]
    Noisy.reprs = 0
    with override_settings(SIGNALTRACE={"REPR_OBJECTS": "False"}), signaltrace.record() as trace:
        signal.send(sender=None, payload=Noisy())
    assert trace.dispatches[0].kwargs["payload"] == "<tests.test_conf.Noisy object>"
    assert Noisy.reprs == 0


# ------------------------------------------------------------------ SENSITIVE_KWARGS


@pytest.mark.parametrize(
    "pattern",
    [
        "(?i)iban",  # a global flag: in the middle of the combined pattern, re rejects it
        "(?i)(?s)iban|phone",
        "(?x) iban | phone  # verbose, with a comment",
        "iban|phone",
    ],
)
def test_sensitive_kwargs_with_inline_flags_are_used_not_fatal(signal: Signal, pattern: str) -> None:
    assert check_ids({"SENSITIVE_KWARGS": pattern}) == []
    with override_settings(SIGNALTRACE={"SENSITIVE_KWARGS": pattern}), signaltrace.record() as trace:
        signal.send(sender=None, user_IBAN="DE00", password="hunter2", amount=3)
    kwargs = trace.dispatches[0].kwargs
    assert kwargs == {"user_IBAN": REDACTED, "password": REDACTED, "amount": "3"}


def test_an_unusable_sensitive_pattern_falls_back_to_the_built_in_names(signal: Signal) -> None:
    assert check_ids({"SENSITIVE_KWARGS": "iban(?i)"}) == ["signaltrace.E005"]
    with override_settings(SIGNALTRACE={"SENSITIVE_KWARGS": "iban(?i)"}), signaltrace.record() as trace:
        signal.send(sender=None, iban="DE00", password="hunter2")
    assert trace.dispatches[0].kwargs == {"iban": "'DE00'", "password": REDACTED}


def test_record_never_raises_for_a_pattern_that_slipped_past_validation(
    signal: Signal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conf, "invalid", lambda key, value: None)  # a validation gap
    with override_settings(SIGNALTRACE={"SENSITIVE_KWARGS": "(unclosed"}), signaltrace.record() as trace:
        assert signal.send(sender=None, password="hunter2")[0][1] == "answered"
    assert trace.dispatches[0].kwargs == {"password": REDACTED}


# Django's SafeExceptionReporterFilter names, sentry-sdk's default denylist, and beyond
# (see FIELD-NOTES "Redaction anchors"), in the cases they come in.
ANCHORS = [
    *["api", "AUTH", "token", "key", "Secret", "pass", "signature", "HTTP_COOKIE"],
    *["password", "passwd", "secret", "api_key", "apikey", "auth", "credentials", "mysql_pwd"],
    *["privatekey", "private_key", "token", "session", "csrftoken", "sessionid", "x_csrftoken"],
    *["x_forwarded_for", "set_cookie", "cookie", "authorization", "x_api_key", "csrf_token", "csrf"],
    *["_csrf", "_session", "user_session", "_xsrf"],
    *["credit_card", "card_number", "cvv", "CVC", "ssn", "customer_ssn"],
]


@pytest.mark.parametrize("name", ANCHORS)
def test_each_anchor_name_is_redacted(signal: Signal, name: str) -> None:
    with signaltrace.record() as trace:
        signal.send(sender=None, **{name: "secret-value"})
    assert trace.dispatches[0].kwargs == {name: REDACTED}


@pytest.mark.parametrize("name", ["username", "amount", "order", "created", "instance", "email"])
def test_ordinary_names_are_not_redacted(signal: Signal, name: str) -> None:
    with signaltrace.record() as trace:
        signal.send(sender=None, **{name: "plain"})
    assert trace.dispatches[0].kwargs == {name: "'plain'"}
