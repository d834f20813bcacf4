"""Names of signals, senders and receivers."""

from __future__ import annotations

import functools
import sys

from django.contrib.auth.models import User
from django.core.signals import request_finished
from django.db.models.signals import post_save
from django.dispatch import Signal

from signaltrace.core import naming
from tests.testapp.signals import item_viewed


def plain_receiver(sender, **kwargs):
    return None


class Listener:
    def method(self, sender, **kwargs):
        return None

    def __call__(self, sender, **kwargs):
        return None


def test_django_signals_get_their_short_names_and_custom_ones_their_dotted_path():
    assert naming.signal_name(post_save) == "post_save"
    assert naming.signal_name(request_finished) == "request_finished"
    assert naming.signal_name(item_viewed) == "tests.testapp.signals.item_viewed"


def test_an_unnamed_signal_is_named_by_id_and_found_later(monkeypatch):
    import sys
    import types

    anonymous = Signal()
    assert naming.signal_name(anonymous).startswith("Signal at 0x")
    # Imported later, in a module of its own: the next lookup scans again and finds it.
    module = types.ModuleType("late_module_for_test")
    module.arrived = anonymous
    monkeypatch.setitem(sys.modules, "late_module_for_test", module)
    assert naming.signal_name(anonymous) == "late_module_for_test.arrived"


def test_a_signal_can_be_given_its_name():
    anonymous = Signal()
    naming.register_signal_name(anonymous, "my.anonymous")
    assert naming.signal_name(anonymous) == "my.anonymous"


def test_the_scan_never_evaluates_lazy_objects(monkeypatch):
    import sys
    import types

    from django.utils.functional import SimpleLazyObject

    evaluated = []
    module = types.ModuleType("lazy_module_for_test")
    module.lazy = SimpleLazyObject(lambda: evaluated.append(1) or Signal())
    monkeypatch.setitem(sys.modules, "lazy_module_for_test", module)
    naming.signal_name(Signal())
    assert evaluated == []


def test_sender_names():
    assert naming.sender_name(User) == "auth.User"
    assert naming.sender_name(None) == "None"
    assert naming.sender_name(Listener) == "tests.test_naming.Listener"
    assert naming.sender_name("shop") == "'shop'"
    assert naming.sender_name(Listener()) == "<tests.test_naming.Listener object>"


def test_receiver_info_for_functions_methods_partials_and_callables():
    name, file, line = naming.receiver_info(plain_receiver)
    assert (name, file, line) == (
        "tests.test_naming.plain_receiver",
        __file__,
        plain_receiver.__code__.co_firstlineno,
    )
    assert naming.receiver_info(Listener().method)[0] == "tests.test_naming.Listener.method"
    assert naming.receiver_info(functools.partial(plain_receiver))[0] == "tests.test_naming.plain_receiver"
    name, file, line = naming.receiver_info(Listener())
    assert name == "tests.test_naming.Listener" and line == Listener.__call__.__code__.co_firstlineno


def test_receiver_info_cache_does_not_keep_receivers_alive():
    import gc
    import weakref

    def temporary(sender, **kwargs):
        return None

    naming.receiver_info(temporary)
    ref = weakref.ref(temporary)
    del temporary
    gc.collect()
    assert ref() is None


def test_short_path_resolves_relative_sys_path_entries_against_the_current_directory(tmp_path, monkeypatch):
    """uvicorn and ``python -m`` put "." or "" on sys.path: files under it are still shown relative."""
    import os
    import sys

    project = tmp_path / "project"
    receivers = project / "looplab" / "receivers.py"
    receivers.parent.mkdir(parents=True)
    receivers.write_text("")
    monkeypatch.chdir(project)
    for entries in (["."], [""], ["./"], ["looplab/.."], ["..", "."]):
        monkeypatch.setattr(sys, "path", [*entries, "/nowhere"])
        naming.short_path.cache_clear()  # cached per file: sys.path is set once in a real process
        assert naming.short_path(str(receivers)) == os.path.join("looplab", "receivers.py"), entries
    monkeypatch.setattr(sys, "path", ["..", str(tmp_path / "elsewhere")])
    naming.short_path.cache_clear()
    assert naming.short_path(str(receivers)) == os.path.join("project", "looplab", "receivers.py")
    monkeypatch.setattr(sys, "path", ["/nowhere"])
    naming.short_path.cache_clear()
    assert naming.short_path(str(receivers)) == str(receivers)
    assert naming.short_path("./looplab/receivers.py") == os.path.join("looplab", "receivers.py")
    assert naming.short_path("<frozen importlib._bootstrap>") == "<frozen importlib._bootstrap>"
    naming.short_path.cache_clear()  # for the tests after this one


def test_a_file_found_through_a_dot_entry_is_shown_relative(tmp_path, monkeypatch):
    """Python 3.10 names a module imported through "." on sys.path "/root/./app/x.py"."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [".", *sys.path])
    naming.short_path.cache_clear()
    try:
        assert naming.short_path(f"{tmp_path}/./app/receivers.py") == "app/receivers.py"
        assert naming.short_path("./app/receivers.py") == "app/receivers.py"
    finally:
        naming.short_path.cache_clear()
