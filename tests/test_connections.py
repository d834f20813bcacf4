"""Connect-time problems: receivers connected twice, receivers dropped for a taken dispatch_uid.

They are logged on the ``signaltrace`` logger and kept for the system check
``signaltrace.W101`` (``connection_problems()``); nothing is warned with
``warnings.warn``, so ``-W error`` never stops a caller's ``connect()``.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.db.models.signals import post_save
from django.dispatch import Signal, receiver

import signaltrace
from signaltrace.core import connection_problems, connections, hooks, register_signal_name
from tests.locations import where
from tests.testapp.models import Item, Ping

MODULE_SOURCE = textwrap.dedent(
    """
    from django.db.models.signals import post_save
    from django.dispatch import receiver


    @receiver(post_save, sender="testapp.Item")
    def touch_item(sender, instance, **kwargs):
        instance.touched = getattr(instance, "touched", 0) + 1
    """
)

PREFIX = "tests.test_connections"


@pytest.fixture(autouse=True)
def _installed() -> Iterator[None]:
    signaltrace.install()
    connections.clear_problems()  # each message is logged once per process: start afresh
    yield
    connections.clear_problems()


@pytest.fixture
def load_twice(tmp_path: Path) -> Iterator[Callable[[], tuple[ModuleType, ModuleType]]]:
    """Import one receivers module under two names, as a double import does."""
    path = tmp_path / "double_signals.py"
    path.write_text(MODULE_SOURCE)
    loaded: list[ModuleType] = []

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        loaded.append(module)
        return module

    yield lambda: (load("shop.signals"), load("signals"))
    for module in loaded:
        post_save.disconnect(module.touch_item, sender=Item)
        sys.modules.pop(module.__name__, None)


def named_signal(name: str) -> Signal:
    """A new signal with a fixed name in messages (a bare one is named by its id)."""
    signal = Signal()
    register_signal_name(signal, name)
    return signal


def logged(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    """(level, message) of each record on the ``signaltrace`` logger."""
    return [
        (record.levelno, record.getMessage()) for record in caplog.records if record.name == "signaltrace"
    ]


def make_receiver(answer: Any = None) -> Callable[..., Any]:
    """A new receiver object each call, all from one ``def``: what ``ready()`` run twice makes."""

    def on_ping_saved(sender: Any, **kwargs: Any) -> Any:
        return answer

    return on_ping_saved


def answers(signal: Signal, sender: Any = None) -> list[Any]:
    return [response for _, response in signal.send(sender=sender)]


# ------------------------------------------------------------------ the two mistakes


def test_double_import_is_reported_and_the_receiver_really_runs_twice(
    load_twice: Callable[[], tuple[ModuleType, ModuleType]], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="signaltrace"):
        _first, second = load_twice()
    text = (
        f"Receiver signals.touch_item ({where(second.touch_item)}) is connected twice to post_save for "
        "sender testapp.Item, under two different objects for the same function, so it runs twice per "
        "dispatch. Its module was probably imported under two names, or the code connecting it ran twice "
        "(AppConfig.ready()); connect it once, or pass a dispatch_uid."
    )
    assert logged(caplog) == [(logging.WARNING, text)]
    assert connection_problems() == [text]
    item = Item(name="twice")
    post_save.send(sender=Item, instance=item, created=True)
    assert item.touched == 2


def test_ready_running_twice_is_reported_once_per_process(caplog: pytest.LogCaptureFixture) -> None:
    first, second, third = make_receiver(), make_receiver(), make_receiver()
    try:
        with caplog.at_level(logging.WARNING, logger="signaltrace"):
            post_save.connect(first, sender=Ping)
            assert connection_problems() == []
            post_save.connect(second, sender=Ping)
            post_save.connect(third, sender=Ping)  # the same mistake again: the same message
        [text] = connection_problems()
        assert text.startswith(
            f"Receiver {PREFIX}.make_receiver.<locals>.on_ping_saved ({where(first)}) is connected "
            "twice to post_save for sender testapp.Ping, under two different objects"
        )
        assert logged(caplog) == [(logging.WARNING, text)]
    finally:
        for connected in (first, second, third):
            post_save.disconnect(connected, sender=Ping)


def test_taken_dispatch_uid_drop_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    signal = named_signal("tests.welcome")

    def send_welcome_email(sender: Any, **kwargs: Any) -> str:
        return "email"

    def send_welcome_sms(sender: Any, **kwargs: Any) -> str:
        return "sms"

    signal.connect(send_welcome_email, dispatch_uid="welcome")
    assert connection_problems() == []
    with caplog.at_level(logging.WARNING, logger="signaltrace"):
        signal.connect(send_welcome_sms, dispatch_uid="welcome")
    prefix = f"{PREFIX}.test_taken_dispatch_uid_drop_is_reported.<locals>"
    text = (
        f"Receiver {prefix}.send_welcome_sms ({where(send_welcome_sms)}) was not connected to "
        f"tests.welcome for any sender: its dispatch_uid 'welcome' is already taken by "
        f"{prefix}.send_welcome_email ({where(send_welcome_email)}), and Django silently keeps the "
        "first receiver. Give each receiver its own dispatch_uid."
    )
    assert connection_problems() == [text]
    assert logged(caplog) == [(logging.WARNING, text)]
    # Django really dropped it: only the first receiver answers.
    assert answers(signal) == ["email"]


def test_model_signal_drop_names_the_signal_and_sender() -> None:
    def first(sender: Any, **kwargs: Any) -> None:
        return None

    def second(sender: Any, **kwargs: Any) -> None:
        return None

    post_save.connect(first, sender=Item, dispatch_uid="tests.item_saved")
    try:
        post_save.connect(second, sender="testapp.Item", dispatch_uid="tests.item_saved")
        [text] = connection_problems()
        assert "was not connected to post_save for sender testapp.Item: its dispatch_uid" in text
    finally:
        post_save.disconnect(sender=Item, dispatch_uid="tests.item_saved")


# ------------------------------------------------------------------ -W error


def connect_all(signal: Signal, registrations: list[tuple[Any, str | None]]) -> None:
    """A host's registration loop: one ``connect`` per receiver, in order."""
    for connected, uid in registrations:
        signal.connect(connected, dispatch_uid=uid)


