"""What a trace holds about transactions and the work that escapes them, as objects.

* :class:`Transaction`: the transaction a dispatch ran in (``Dispatch.transaction``);
* :class:`OnCommitCallback`: a callback registered with ``on_commit``, and its fate;
* :class:`SideEffect`: a Celery task published or an e-mail sent by a receiver;
* :class:`BypassedWrite`: a ``bulk_create``/``bulk_update``/``update`` on a model whose
  save receivers therefore did not run;
* :class:`Hazard`: one problem found among them, with a message, a place and the fix.

They are made from the core's records when a trace is read (or when an observer is
told), like ``Dispatch``; times are ``perf_counter_ns`` readings in ``Trace.findings``
and relative to the ``record()`` block in ``Trace.on_commit_callbacks`` and the like.
See docs/transactions.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from signaltrace.core.atomics import AtomicBlock
from signaltrace.core.naming import receiver_info, sender_name, short_path, signal_name

#: ``Hazard.kind`` values.
TASK_BEFORE_COMMIT = "task_before_commit"
MAIL_BEFORE_COMMIT = "mail_before_commit"
BYPASSED_WRITE = "bypassed_write"

#: ``OnCommitCallback.fate`` values.
PENDING, RAN, DISCARDED, RAN_AT_ONCE = "pending", "ran", "discarded", "ran at once"


@dataclass(frozen=True)
class ReceiverRef:
    """A receiver connected to a signal (one that did not run, or forced a slow path)."""

    signal: str
    sender: str
    receiver: str
    file: str
    line: int

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""


@dataclass(frozen=True)
class Transaction:
    """The transaction a dispatch (or a callback, a side effect) ran in, on one database alias.

    ``depth`` counts only ``atomic()`` blocks the application opened: the blocks Django's
    ``TestCase`` opens for itself do not count, so 0 means autocommit as the
    application sees it. ``outcome`` is ``autocommit``, ``committed``, ``rolled back``
    or ``open`` (not ended when the trace was read); ``rollback_scope`` says whether a
    rollback undid a ``savepoint`` or the whole ``transaction``. Under ``TestCase``,
    "committed" means the application's outermost block ended without error (its
    savepoint was released into the test's transaction).
    """

    alias: str
    in_atomic: bool
    depth: int
    durable: bool
    outcome: str
    rollback_scope: str | None = None

    @property
    def rolled_back(self) -> bool:
        return self.outcome == "rolled back"

    @property
    def summary(self) -> str:
        """``autocommit on 'default'``; ``atomic block (depth 2) on 'default', rolled back (savepoint)``."""
        if not self.in_atomic:
            return f"autocommit on {self.alias!r}"
        durable = ", durable" if self.durable else ""
        text = f"atomic block (depth {self.depth}{durable}) on {self.alias!r}, {self.outcome}"
        return f"{text} ({self.rollback_scope})" if self.rollback_scope else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "in_atomic": self.in_atomic,
            "depth": self.depth,
            "durable": self.durable,
            "outcome": self.outcome,
            "rollback_scope": self.rollback_scope,
        }


def transaction_of(recorded: Any) -> Transaction | None:
    """The :class:`Transaction` for what a record holds: an ``AtomicBlock`` (its outcome as
    known now), an alias (autocommit) or None (not a model signal, no block open)."""
    if recorded is None:
        return None
    if type(recorded) is str:
        made = _autocommit.get(recorded)
        if made is None:
            if len(_autocommit) >= 64:  # aliases are few; a custom signal's "using" may not be
                _autocommit.clear()
            made = _autocommit[recorded] = Transaction(recorded, False, 0, False, "autocommit")
        return made
    if isinstance(recorded, AtomicBlock):
        outcome, scope = recorded.outcome()
        cached = recorded.made
        if cached is not None and cached.outcome == outcome and cached.rollback_scope == scope:
            return cached
        made = Transaction(recorded.alias, True, recorded.depth, recorded.durable, outcome, scope)
        recorded.made = made
        return made
    return None


# alias -> its autocommit Transaction (immutable, so shared).
_autocommit: dict[str, Transaction] = {}


def _receiver_dict(receiver: Any) -> dict[str, Any] | None:
    if receiver is None:
        return None
    return {"receiver": receiver.receiver_name, "file": receiver.file, "line": receiver.line}


@dataclass(eq=False)
class OnCommitCallback:
    """A callback registered with ``transaction.on_commit()`` (or ``connection.on_commit()``,
    Celery's ``delay_on_commit()``), and its fate.

    ``fate``: ``pending`` (its transaction has not committed: in a ``TestCase``, until
    ``captureOnCommitCallbacks(execute=True)`` runs it), ``ran`` (after the commit, at
    ``ran_ns``), ``discarded`` (a rollback dropped it, or an earlier callback raised)
    or ``ran at once`` (registered outside any transaction: Django runs it at once).
    """

    callback: str
    file: str
    line: int
    alias: str
    robust: bool
    registered_ns: int
    transaction: Transaction | None
    fate: str = PENDING
    ran_ns: int | None = None
    duration_ns: int | None = None
    exception: BaseException | None = None
    #: The ``ReceiverCall`` that registered it (None outside receivers or outside a trace).
    receiver: Any = field(default=None, repr=False)

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "callback": self.callback,
            "file": self.file,
            "line": self.line,
            "alias": self.alias,
            "robust": self.robust,
            "registered_ns": self.registered_ns,
            "transaction": None if self.transaction is None else self.transaction.to_dict(),
            "fate": self.fate,
            "ran_ns": self.ran_ns,
            "duration_ns": self.duration_ns,
            "exception": None if self.exception is None else type(self.exception).__name__,
            "registered_by": _receiver_dict(self.receiver),
        }


@dataclass(eq=False)
class SideEffect:
    """Work a receiver started that leaves the database: ``kind`` ``celery_task`` or ``email``.

    ``what`` names it: the task's name, or the mail's subject and how many recipients
    (never their addresses). ``transaction`` is the one open on the receiver's alias
    when it happened. ``file``/``line`` is the line that published or sent it (outside
    Django and Celery); ``receiver_*`` name the receiver it happened in.
    """

    kind: str
    what: str
    start_ns: int
    transaction: Transaction | None
    receiver: Any = field(default=None, repr=False)
    receiver_name: str = ""
    receiver_file: str = ""
    receiver_line: int = 0
    file: str = ""
    line: int = 0

    @property
    def in_transaction(self) -> bool:
        return self.transaction is not None and self.transaction.in_atomic

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""

    @property
    def label(self) -> str:
        """``Celery task shop.tasks.confirm`` or ``an e-mail to 2 recipients`` (no subject)."""
        if self.kind == "celery_task":
            return f"Celery task {self.what}"
        _subject, to, recipients = self.what.rpartition(" to ")
        return f"an e-mail to {recipients}" if to else "an e-mail"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for stores that outlive the request (the panel's): the label, never
        the mail's subject."""
        return {
            "kind": self.kind,
            "label": self.label,
            "start_ns": self.start_ns,
            "transaction": None if self.transaction is None else self.transaction.to_dict(),
            "file": self.file,
            "line": self.line,
            "receiver": _receiver_dict(self.receiver),
        }


@dataclass(eq=False)
class BypassedWrite:
    """A ``bulk_create``, ``bulk_update`` or ``update`` (or its async twin) on a model whose
    ``pre_save``/``post_save`` receivers it did not run: Django sends no signals for them."""

    model: str
    operation: str
    rows: int
    #: The ``pre_save``/``post_save`` receivers connected for the model, none of which ran.
    receivers: tuple[ReceiverRef, ...]
    #: Where it was called from: ``file:line`` of the caller outside Django.
    file: str
    line: int
    start_ns: int
    duration_ns: int
    receiver: Any = field(default=None, repr=False)
    #: The receiver it was called in ("" outside receivers).
    receiver_name: str = ""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""

    @property
    def summary(self) -> str:
        """``bulk_create of 3 looplab.Post rows: 2 post_save receivers did not run``."""
        signals = sorted({found.signal for found in self.receivers})
        count = len(self.receivers)
        return (
            f"{self.operation} of {self.rows} {self.model} rows: "
            f"{count} {'/'.join(signals)} receiver{'s' if count != 1 else ''} did not run"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "operation": self.operation,
            "rows": self.rows,
            "receivers": [
                {
                    "signal": r.signal,
                    "sender": r.sender,
                    "receiver": r.receiver,
                    "file": r.file,
                    "line": r.line,
                }
                for r in self.receivers
            ],
            "file": self.file,
            "line": self.line,
            "start_ns": self.start_ns,
            "duration_ns": self.duration_ns,
            "summary": self.summary,
            "receiver": _receiver_dict(self.receiver),
        }


@dataclass(eq=False)
class Hazard:
    """One problem found in a trace: ``kind``, a ``message`` with the fix, and its ``place``
    (``file:line``). ``finding`` is the :class:`SideEffect` or :class:`BypassedWrite`."""

    kind: str
    message: str
    place: str
    start_ns: int
    finding: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "place": self.place, "start_ns": self.start_ns}


