"""Kwargs snapshots, rendering and exception text: never break the host, never leak (issue 12).

Each test below failed on the rendering of 240a3dd (and the ``format_exception`` of the
core it became) unless its docstring says it guards a property that already held.
"""

from __future__ import annotations

import gc
import json
import sys
import time
import traceback
import tracemalloc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.dispatch import Signal
from django.http import QueryDict
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils.functional import SimpleLazyObject

import signaltrace
from signaltrace.conf import REDACTED, sensitive_pattern
from signaltrace.core import format_exception, rendering, safe_repr
from tests.testapp.models import Item

pytestmark = pytest.mark.django_db


def quiet(sender: Any, **kwargs: Any) -> None:
    return None


@pytest.fixture
def signal() -> Iterator[Signal]:
    """A fresh signal with one receiver, disconnected after the test."""
    sent = Signal()
    sent.connect(quiet, weak=False)
    yield sent
    sent.disconnect(quiet)


def recorded(signal: Signal, **kwargs: Any) -> tuple[dict[str, str], str]:
    """The rendered kwargs of one recorded send, and the whole trace as JSON."""
    with signaltrace.record() as trace:
        signal.send(sender=None, **kwargs)
    return trace.dispatches[0].kwargs, json.dumps(trace.to_dict())


def test_model_signal_kwargs_read_the_same_on_first_and_later_sends(signal):
    """The first send of a model's kwargs takes the full path and fills the per-type caches;
    later ones take the fast scan. Both keep the pk as it was when sent, and redact alike."""
    item = Item.objects.create(name="first")
    kwargs = {
        "instance": item,
        "update_fields": frozenset({"name"}),
        "pair": ("Authorization", "Bearer abc"),
        "created": False,
        "using": "default",
    }
    rendering.clear_caches()
    first, _ = recorded(signal, **kwargs)
    later, data = recorded(signal, **kwargs)
    assert first == later
    assert later["instance"] == f"<testapp.Item pk={item.pk}>"
    assert later["update_fields"] == "frozenset({'name'})"
    assert later["pair"] == f"('Authorization', {REDACTED})"
    assert "abc" not in data

    with signaltrace.record() as trace:
        signal.send(sender=None, **kwargs)
        old_pk, item.pk = item.pk, None  # as Collector.delete() does after post_delete
    assert trace.dispatches[0].kwargs["instance"] == f"<testapp.Item pk={old_pk}>"


# ------------------------------------------------------------------ 1. secrets in values


def test_credentials_are_redacted_in_values_whatever_their_kwarg_name(signal):
    # None of these kwarg names is sensitive: the values give the secrets away.
    kwargs, text = recorded(
        signal,
        pair=("Authorization", "Bearer abc.def.ghi"),
        second_pair=("Cookie", "sessionid=s3ss10n"),
        byte_pair=(b"authorization", b"Digest d1g3st"),
        tags=frozenset({"Bearer fr0z3n"}),
        v1="bearer l0w3r",
        v2="Basic dXNlcjpwYXNz",
        v3="TOKEN t0k3n",
        v4="JWT eyJhbGciOiJIUzI1NiJ9",
        v5=b"Bearer byt3s",
        harmless=("Bear with me", "Tokens", "Basically", "JWTS"),
    )
    for secret in (
        "abc.def.ghi",
        "s3ss10n",
        "d1g3st",
        "fr0z3n",
        "l0w3r",
        "dXNlcjpwYXNz",
        "t0k3n",
        "eyJhbGciOiJIUzI1NiJ9",
        "byt3s",
    ):
        assert secret not in text
    assert kwargs["pair"] == f"('Authorization', {REDACTED})"
    assert kwargs["second_pair"] == f"('Cookie', {REDACTED})"
    assert kwargs["byte_pair"] == f"(b'authorization', {REDACTED})"
    assert kwargs["tags"] == f"frozenset({{{REDACTED}}})"
    for name in ("v1", "v2", "v3", "v4", "v5"):
        assert kwargs[name] == REDACTED
    # Only a credential's prefix (with its space) counts: ordinary words are kept.
    assert kwargs["harmless"] == "('Bear with me', 'Tokens', 'Basically', 'JWTS')"


