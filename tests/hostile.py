"""One shared table of hostile signal kwargs and secrets, for tests/test_hostile_inputs.py.

Every output surface (the trace, ``to_dict()``, the toolbar panel, the spans, the pytest
report and failure text, the loop message, the signal graph) is checked against this
same table, so a value added here is checked everywhere.

Each secret carries a unique marker (``SECRET-7f3a-NN``): a test asserts that no marker
(:data:`MARKER`, their common prefix) appears anywhere in an output. The probes record
every time signaltrace runs their code in :data:`PROBE_CALLS`, and those that would run
SQL do so for real (``Item.objects.count()``), so counting queries proves "no SQL".

Values are made fresh by each :attr:`Hostile.make` call (a generator is consumed once, a
lazy object evaluated once), so a test can check afterwards that they were left untouched.
"""

from __future__ import annotations

import inspect
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.dispatch import Signal
from django.utils.functional import SimpleLazyObject, empty
from django.utils.safestring import SafeString

from signaltrace import SignalLoopError

#: The common prefix of every secret marker; no output may contain it.
MARKER = "SECRET-7f3a"
#: A harmless value under a harmless name: it must appear wherever kwargs are shown, which
#: proves that the surface really shows kwargs (so the absence of a marker means something).
VISIBLE = "VISIBLE-c0ffee"
#: Markup that must never reach HTML unescaped (the panel), nor Mermaid labels (the graph).
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
TEMPLATE = "{{ 7*7 }}"
RAW_MARKUP = ("<script>alert(", "<img src=x")
#: One megabyte.
MB = 1_000_000

#: Which hostile code ran: ``"QueryingObject.__repr__"``, ``"lazy object evaluated"`` ...
#: Emptied by the tests before each use; signaltrace must leave it empty.
PROBE_CALLS: list[str] = []

table_sent = Signal()
looped = Signal()


def secret(number: int) -> str:
    return f"{MARKER}-{number:02d}"


def _item_model() -> Any:
    from tests.testapp.models import Item  # needs the app registry: imported when a value is made

    return Item


# ------------------------------------------------------------------ hostile objects


class RaisingRepr:
    """``repr()`` and ``str()`` raise."""

    def __repr__(self) -> str:
        PROBE_CALLS.append("RaisingRepr.__repr__")
        raise RuntimeError("__repr__ exploded")

    def __str__(self) -> str:
        PROBE_CALLS.append("RaisingRepr.__str__")
        raise RuntimeError("__str__ exploded")


class HugeRepr:
    """``repr()`` is one megabyte, starting with markup."""

    def __repr__(self) -> str:
        PROBE_CALLS.append("HugeRepr.__repr__")
        return SCRIPT + "R" * MB


class QueryingObject:
    """Every way of looking at it runs SQL (and is recorded): ``repr``, ``str``, ``==``,
    ``hash``, ``len``, ``iter``, ``bool``, a missing attribute, ``isinstance`` (``__class__``)."""

    def _touched(self, how: str) -> int:
        PROBE_CALLS.append(f"QueryingObject.{how}")
        count: int = _item_model().objects.count()
        return count

    def __repr__(self) -> str:
        return f"<QueryingObject of {self._touched('__repr__')} items>"

    def __str__(self) -> str:
        return f"{self._touched('__str__')} items"

    def __eq__(self, other: object) -> bool:
        return self._touched("__eq__") < 0

    def __hash__(self) -> int:
        return self._touched("__hash__")

    def __len__(self) -> int:
        return self._touched("__len__")

    def __iter__(self) -> Iterator[int]:
        return iter([self._touched("__iter__")])

    def __bool__(self) -> bool:
        return self._touched("__bool__") >= 0

    def __getattr__(self, name: str) -> Any:
        self._touched(f"__getattr__({name})")
        raise AttributeError(name)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance() reads it: user code
        self._touched("__class__")
        return type(self)