def _named(name: str, file: str, line: int) -> str:
    """``app.receivers.confirm (app/receivers.py:12)``, the file as short as on the import path."""
    return f"{name} ({short_path(file)}:{line})" if file else name


def receiver_refs(signal: Any, sender: Any) -> list[ReceiverRef]:
    """The receivers ``signal`` would call for ``sender`` now (Django's own lookup, no call made)."""
    if not signal.has_listeners(sender):
        return []
    live = signal._live_receivers(sender)
    # Django 5.0+ returns (sync receivers, async receivers); 4.2 one list.
    groups = live if isinstance(live, tuple) else (live,)
    name_of_signal, name_of_sender = signal_name(signal), sender_name(sender)
    found = []
    for group in groups:
        for receiver in group:
            name, file, line = receiver_info(receiver)
            found.append(ReceiverRef(name_of_signal, name_of_sender, name, file, line))
    return found


def hazard_of(finding: Any) -> Hazard | None:
    """The hazard a finding is, if it is one: a side effect inside an application
    transaction, or any bypassed write."""
    if isinstance(finding, SideEffect):
        transaction = finding.transaction
        if transaction is None or not transaction.in_atomic or not finding.receiver_name:
            return None
        if finding.kind == "celery_task":
            kind, verb, risk = (
                TASK_BEFORE_COMMIT,
                "published",
                "a worker can start it before the commit (and fail with DoesNotExist) "
                "or run it for rows that are rolled back",
            )
            fix = (
                "publish it after the commit: task.delay_on_commit(...) "
                "or transaction.on_commit(lambda: task.delay(...))"
                if transaction.alias == "default"
                else "publish it after this database's commit: "  # delay_on_commit waits for 'default' only
                f"transaction.on_commit(partial(task.delay, ...), using={transaction.alias!r})"
            )
        else:
            kind, verb, risk = (
                MAIL_BEFORE_COMMIT,
                "sent",
                "it goes out even if the transaction is rolled back",
            )
            fix = "send it after the commit: transaction.on_commit(lambda: send_mail(...))"
        receiver = _named(finding.receiver_name, finding.receiver_file, finding.receiver_line)
        at = f" at {finding.location}" if finding.location else ""
        message = (
            f"{receiver} {verb} {finding.label}{at} inside a transaction: {transaction.summary}; "
            f"{risk}. Fix: {fix}."
        )
        place = finding.location or (
            f"{short_path(finding.receiver_file)}:{finding.receiver_line}" if finding.receiver_file else ""
        )
        return Hazard(kind, message, place, finding.start_ns, finding)
    if isinstance(finding, BypassedWrite):
        names = ", ".join(_named(r.receiver, r.file, r.line) for r in finding.receivers)
        message = (
            f"{finding.summary} ({names}); called at {finding.location or '?'}"
            f"{' in receiver ' + finding.receiver_name if finding.receiver_name else ''}. "
            "Fix: save() each object, or do in the same place what the receivers do "
            "(or send the signals yourself) if the write must stay in bulk."
        )
        return Hazard(BYPASSED_WRITE, message, finding.location, finding.start_ns, finding)
    return None