def send_email(sender: Any, **kwargs: Any) -> str:
    return "email"


def send_sms(sender: Any, **kwargs: Any) -> str:
    return "sms"


def send_letter(sender: Any, **kwargs: Any) -> str:
    return "letter"


@pytest.mark.parametrize(
    ("registrations", "expected"),
    [
        # The second is the first made again (ready() twice): Django connects it too.
        (
            [(make_receiver("first"), None), (make_receiver("again"), None), (send_letter, None)],
            ["first", "again", "letter"],
        ),
        # The second reuses the first's dispatch_uid: Django drops it.
        ([(send_email, "welcome"), (send_sms, "welcome"), (send_letter, "goodbye")], ["email", "letter"]),
    ],
    ids=["double-receiver", "taken-dispatch-uid"],
)
def test_warnings_as_errors_never_stop_a_registration_loop(
    registrations: list[tuple[Any, str | None]], expected: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    installed = named_signal("tests.registered")
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING, logger="signaltrace"):
        warnings.simplefilter("error")  # as under python -W error or filterwarnings = error
        connect_all(installed, registrations)  # raises nothing
    assert answers(installed) == expected  # the receivers after the problem are connected
    assert len(connection_problems()) == 1  # the problem was still found, and logged
    assert [message for _, message in logged(caplog)] == connection_problems()
    signaltrace.uninstall()
    try:
        bare = Signal()
        connect_all(bare, registrations)
    finally:
        signaltrace.install()
    assert answers(bare) == expected  # what Django alone connects


# ------------------------------------------------------------------ dispatch_uid patterns