class SecretHolder:
    """An object whose ``repr`` shows a secret (rendered only with ``REPR_OBJECTS``)."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"SecretHolder({self.value!r})"


Header = namedtuple("Header", ["name", "value"])


def deep_list(levels: int = 5000) -> list[Any]:
    """``[[[...]]]`` ``levels`` deep: ``repr`` and ``json.dumps`` raise RecursionError on it."""
    top: list[Any] = []
    current = top
    for _ in range(levels):
        inner: list[Any] = []
        current.append(inner)
        current = inner
    return top


def self_dict() -> dict[str, Any]:
    value: dict[str, Any] = {"name": "loop"}
    value["self"] = value
    return value


def lazy_item() -> SimpleLazyObject:
    """A lazy object that runs SQL when evaluated."""

    def evaluate() -> Any:
        PROBE_CALLS.append("lazy object evaluated")
        return _item_model().objects.first()

    return SimpleLazyObject(evaluate)


def lazy_text(text: str, evaluated: bool) -> SimpleLazyObject:
    """A lazy object wrapping ``text``: already evaluated (by the application) or not."""
    if evaluated:
        lazy = SimpleLazyObject(lambda: text)
        str(lazy)
        return lazy

    def evaluate() -> str:
        PROBE_CALLS.append("lazy text evaluated")
        return text

    return SimpleLazyObject(evaluate)


def fresh_generator() -> Iterator[int]:
    def numbers() -> Iterator[int]:
        PROBE_CALLS.append("generator consumed")
        yield from range(3)

    return numbers()


def _not_evaluated(lazy: Any) -> bool:
    return lazy._wrapped is empty


def _queryset_not_evaluated(queryset: Any) -> bool:
    return queryset._result_cache is None


def _generator_not_started(generator: Any) -> bool:
    return inspect.getgeneratorstate(generator) == inspect.GEN_CREATED


# ------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Hostile:
    """One row of the table: a kwarg ``name`` and how to make its hostile value.

    ``secret``: the marker the value carries, which must appear in no output.
    ``redacted``: the rendered value must be exactly ``REDACTED``.
    ``visible``: text the rendered value must contain (the value is shown, not dropped).
    ``untouched``: whether the value is as it was made (not evaluated, not consumed).
    ``user_repr``: its ``__repr__`` is the user's own, which ``REPR_OBJECTS`` allows to run.
    ``repr_queries``: queries that ``__repr__`` runs (allowed only with ``REPR_OBJECTS``).
    """

    id: str
    name: str
    make: Callable[[], Any]
    secret: str | None = None
    redacted: bool = False
    visible: str | None = None
    untouched: Callable[[Any], bool] | None = None
    user_repr: bool = False
    repr_queries: int = 0


TABLE: tuple[Hostile, ...] = (
    # Markup and template syntax: shown (they are data), escaped only where HTML is made.
    Hostile("markup-script", "comment", lambda: SCRIPT, visible=SCRIPT),
    Hostile("markup-img", "title", lambda: IMG, visible=IMG),
    Hostile("markup-template", "greeting", lambda: TEMPLATE, visible=TEMPLATE),
    Hostile("markup-kwarg-name", '<script>alert("name")</script>', lambda: "kwarg named with markup"),
    # Values that break repr, or are huge.
    Hostile("raising-repr", "broken", RaisingRepr, user_repr=True),
    Hostile("huge-repr", "verbose", HugeRepr, user_repr=True),
    Hostile("huge-str", "body", lambda: SCRIPT + "A" * MB, visible=SCRIPT),
    Hostile("huge-bytes", "payload", lambda: SCRIPT.encode() + b"\x00" * MB, visible=SCRIPT),
    Hostile("huge-tuple", "ids", lambda: tuple(range(MB))),
    Hostile("huge-int", "number", lambda: 10**5000),
    Hostile("deep-list", "tree", deep_list),
    Hostile("self-dict", "graph", self_dict),
    # Values whose evaluation or repr runs SQL.
    Hostile("model-str-queries", "item", lambda: _item_model()(pk=42, name=SCRIPT), visible="pk=42"),
    Hostile("querying-object", "probe", QueryingObject, user_repr=True, repr_queries=1),
    Hostile("lazy-object", "user", lazy_item, untouched=_not_evaluated),
    Hostile("lazy-queryset", "items", lambda: _item_model().objects.all(), untouched=_queryset_not_evaluated),
    Hostile("generator", "stream", fresh_generator, untouched=_generator_not_started),
    # Secrets by kwarg name, one value type each.
    Hostile("password", "password", lambda: secret(1), secret(1), redacted=True),
    Hostile("api_key", "api_key", lambda: secret(2).encode(), secret(2), redacted=True),
    Hostile("token", "token", lambda: (secret(3), 1), secret(3), redacted=True),
    Hostile("authorization", "authorization", lambda: f"Bearer {secret(4)}", secret(4), redacted=True),
    Hostile("cookie", "cookie", lambda: {"sessionid": secret(5)}, secret(5), redacted=True),
    Hostile("sessionid", "sessionid", lambda: [secret(6)], secret(6), redacted=True),
    Hostile("csrftoken", "csrftoken", lambda: SecretHolder(secret(7)), secret(7), redacted=True),
    Hostile(
        "credit_card", "credit_card", lambda: f"4111 1111 1111 1111 {secret(8)}", secret(8), redacted=True
    ),
    Hostile(
        "cvv",
        "cvv",
        lambda: lazy_text(secret(9), evaluated=False),
        secret(9),
        redacted=True,
        untouched=_not_evaluated,
    ),
    Hostile("ssn", "ssn", lambda: f"078-05-1120 {secret(10)}", secret(10), redacted=True),
    # Values that look like credentials, under innocent names.
    Hostile("bearer-value", "note", lambda: f"Bearer abc.def.ghi.{secret(11)}", secret(11), redacted=True),
    Hostile(
        "authorization-pair",
        "header",
        lambda: ("Authorization", f"Bearer xyz {secret(12)}"),
        secret(12),
        visible="'Authorization'",
    ),
    Hostile(
        "nested-basic-auth",
        "request_meta",
        lambda: {"headers": {"Authorization": f"Basic Zm9vOmJhcg== {secret(13)}"}},
        secret(13),
    ),
    Hostile("bytes-bearer", "raw", lambda: f"bearer {secret(14)}".encode(), secret(14), redacted=True),
    Hostile("token-in-frozenset", "tags", lambda: frozenset({f"Token {secret(15)}"}), secret(15)),
    Hostile("cookie-pair", "pair", lambda: ("Cookie", f"sessionid={secret(16)}"), secret(16)),
    Hostile(
        "evaluated-lazy-jwt", "wrapped", lambda: lazy_text(f"JWT {secret(17)}", evaluated=True), secret(17)
    ),
    Hostile("safestring-bearer", "safe_text", lambda: SafeString(f"Bearer {secret(18)}"), secret(18)),
    Hostile(
        "namedtuple-pair", "named_pair", lambda: Header("Authorization", f"Bearer {secret(19)}"), secret(19)
    ),
    Hostile("list-pair", "list_pair", lambda: ["Authorization", f"Basic {secret(20)}"], secret(20)),
    # The control: harmless, so it must be shown wherever kwargs are.
    Hostile("control", "remark", lambda: VISIBLE, visible=VISIBLE),
)


def session_row() -> Any:
    """An unsaved ``django.contrib.sessions`` row: its primary key is the session key, a credential."""
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    return Session(session_key=secret(21), session_data="", expire_date=timezone.now())


#: Rows signaltrace is known to leak (each has an xfail test in tests/test_hostile_inputs.py).
#: Kept out of :data:`TABLE` so the tests over the table still guard everything else; move
#: a row into the table once signaltrace handles it.
KNOWN_LEAKS: tuple[Hostile, ...] = (Hostile("session-row", "row", session_row, secret(21)),)

#: Every secret marker of the table and of the known leaks.
SECRETS: tuple[str, ...] = tuple(entry.secret for entry in TABLE + KNOWN_LEAKS if entry.secret is not None)
#: Kwarg names the issue lists as secrets: each must be in the table.
SECRET_NAMES = (
    "password",
    "api_key",
    "token",
    "authorization",
    "cookie",
    "sessionid",
    "csrftoken",
    "credit_card",
    "cvv",
    "ssn",
)
#: Senders of the whole-table dispatches: markup reaches every surface that names a sender.
SENDERS: tuple[Any, ...] = (SCRIPT, IMG, TEMPLATE)


def build(entries: Iterable[Hostile] = TABLE) -> dict[str, Any]:
    """Fresh hostile kwargs: ``{entry.name: entry.make()}``."""
    return {entry.name: entry.make() for entry in entries}


def leaked(text: str) -> list[str]:
    """The secret markers found in ``text`` (empty: none leaked)."""
    if MARKER not in text:
        return []
    return [marker for marker in SECRETS if marker in text] or [MARKER]


def untouched_failures(kwargs: dict[str, Any], entries: Iterable[Hostile] = TABLE) -> list[str]:
    """Ids of entries whose value was evaluated or consumed."""
    return [
        entry.id
        for entry in entries
        if entry.untouched is not None and entry.name in kwargs and not entry.untouched(kwargs[entry.name])
    ]


# ------------------------------------------------------------------ receivers


def listen(sender: Any, **kwargs: Any) -> None:
    """Receives every kwarg and touches none."""
    return None


def resend(sender: Any, signal: Signal, **kwargs: Any) -> None:
    """Sends the same signal again with the same sender and kwargs: a loop."""
    signal.send(sender=sender, **kwargs)


@contextmanager
def connected() -> Iterator[None]:
    """:func:`listen` on :data:`table_sent` and :func:`resend` on :data:`looped`, for one block."""
    table_sent.connect(listen, weak=False)
    looped.connect(resend, weak=False)
    try:
        yield
    finally:
        table_sent.disconnect(listen)
        looped.disconnect(resend)


def send_table(kwargs: dict[str, Any]) -> SignalLoopError:
    """The whole table, once per sender of :data:`SENDERS`, then a loop with it.

    Needs :func:`connected` (or the same receivers connected otherwise). Returns the
    loop error signaltrace raised; ``AssertionError`` if it raised none.
    """
    for sender in SENDERS:
        table_sent.send(sender=sender, **kwargs)
    try:
        looped.send(sender=SENDERS[0], **kwargs)
    except SignalLoopError as error:
        return error
    raise AssertionError("the loop was not stopped")
