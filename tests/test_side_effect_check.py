"""System check signaltrace.W102: receivers whose source publishes a task or sends mail
outside ``transaction.on_commit`` (signaltrace.core.side_effect_scan)."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import sys
import textwrap
from functools import partial
from io import StringIO
from pathlib import Path

import pytest
from celery import shared_task
from django.core.checks import WARNING, run_checks
from django.core.mail import EmailMessage, EmailMultiAlternatives, mail_admins, mail_managers, send_mail
from django.core.management import call_command
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import Signal

from signaltrace.checks import check_side_effects_outside_on_commit
from signaltrace.core.side_effect_scan import MAIL, TASK, SideEffectCall, is_projects, scan_receivers

SIGNAL_NAME = f"{__name__}.checked"
checked = Signal()


@shared_task
def notify_user(pk: int) -> int:
    return pk


def publishes_with_delay(sender, **kwargs):
    notify_user.delay(1)  # W102: delay


def publishes_with_apply_async(sender, **kwargs):
    if kwargs.get("created", True):
        notify_user.apply_async(args=(1,), countdown=5)  # W102: apply_async


def sends_mail(sender, **kwargs):
    send_mail("Welcome", "Hello", None, ["ada@example.com"])  # W102: send_mail


def sends_message(sender, **kwargs):
    EmailMessage("Welcome", "Hello", to=["ada@example.com"]).send()  # W102: EmailMessage


def sends_named_messages(sender, instance=None, **kwargs):
    message = EmailMultiAlternatives("Welcome", "Hello", to=["ada@example.com"])
    message.send()  # W102: message.send
    instance.email_user("Welcome", "Hello")  # W102: email_user


def defers_with_on_commit(sender, **kwargs):
    transaction.on_commit(lambda: notify_user.delay(1))
    transaction.on_commit(partial(send_mail, "Welcome", "Hello", None, ["ada@example.com"]))
    transaction.on_commit(
        lambda: EmailMessage("Welcome", "Hello", to=["ada@example.com"]).send(), robust=True
    )


def defers_with_delay_on_commit(sender, **kwargs):
    notify_user.delay_on_commit(1)
    notify_user.apply_async_on_commit(args=(1,))


def defers_a_nested_function(sender, **kwargs):
    def deliver():
        send_mail("Welcome", "Hello", None, ["ada@example.com"])

    def log_it():
        mail_admins("Signal", "sent")  # W102: nested, not deferred

    transaction.on_commit(deliver)
    log_it()


def defers_one_of_two(sender, **kwargs):
    transaction.on_commit(lambda: notify_user.delay(1))
    notify_user.delay(2)  # W102: beside on_commit


def sends_signals_not_mail(sender, **kwargs):
    checked.send(sender=None)
    post_save.send(sender=None)
    email_confirmed = message_sent = checked  # signals named like mail (django-allauth's)
    email_confirmed.send(sender=None)
    message_sent.send(sender=None)


def run_on_commit(function):
    """A project's decorator: the receiver runs after the commit."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        transaction.on_commit(partial(function, *args, **kwargs))

    return wrapper


@run_on_commit
def mails_after_commit(sender, **kwargs):
    send_mail("Welcome", "Hello", None, ["ada@example.com"])


def logged(function):
    """A project's decorator that keeps the receiver's code (``functools.wraps``)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return function(*args, **kwargs)

    return wrapper


@logged
def decorated_mailer(sender, **kwargs):
    mail_managers("Signal", "sent")  # W102: decorated


class Notifier:
    """Bound methods: source that ``inspect.getsource`` returns indented."""

    def on_signal(self, sender, **kwargs):
        body = """
Dear user,
  a text at column 0 breaks textwrap.dedent.
