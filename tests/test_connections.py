"""Connect-time warnings: receivers connected twice, receivers dropped for a taken dispatch_uid."""

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
from signaltrace import connections, hooks
from signaltrace.connections import ReceiverConnectionWarning
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


@pytest.fixture(autouse=True)
def _installed() -> Iterator[None]:
    signaltrace.install()
    connections._reported.clear()
    yield
    connections._reported.clear()


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


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "signaltrace"]


def test_double_import_is_warned_and_the_receiver_really_runs_twice(
    load_twice: Callable[[], tuple[ModuleType, ModuleType]], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.warns(ReceiverConnectionWarning) as warned, caplog.at_level(logging.WARNING):
        _first, second = load_twice()
    text = str(warned[0].message)
    assert text == (
        f"Receiver signals.touch_item ({where(second.touch_item)}) is connected twice to post_save for "
        "sender testapp.Item, under two different objects for the same function, so it runs twice per "
        "dispatch. Its module was probably imported under two names, or the code connecting it ran twice "
        "(AppConfig.ready()); connect it once, or pass a dispatch_uid."
    )
    assert messages(caplog) == [text]
    assert len(warned) == 1
    # The warning points at the connecting line (the @receiver decorator in that module).
    assert warned[0].filename == second.__file__
    item = Item(name="twice")
    post_save.send(sender=Item, instance=item, created=True)
    assert item.touched == 2


def make_receiver() -> Callable[..., None]:
    def on_ping_saved(sender: Any, **kwargs: Any) -> None:
        return None

    return on_ping_saved


def test_ready_running_twice_is_warned() -> None:
    first, second = make_receiver(), make_receiver()
    post_save.connect(first, sender=Ping)
    try:
        with pytest.warns(ReceiverConnectionWarning, match="is connected twice to post_save") as warned:
            post_save.connect(second, sender=Ping)
        assert warned[0].filename == __file__
        assert "tests.test_connections.make_receiver.<locals>.on_ping_saved" in str(warned[0].message)
    finally:
        post_save.disconnect(first, sender=Ping)
        post_save.disconnect(second, sender=Ping)


def test_taken_dispatch_uid_drop_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    signal = Signal()

    def send_welcome_email(sender: Any, **kwargs: Any) -> str:
        return "email"

    def send_welcome_sms(sender: Any, **kwargs: Any) -> str:
        return "sms"

    signal.connect(send_welcome_email, dispatch_uid="welcome")
    with pytest.warns(ReceiverConnectionWarning) as warned, caplog.at_level(logging.WARNING):
        signal.connect(send_welcome_sms, dispatch_uid="welcome")
    prefix = "tests.test_connections.test_taken_dispatch_uid_drop_is_warned.<locals>"
    text = str(warned[0].message)
    assert text.startswith(
        f"Receiver {prefix}.send_welcome_sms ({where(send_welcome_sms)}) was not connected to "
    )
    assert (
        f"its dispatch_uid 'welcome' is already taken by {prefix}.send_welcome_email "
        f"({where(send_welcome_email)}), and Django silently keeps the first receiver." in text
    )
    assert warned[0].filename == __file__
    assert messages(caplog) == [text]
    # Django really dropped it: only the first receiver answers.
    assert [response for _, response in signal.send(sender=None)] == ["email"]


def test_model_signal_drop_names_the_signal_and_sender() -> None:
    def first(sender: Any, **kwargs: Any) -> None:
        return None

    def second(sender: Any, **kwargs: Any) -> None:
        return None

    post_save.connect(first, sender=Item, dispatch_uid="tests.item_saved")
    try:
        with pytest.warns(ReceiverConnectionWarning, match=r"to post_save for sender testapp\.Item: its"):
            post_save.connect(second, sender="testapp.Item", dispatch_uid="tests.item_saved")
    finally:
        post_save.disconnect(sender=Item, dispatch_uid="tests.item_saved")


def test_reconnecting_with_dispatch_uid_is_silent(
    load_twice: Callable[[], tuple[ModuleType, ModuleType]],
) -> None:
    def handler(sender: Any, **kwargs: Any) -> None:
        return None

    signal = Signal()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signal.connect(handler, dispatch_uid="once")
        signal.connect(handler, dispatch_uid="once")
        signal.connect(make_receiver(), dispatch_uid="ready")
        signal.connect(make_receiver(), dispatch_uid="ready")  # ready() twice, guarded by the uid
    assert len(signal.receivers) == 2


def test_legitimate_connections_are_silent() -> None:
    class Panel:
        def on_signal(self, sender: Any, **kwargs: Any) -> None:
            return None

    def handler(sender: Any, **kwargs: Any) -> None:
        return None

    signal = Signal()
    first_panel, second_panel = Panel(), Panel()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signal.connect(handler)
        signal.connect(handler)  # the same object again: Django's no-op
        signal.connect(handler, sender=Item)  # the same function for another sender
        signal.connect(first_panel.on_signal)  # one receiver per instance, on purpose
        signal.connect(second_panel.on_signal)
    assert len(signal.receivers) == 4


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
        warnings.simplefilter("ignore", ReceiverConnectionWarning)  # ours, for the duplicate
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
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            signal.connect(make_receiver())
            signal.connect(make_receiver())
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
    assert any("connections.problem_with" in message for message in messages(caplog))