def test_repr_objects_redacts_sensitive_keys_and_pairs_at_any_depth(signal):
    payload = {
        "user": "bob",
        "api_key": "k3y",
        "nested": {"password": "hunt3r2", "inner": {"client_secret": "cl13nt", "visible": 1}},
        "headers": [("Cookie", "sessionid=c00k13"), ["Authorization", "Basic b4s1c"]],
        "note": "Bearer v4lu3",
    }
    form = QueryDict("password=p4ss&q=shoes")
    with override_settings(SIGNALTRACE={"REPR_OBJECTS": True, "MAX_REPR_LENGTH": 1000}):
        kwargs, text = recorded(signal, payload=payload, form=form, pairs=[(b"cookie", b"b1n4ry")])
    for secret in ("k3y", "hunt3r2", "c00k13", "b4s1c", "cl13nt", "v4lu3", "p4ss", "b1n4ry"):
        assert secret not in text
    # Rendered, not dropped: the harmless parts are all there.
    assert kwargs["payload"] == (
        f"{{'user': 'bob', 'api_key': {REDACTED}, "
        f"'nested': {{'password': {REDACTED}, 'inner': {{'client_secret': {REDACTED}, 'visible': 1}}}}, "
        f"'headers': [('Cookie', {REDACTED}), ['Authorization', {REDACTED}]], 'note': {REDACTED}}}"
    )
    assert kwargs["form"] == f"QueryDict({{'password': {REDACTED}, 'q': ['shoes']}})"
    assert kwargs["pairs"] == f"[(b'cookie', {REDACTED})]"


# ------------------------------------------------------------------ 2. no model repr, no SQL


def test_repr_objects_renders_containers_without_a_models_repr_or_any_query(signal):
    """Item.__str__ runs a query; Model.__repr__ calls __str__; repr(queryset) evaluates it."""
    first = Item.objects.create(name="first")
    second = Item.objects.create(name="second")
    lazy = SimpleLazyObject(lambda: first)
    assert lazy.name == "first"  # evaluated: it wraps the instance now
    unevaluated = SimpleLazyObject(lambda: Item.objects.get(pk=first.pk))
    kwargs = {
        "instance": first,
        "items": [first, second],
        "by_name": {"first": first, "deep": {"deeper": [second]}},
        "pair": (first, 1),
        "group": {second},
        "frozen": frozenset({first}),
        "querysets": [Item.objects.all(), Item.objects.filter(name="x")],
        "lazy": lazy,
        "unevaluated": unevaluated,
    }
    with override_settings(SIGNALTRACE={"REPR_OBJECTS": True, "MAX_REPR_LENGTH": 1000}):
        with CaptureQueriesContext(connection) as while_recording, signaltrace.record() as trace:
            signal.send(sender=None, **kwargs)
        with CaptureQueriesContext(connection) as while_reading:
            rendered = trace.dispatches[0].kwargs
            data = trace.to_dict()
    assert while_recording.captured_queries == []
    assert while_reading.captured_queries == []
    one, two = f"<testapp.Item pk={first.pk}>", f"<testapp.Item pk={second.pk}>"
    assert rendered["instance"] == one
    assert rendered["items"] == f"[{one}, {two}]"
    assert rendered["by_name"] == f"{{'first': {one}, 'deep': {{'deeper': [{two}]}}}}"
    assert rendered["pair"] == f"({one}, 1)"
    assert rendered["group"] == f"{{{two}}}"
    assert rendered["frozen"] == f"frozenset({{{one}}})"
    assert rendered["querysets"] == "[<QuerySet of testapp.Item>, <QuerySet of testapp.Item>]"
    assert rendered["lazy"] == f"<SimpleLazyObject: {one}>"
    assert rendered["unevaluated"] == "<SimpleLazyObject: not evaluated>"
    assert data["dispatches"][0]["kwargs"] == rendered


# ------------------------------------------------------------------ 3. memory and time bounded


def test_long_texts_are_cut_when_recorded_so_the_trace_keeps_no_reference(signal):
    body = "x" * 1_000_000
    data = b"y" * 1_000_000
    references = (sys.getrefcount(body), sys.getrefcount(data))
    with signaltrace.record() as trace:
        for _ in range(3):
            signal.send(sender=None, body=body, data=data, inside=(body, 1))
        assert (sys.getrefcount(body), sys.getrefcount(data)) == references
    kwargs = trace.dispatches[0].kwargs
    assert kwargs["body"] == "'" + "x" * 198 + "…"
    assert kwargs["data"] == "b'" + "y" * 197 + "…"
    assert kwargs["inside"].startswith("('xxx") and len(kwargs["inside"]) == 200