"""
        notify_user.apply_async((body,))  # W102: method

    def on_signal_after_commit(self, sender, **kwargs):
        transaction.on_commit(lambda: notify_user.delay(1))


class TaskPublisher:
    """A class-based receiver: its ``__call__`` is read."""

    def __call__(self, sender, **kwargs):
        notify_user.delay(3)  # W102: __call__


class CommitMailer:
    def __call__(self, sender, **kwargs):
        transaction.on_commit(lambda: mail_admins("Signal", "sent"))


quiet_lambda = lambda sender, **kwargs: None  # noqa: E731
[loud_lambda] = [lambda sender, **kwargs: notify_user.delay(4)]  # W102: lambda
two_lambdas = (lambda sender, **kwargs: notify_user.delay(5), lambda sender, **kwargs: None)


def line_of(marker: str) -> int:
    """The line of this file that ends with ``# W102: <marker>``."""
    lines = Path(__file__).read_text().splitlines()
    [number] = [n for n, line in enumerate(lines, 1) if line.rstrip().endswith(f"W102: {marker}")]
    return number


def found(*receivers, connect) -> list[tuple[str, int, str, str]]:
    for receiver in receivers:
        connect(checked, receiver)
    return [
        (call.receiver.rsplit(".", 1)[-1], call.line, call.call, call.kind)
        for call in scan_receivers([checked])
    ]


def test_task_calls_are_reported(connect):
    assert found(publishes_with_delay, publishes_with_apply_async, connect=connect) == [
        ("publishes_with_delay", line_of("delay"), "notify_user.delay()", TASK),
        ("publishes_with_apply_async", line_of("apply_async"), "notify_user.apply_async()", TASK),
    ]


def test_mail_calls_are_reported(connect):
    receivers = [sends_mail, sends_message, sends_named_messages, decorated_mailer]
    assert found(*receivers, connect=connect) == [
        ("sends_mail", line_of("send_mail"), "send_mail()", MAIL),
        ("sends_message", line_of("EmailMessage"), "EmailMessage(...).send()", MAIL),
        ("sends_named_messages", line_of("message.send"), "message.send()", MAIL),
        ("sends_named_messages", line_of("email_user"), "instance.email_user()", MAIL),
        ("decorated_mailer", line_of("decorated"), "mail_managers()", MAIL),
    ]


def test_calls_deferred_to_the_commit_are_not_reported(connect):
    receivers = [defers_with_on_commit, defers_with_delay_on_commit, mails_after_commit, CommitMailer()]
    assert found(*receivers, Notifier().on_signal_after_commit, sends_signals_not_mail, connect=connect) == []


def test_only_what_on_commit_receives_is_deferred(connect):
    assert found(defers_a_nested_function, defers_one_of_two, connect=connect) == [
        ("defers_a_nested_function", line_of("nested, not deferred"), "mail_admins()", MAIL),
        ("defers_one_of_two", line_of("beside on_commit"), "notify_user.delay()", TASK),
    ]


def test_indented_sources_and_callable_objects_are_read_at_their_own_lines(connect):
    assert found(Notifier().on_signal, TaskPublisher(), connect=connect) == [
        ("on_signal", line_of("method"), "notify_user.apply_async()", TASK),
        ("TaskPublisher", line_of("__call__"), "notify_user.delay()", TASK),
    ]


def test_lambdas_are_read_only_when_alone_on_their_line(connect):
    assert found(quiet_lambda, two_lambdas[1], connect=connect) == []
    assert found(loud_lambda, connect=connect) == [
        ("<lambda>", line_of("lambda"), "notify_user.delay()", TASK)
    ]


def test_receivers_without_source_are_skipped(connect):
    namespace = {"send_mail": send_mail}
    source = "def generated(sender, **kwargs):\n    send_mail('Hi', 'Hello', None, ['ada@example.com'])\n"
    exec(compile(source, "<generated receivers>", "exec"), namespace)
    assert found(namespace["generated"], partial(print), print, connect=connect) == []


def test_a_receiver_connected_to_two_signals_is_reported_once(connect):
    connect(post_save, sends_mail, sender=Notifier)
    connect(checked, sends_mail)
    [call] = scan_receivers([post_save, checked])
    assert call.signals == ("post_save", SIGNAL_NAME)
    assert call.location == f"tests/test_side_effect_check.py:{line_of('send_mail')}"