def test_one_function_under_two_explicit_dispatch_uids_is_no_problem(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """django-auditlog's pattern: one function, connected once per registry under its own uid."""
    signal = named_signal("tests.audited")
    calls = []

    def log_create(sender: Any, **kwargs: Any) -> str:
        calls.append(sender)
        return "logged"

    with warnings.catch_warnings(), caplog.at_level(logging.DEBUG, logger="signaltrace"):
        warnings.simplefilter("error")
        signal.connect(log_create, sender=Item, dispatch_uid="auditlog.registry_a.Item")
        signal.connect(log_create, sender=Item, dispatch_uid="auditlog.registry_b.Item")
    assert connection_problems() == []
    assert logged(caplog) == []
    assert answers(signal, sender=Item) == ["logged", "logged"]  # Django runs it twice
    assert calls == [Item, Item]


def test_one_def_made_twice_under_two_explicit_dispatch_uids_is_no_problem() -> None:
    signal = Signal()
    first, second = make_receiver("a"), make_receiver("b")
    signal.connect(first, dispatch_uid="registry_a")
    signal.connect(second, dispatch_uid="registry_b")
    assert connection_problems() == []
    assert answers(signal) == ["a", "b"]


@pytest.mark.parametrize("uid_first", [True, False], ids=["uid-first", "uid-second"])
def test_one_function_with_and_without_a_dispatch_uid_is_reported_as_such(
    uid_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    signal = named_signal("tests.audited")

    def log_create(sender: Any, **kwargs: Any) -> str:
        return "logged"

    uids = ["auditlog.Item", None] if uid_first else [None, "auditlog.Item"]
    with caplog.at_level(logging.WARNING, logger="signaltrace"):
        for uid in uids:
            signal.connect(log_create, sender=Item, dispatch_uid=uid)
    name = f"{PREFIX}.test_one_function_with_and_without_a_dispatch_uid_is_reported_as_such.<locals>"
    text = (
        f"Receiver {name}.log_create ({where(log_create)}) is connected twice to tests.audited for "
        "sender testapp.Item, once with dispatch_uid 'auditlog.Item' and once without one, so it runs "
        "twice per dispatch. Connect it once, or give both connections their own dispatch_uid if "
        "running twice is intended."
    )
    assert connection_problems() == [text]
    assert logged(caplog) == [(logging.WARNING, text)]
    assert answers(signal, sender=Item) == ["logged", "logged"]


def test_reconnecting_with_dispatch_uid_is_silent() -> None:
    def handler(sender: Any, **kwargs: Any) -> None:
        return None

    signal = Signal()
    first_ready, second_ready = make_receiver(), make_receiver()  # both alive (receivers are weak)
    signal.connect(handler, dispatch_uid="once")
    signal.connect(handler, dispatch_uid="once")
    signal.connect(first_ready, dispatch_uid="ready")
    signal.connect(second_ready, dispatch_uid="ready")  # ready() twice, guarded by the uid
    assert len(signal.receivers) == 2
    assert connection_problems() == []


def test_legitimate_connections_are_silent(caplog: pytest.LogCaptureFixture) -> None:
    class Panel:
        def on_signal(self, sender: Any, **kwargs: Any) -> None:
            return None

    def handler(sender: Any, **kwargs: Any) -> None:
        return None

    signal = Signal()
    first_panel, second_panel = Panel(), Panel()
    with caplog.at_level(logging.DEBUG, logger="signaltrace"):
        signal.connect(handler)
        signal.connect(handler)  # the same object again: Django's no-op
        signal.connect(handler, sender=Item)  # the same function for another sender
        signal.connect(first_panel.on_signal)  # one receiver per instance, on purpose
        signal.connect(second_panel.on_signal)
    assert len(signal.receivers) == 4
    assert connection_problems() == []
    assert logged(caplog) == []


def test_problems_kept_are_bounded_but_all_are_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(connections, "MAX_PROBLEMS", 2)
    signals = [named_signal(f"tests.bounded_{index}") for index in range(3)]
    with caplog.at_level(logging.WARNING, logger="signaltrace"):
        for signal in signals:
            signal.connect(make_receiver(), weak=False)
            signal.connect(make_receiver(), weak=False)
    messages = [message for _, message in logged(caplog)]
    assert len(messages) == 3
    assert "tests.bounded_2" in messages[2]
    assert connection_problems() == messages[:2]  # the oldest kept


# ------------------------------------------------------------------ connect is Django's


def test_connect_behaves_as_django() -> None:
    """The wrapped connect gives what Django's own gives, decorator and repeat included."""

    def connect_and_send() -> tuple[Any, ...]:
        signal = Signal()

        @receiver(signal)
        def decorated(sender: Any, **kwargs: Any) -> int:
            return 1

        again = signal.connect(decorated)  # a duplicate: ignored, returns None
        responses = [(found.__name__, value) for found, value in signal.send(sender=None)]
        return again, responses, len(signal.receivers), signal.has_listeners()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        installed = connect_and_send()
    signaltrace.uninstall()
    try:
        bare = connect_and_send()
    finally:
        signaltrace.install()
    assert installed == bare == (None, [("decorated", 1)], 1, True)


@pytest.mark.usefixtures("settings")
def test_connect_rejects_bad_receivers_like_django(settings: Any) -> None:
    settings.DEBUG = True
    with pytest.raises(ValueError, match="must accept keyword arguments"):
        Signal().connect(lambda sender: None)


def test_uninstall_restores_connect_exactly() -> None:
    assert Signal.__dict__["connect"] is not hooks._django_connect
    signaltrace.uninstall()
    try:
        assert Signal.__dict__["connect"] is hooks._django_connect
        signal = Signal()
        first, second = make_receiver(), make_receiver()
        signal.connect(first)
        signal.connect(second)  # a double receiver, but connect is Django's own again
        assert answers(signal) == [None, None]
        assert connection_problems() == []
    finally:
        signaltrace.install()
    assert Signal.__dict__["connect"] is not hooks._django_connect


def test_internal_error_never_stops_a_connection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> None:
        raise ZeroDivisionError

    monkeypatch.setattr(connections, "problem_with", broken)
    signal = Signal()

    def handler(sender: Any, **kwargs: Any) -> int:
        return 2

    with caplog.at_level(logging.ERROR, logger="signaltrace"):
        signal.connect(handler)
    assert signal.send(sender=None) == [(handler, 2)]
    assert any("connections.problem_with" in message for _, message in logged(caplog))