def test_sending_fresh_big_bodies_does_not_grow_memory(signal):
    """2,000 sends of a fresh 1 MB body used to keep 2 GB: each body was kept by reference."""
    tracemalloc.start()
    try:
        with signaltrace.record() as trace:
            before = tracemalloc.get_traced_memory()[0]
            for number in range(40):
                signal.send(sender=None, body=str(number).ljust(1_000_000, "x"), data=bytes(1_000_000))
            grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(trace) == 40
    assert grown < 2_000_000  # was 80 MB


def test_a_big_tuple_is_kept_by_its_size_without_being_walked(signal):
    big = tuple(range(1_000_000))
    references = sys.getrefcount(big)
    started = time.perf_counter()
    with signaltrace.record() as trace:
        for _ in range(100):
            signal.send(sender=None, big=big, fields=frozenset(f"f{n}" for n in range(40)))
    elapsed = time.perf_counter() - started
    assert sys.getrefcount(big) == references  # not kept
    assert trace.dispatches[0].kwargs["big"] == "<tuple of 1000000 items>"
    assert trace.dispatches[0].kwargs["fields"] == "<frozenset of 40 items>"
    assert elapsed < 1.0  # walking it took 1.5 s (loose: this is a shared machine)


def test_safe_repr_renders_only_what_it_shows(monkeypatch):
    calls = []

    class Counted:
        def __repr__(self) -> str:
            calls.append(self)
            return "counted"

    text = safe_repr([Counted() for _ in range(10_000)], 200)
    assert len(calls) <= 20 and len(text) <= 200
    assert text.endswith("...]")

    # A long str or bytes is sliced before its repr is taken.
    seen: list[int] = []
    real_repr = repr

    def spy(value: Any) -> str:
        if type(value) in (str, bytes):
            seen.append(len(value))
        return real_repr(value)

    monkeypatch.setattr(rendering, "repr", spy, raising=False)
    assert safe_repr("z" * 10_000_000, 50) == "'" + "z" * 48 + "…"
    assert safe_repr(b"z" * 10_000_000, 50).startswith("b'zzz")
    assert safe_repr(["z" * 10_000_000], 50).startswith("['zzz")
    assert max(seen) <= 50


def test_deep_or_self_referencing_containers_render_bounded():
    """A 5,000-deep list made repr() raise RecursionError; a self-referencing one was fine already."""
    deep: list[Any] = []
    current = deep
    for _ in range(5000):
        current.append([])
        current = current[0]
    assert safe_repr(deep) == "[[[[...]]]]"
    loop: list[Any] = []
    loop.append(loop)
    assert safe_repr(loop) == "[[[[...]]]]"


# ------------------------------------------------------------------ 4. caches bounded


def test_per_type_caches_do_not_keep_every_class_alive():
    pattern = sensitive_pattern()
    first = type("Fresh0", (), {})
    alive = weakref.ref(first)
    rendering.snapshot_value(first())
    rendering.snapshot_kwargs({"value": first()}, pattern, False)
    rendering.snapshot_kwargs({"value": first()}, pattern, True)
    del first
    for number in range(1, 5000):
        fresh = type(f"Fresh{number}", (), {})
        rendering.snapshot_kwargs({"value": fresh()}, pattern, False)
        rendering.snapshot_kwargs({"value": fresh()}, pattern, True)
    del fresh
    gc.collect()
    assert alive() is None
    assert len(rendering._snapshotters) <= 1000 and len(rendering._snapshotters_repr) <= 1000


def test_the_sensitive_name_cache_is_bounded():
    pattern = sensitive_pattern()
    for number in range(5000):
        rendering.snapshot_kwargs({f"name_{number}": number}, pattern, False)
    assert len(rendering._sensitive_names) <= 1000
    assert len(rendering._redaction_plans) <= 1000


# ------------------------------------------------------------------ 5. exceptions formatted once, bounded


def deep_error(levels: int) -> ValueError:
    """A ValueError caught after going up ``levels`` frames."""

    def recurse(remaining: int) -> None:
        if remaining == 0:
            raise ValueError("deep failure")
        recurse(remaining - 1)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + levels)
    try:
        recurse(levels)
    except ValueError as error:
        return error
    finally:
        sys.setrecursionlimit(limit)
    raise AssertionError("unreachable")


@pytest.fixture
def format_calls(monkeypatch) -> list[Any]:
    """Counts how often a traceback's frames are read (``traceback.extract_tb``, once per
    formatting of a one-exception chain); only the first reading returns them."""
    calls: list[Any] = []
    real = traceback.extract_tb

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs) if len(calls) == 1 else traceback.StackSummary()

    monkeypatch.setattr(traceback, "extract_tb", counting)
    return calls