THIRD_PARTY = """
from django.core.mail import send_mail


def welcome(sender, **kwargs):
    send_mail("Welcome", "Hello", None, ["ada@example.com"])
"""


def test_django_and_installed_packages_are_not_the_projects(tmp_path, monkeypatch, connect):
    for directory, module in [("site-packages", "st_w102_installed"), ("project", "st_w102_project")]:
        (tmp_path / directory).mkdir()
        (tmp_path / directory / f"{module}.py").write_text(textwrap.dedent(THIRD_PARTY))
        monkeypatch.syspath_prepend(str(tmp_path / directory))
    try:
        installed = importlib.import_module("st_w102_installed")
        project = importlib.import_module("st_w102_project")
        assert found(installed.welcome, project.welcome, connect=connect) == [
            ("welcome", 6, "send_mail()", MAIL)
        ]
        assert [call.receiver for call in scan_receivers([checked])] == ["st_w102_project.welcome"]
    finally:
        sys.modules.pop("st_w102_installed", None)
        sys.modules.pop("st_w102_project", None)
    assert not is_projects("django.contrib.auth.models.update_last_login", __file__)
    assert not is_projects("signaltrace.conf.clear_config", __file__)
    assert not is_projects("celery.app.task.Task", sys.modules["celery"].__file__)
    assert is_projects(f"{__name__}.sends_mail", __file__)


class Hostile:
    """A receiver whose ``__code__`` fails when read, once it is connected (Django reads it then)."""

    armed = False

    @property
    def __code__(self):
        if self.armed:
            raise RuntimeError("hostile")
        return type(self).__call__.__code__

    def __call__(self, sender, **kwargs):
        return None


def test_a_hostile_receiver_is_logged_and_the_rest_still_scanned(connect, fresh_internal_errors, caplog):
    hostile = connect(checked, Hostile())
    hostile.armed = True
    with caplog.at_level(logging.ERROR, logger="signaltrace"):
        result = found(sends_mail, connect=connect)
    assert result == [("sends_mail", line_of("send_mail"), "send_mail()", MAIL)]
    assert "side_effect_scan" in caplog.text


def test_the_system_check_warns_with_a_static_hint(connect):
    connect(checked, publishes_with_delay)
    connect(checked, sends_mail)
    warnings = [message for message in run_checks() if message.id == "signaltrace.W102"]
    assert warnings == check_side_effects_outside_on_commit()
    task, mail = warnings
    assert task.level == WARNING
    assert task.msg == (
        f"Receiver {__name__}.publishes_with_delay (tests/test_side_effect_check.py:{line_of('delay')}) "
        f"calls notify_user.delay() outside transaction.on_commit() (connected to {SIGNAL_NAME})."
    )
    assert "send_mail() outside transaction.on_commit()" in mail.msg
    for warning in warnings:
        assert warning.hint.startswith("A static hint, read from the receiver's source, not from a run")
        assert "signaltrace.record()" in warning.hint and "SILENCED_SYSTEM_CHECKS" in warning.hint
    assert "delay_on_commit" in task.hint and "delay_on_commit" not in mail.hint


def test_manage_py_check_shows_the_warning_for_the_project_only(connect):
    connect(checked, sends_message)
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err)
    output = out.getvalue() + err.getvalue()
    assert output.count("(signaltrace.W102)") == 1
    assert f"{__name__}.sends_message" in output and "EmailMessage(...).send()" in output
    out, err = StringIO(), StringIO()
    call_command("check", "testapp", stdout=out, stderr=err)  # receivers of other apps are not listed
    assert "signaltrace.W102" not in out.getvalue() + err.getvalue()


def test_side_effect_calls_are_frozen():
    call = SideEffectCall(receiver="a.b", file="/x/a.py", line=3, call="send_mail()", kind=MAIL, signals=())
    assert call == SideEffectCall("a.b", "/x/a.py", 3, "send_mail()", MAIL, ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.line = 4  # type: ignore[misc]