def test_a_deep_traceback_is_formatted_by_its_last_frames():
    error = deep_error(900)
    text = format_exception(error)
    assert "earlier frames not shown" in text
    assert text.rstrip().endswith("ValueError: deep failure")  # the end is what is kept
    assert text.count('File "') <= 30
    assert len(text) <= 4000


def test_one_exception_shared_by_500_calls_is_formatted_once(format_calls):
    error = deep_error(900)
    started = time.perf_counter()
    texts = {format_exception(error) for _call in range(500)}
    elapsed = time.perf_counter() - started
    assert len(format_calls) == 1
    assert len(texts) == 1 and "ValueError: deep failure" in texts.pop()
    assert elapsed < 1.0


def test_a_trace_formats_a_shared_exception_once(format_calls):
    error = deep_error(900)
    failing = Signal()

    def fail(sender: Any, **kwargs: Any) -> None:
        raise error

    failing.connect(fail, weak=False)
    try:
        with signaltrace.record() as trace:
            for _ in range(20):
                with pytest.raises(ValueError):
                    failing.send(sender=None)
    finally:
        failing.disconnect(fail)
    format_calls.clear()
    data = trace.to_dict()
    tracebacks = {call["exception"]["traceback"] for d in data["dispatches"] for call in d["calls"]}
    assert len(format_calls) == 1
    assert len(tracebacks) == 1 and "earlier frames not shown" in tracebacks.pop()


def test_a_reraised_exception_is_formatted_again(format_calls):
    """Guards the memo: it is per exception AND per traceback (re-raising adds frames)."""
    error = deep_error(3)
    first = format_exception(error)
    try:
        raise error
    except ValueError:
        pass
    format_exception(error)
    assert len(format_calls) == 2
    assert "deep failure" in first


def test_formatting_calls_no_eq_or_hash_and_keeps_no_frames_alive():
    """Guards properties that already held: no process-wide cache holds exceptions."""

    class Touchy(Exception):
        def __eq__(self, other: object) -> bool:
            raise AssertionError("__eq__ called")

        def __hash__(self) -> int:
            raise AssertionError("__hash__ called")

    class Local:
        pass

    def fail() -> None:
        local = Local()
        holder.append(weakref.ref(local))
        raise Touchy("touchy")

    holder: list[Any] = []
    try:
        fail()
    except Touchy as caught:
        error = caught
    assert format_exception(error) == format_exception(error)
    del error
    gc.collect()
    assert holder[0]() is None


class QueryingItem(Item):
    """An Item whose ``repr`` runs a query, as a model's ``__str__`` often does."""

    class Meta:
        proxy = True
        app_label = "testapp"

    def __repr__(self) -> str:
        return f"<QueryingItem of {Item.objects.count()}>"


def reject_with_the_item(sender: Any, item: Any, **kwargs: Any) -> None:
    raise ValueError("rejected", item, "Authorization: Bearer sk_live_0123456789")


def test_an_exception_holding_a_model_is_read_without_sql_and_redacted():
    """``str(ValueError("rejected", item))`` is the ``repr`` of the item: reading the trace
    (messages, tracebacks, ``to_dict()``) must not run it, and the quoted header is redacted."""
    signal = Signal()
    signal.connect(reject_with_the_item, weak=False)
    item = QueryingItem(pk=42, name="x")
    with signaltrace.record() as trace:
        signal.send_robust(sender=None, item=item)
    with CaptureQueriesContext(connection) as reading:
        data = json.dumps(trace.to_dict())
    assert len(reading) == 0
    assert "sk_live_0123456789" not in data and "Bearer ********************" in data
    assert "ValueError: ('rejected', <testapp.QueryingItem pk=42>" in data


def test_a_small_set_of_plain_values_is_readable_and_copied(signal):
    """``m2m_changed`` sends ``pk_set``: a set Django goes on changing after the dispatch."""
    pk_set = {3, 4}
    with signaltrace.record() as trace:
        signal.send(sender=None, pk_set=pk_set, names={"a", "b"}, things={object()})
        pk_set.add(5)
    kwargs = trace.dispatches[0].kwargs
    assert kwargs["pk_set"] == "frozenset({3, 4})"
    assert kwargs["names"] in ("frozenset({'a', 'b'})", "frozenset({'b', 'a'})")
    assert kwargs["things"] == "<set object>"  # not walked: its items are objects


def _kept_update_fields(snapshot: Any) -> Any:
    if type(snapshot) is dict:
        return snapshot["update_fields"]
    names, values = snapshot
    return values[names.index("update_fields")]


def test_a_kept_update_fields_set_spares_the_walk_of_equal_sets_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Equal frozensets are kept without a walk; a set with a credential is still walked and redacted."""
    pattern = sensitive_pattern()
    walked: list[frozenset[str]] = []
    walk = rendering._snapshot_container

    def counted(value: Any, *args: Any) -> Any:
        walked.append(value)
        return walk(value, *args)

    monkeypatch.setattr(rendering, "_snapshot_container", counted)
    monkeypatch.setattr(rendering, "_kept_sets", set())  # whatever other tests kept
    plain = frozenset({"name", "counter"})
    rendering.snapshot_kwargs({"update_fields": None}, pattern, False)  # the name, learnt
    walked.clear()
    snapshot = rendering.snapshot_kwargs({"update_fields": plain}, pattern, False)
    assert snapshot == {"update_fields": plain}  # the fast path: the kwargs as they are
    assert walked == [plain]  # walked once, then kept
    equal = frozenset({"counter", "name"})
    assert rendering.snapshot_kwargs({"update_fields": equal}, pattern, False) == {"update_fields": equal}
    assert walked == [plain]  # an equal set: not walked again
    secret = frozenset({"name", "Bearer abcdefgh12345678"})
    kept = _kept_update_fields(rendering.snapshot_kwargs({"update_fields": secret}, pattern, False))
    assert kept is not secret and "abcdefgh12345678" not in repr(kept)
    assert walked[-1] == secret


def _general_snapshot(monkeypatch: pytest.MonkeyPatch, named: dict[str, Any]) -> Any:
    """What snapshot_kwargs makes of ``named`` without the save signals' shortcut."""
    with monkeypatch.context() as patched:
        patched.setattr(rendering, "_snapshot_save_kwargs", lambda named, pattern: None)
        return rendering.snapshot_kwargs(named, sensitive_pattern(), False)


def test_save_signal_kwargs_take_a_shortcut_with_the_general_path_s_result(monkeypatch):
    """pre_save's and post_save's kwargs as Django sends them are checked as one shape:
    the result is the general path's; anything else takes the general path."""
    item = Item.objects.create(name="a")
    fields = frozenset({"name"})
    pre = {"instance": item, "raw": False, "using": "default", "update_fields": None}
    post = {"instance": item, "created": True, "update_fields": fields, "raw": False, "using": "default"}
    for named in (pre, post):
        first = _general_snapshot(monkeypatch, named)  # fills the per-name and per-type caches
        general = _general_snapshot(monkeypatch, named)
        shortcut = rendering._snapshot_save_kwargs(named, sensitive_pattern())
        assert shortcut is not None and shortcut == general
        assert rendering.render_kwargs(shortcut) == rendering.render_kwargs(first)
        assert shortcut["instance"][1:] == ("testapp.Item", item.pk)
        assert rendering.snapshot_kwargs(named, sensitive_pattern(), False) == general
    others = [
        {**pre, "extra": 1},  # another name
        {**{k: v for k, v in post.items() if k != "update_fields"}, "token": "x"},  # one for another
        {key: value for key, value in pre.items() if key != "raw"},  # a name missing
        {**pre, "raw": "no"},  # a value of another type
        {**post, "created": None},
        {**pre, "using": "Bearer abcdefgh12345678"},  # a text that needs a look
        {**pre, "using": "x" * 300},
        {**pre, "update_fields": frozenset({"Bearer abcdefgh12345678"})},  # a set never kept
        {**pre, "instance": object()},  # not a model instance
    ]
    for named in others:
        assert rendering._snapshot_save_kwargs(named, sensitive_pattern()) is None
        assert "abcdefgh12345678" not in repr(rendering.snapshot_kwargs(named, sensitive_pattern(), False))


def test_save_signal_kwargs_take_the_general_path_when_a_name_of_theirs_is_sensitive():
    item = Item.objects.create(name="a")
    named = {"instance": item, "raw": False, "using": "default", "update_fields": None}
    with override_settings(SIGNALTRACE={"SENSITIVE_KWARGS": "^using$"}):
        pattern = sensitive_pattern()
        assert rendering._snapshot_save_kwargs(named, pattern) is None
        assert rendering.render_kwargs(rendering.snapshot_kwargs(named, pattern, False))["using"] == REDACTED
    rendering.snapshot_kwargs(named, sensitive_pattern(), False)  # caches emptied with the settings
    assert rendering._snapshot_save_kwargs(named, sensitive_pattern()) is not None
