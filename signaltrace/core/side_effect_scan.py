"""Find receivers whose source publishes work outside ``transaction.on_commit``.

A static reading for the system check ``signaltrace.W102``: nothing is run. For
each receiver of the project's connected to a known signal, the receiver's own
body is parsed with :mod:`ast` and these calls are listed:

* Celery tasks: ``x.delay(...)`` and ``x.apply_async(...)``;
* e-mail: ``send_mail``, ``send_mass_mail``, ``mail_admins``, ``mail_managers``
  (as names or attributes), ``user.email_user(...)``, and ``.send(...)`` on a
  message: ``EmailMessage(...).send()``, ``EmailMultiAlternatives(...).send()``,
  or a name that says so (``msg``, ``message``, ``email``, ``welcome_mail``).

If the signal is sent inside a transaction, such a call publishes before the commit
and also when the transaction rolls back.

The rule for "deferred" (not reported): a call anywhere in the arguments of a call
whose function's name contains ``on_commit`` (``transaction.on_commit(lambda:
task.delay(pk))``, ``on_commit(partial(...))``, ``task.delay_on_commit(...)``, a
project's ``run_on_commit(...)``); calls in a nested ``def`` whose name is passed to
such a call; and the whole receiver when one of its decorators mentions
``on_commit``. Anything else in the body counts, even on a branch that checks
``connection.in_atomic_block``: a hint to read, not a verdict.

Only the receiver's own body is read, never the functions it calls. The whole
source file is parsed (from :mod:`linecache`, which ``inspect.getsource`` reads
too) rather than the extract ``inspect.getsource`` returns: an indented method, a
decorated function, a ``__call__`` and a lambda are then found as exact nodes,
with the file's own line numbers. A lambda is read only when it is the only one
starting on its line (its code says no more than the line). Receivers without
source (builtins, C functions, code made by ``exec``) are skipped; partials, bound
methods and ``functools.wraps`` decorators are unwrapped to the function that runs.

"The project's" receivers: not Django's own (``django.*``) nor signaltrace's, and
not in a file under site-packages, dist-packages or the standard library.
"""

from __future__ import annotations

import ast
import linecache
import os
import sysconfig
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from signaltrace.core.naming import _unwrap, discover_signals, receiver_info, short_path, signal_name
from signaltrace.safety import report_internal_error

#: ``SideEffectCall.kind`` values.
TASK, MAIL = "task", "mail"

_TASK_METHODS = frozenset({"delay", "apply_async"})
_MAIL_FUNCTIONS = frozenset({"send_mail", "send_mass_mail", "mail_admins", "mail_managers"})
_MAIL_METHODS = frozenset({"email_user"})
_MESSAGE_WORDS = ("mail", "message", "msg")
_MESSAGE_CLASS_ENDINGS = ("Message", "Alternatives")
_DEFERRING_WORD = "on_commit"
_NOT_THE_PROJECTS = frozenset({"django", "signaltrace"})
_LIBRARY_DIR_NAMES = frozenset({"site-packages", "dist-packages"})

Function = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


@dataclass(frozen=True)
class SideEffectCall:
    """One call in a receiver's source that publishes work outside ``on_commit``."""

    #: The receiver's dotted path (``accounts.signals.send_welcome``).
    receiver: str
    #: The source file, as the receiver's code names it.
    file: str
    #: The line of the call in ``file``.
    line: int
    #: What is called, as written: ``send_mail()``, ``notify.delay()``, ``EmailMessage(...).send()``.
    call: str
    #: :data:`TASK` or :data:`MAIL`.
    kind: str
    #: The signals it is connected to, by name.
    signals: tuple[str, ...]

    @property
    def location(self) -> str:
        """``accounts/signals.py:12``."""
        return f"{short_path(self.file)}:{self.line}"


def scan_receivers(signals: Iterable[Any] | None = None) -> list[SideEffectCall]:
    """The side-effect calls outside ``on_commit`` in the project's receivers of ``signals``
    (default: every signal held by a module attribute), in file and line order.

    Never raises: a receiver that cannot be read is skipped (and logged once).
    """
    found: dict[tuple[str, int, str], list[Any]] = {}  # code key -> [receiver, code, signal names]
    for signal in discover_signals() if signals is None else signals:
        name: str | None = None
        for entry in list(signal.receivers):
            receiver = _live(entry[1])
            if receiver is None:
                continue
            try:
                code = _code_of(receiver)
                if code is None:
                    continue
                key = (code.co_filename, code.co_firstlineno, code.co_name)
                if key not in found:
                    found[key] = [receiver, code, []]
                name = name or signal_name(signal)
                if name not in found[key][2]:
                    found[key][2].append(name)
            except Exception:  # noqa: BLE001 - a hostile receiver must not stop the scan
                report_internal_error("side_effect_scan.receivers")
    trees: dict[str, ast.Module | None] = {}
    calls: list[SideEffectCall] = []
    for receiver, code, names in found.values():
        try:
            calls.extend(_scan(receiver, code, tuple(names), trees))
        except Exception:  # noqa: BLE001 - the scan is a hint; never fail the check
            report_internal_error("side_effect_scan.scan")
    return sorted(calls, key=lambda call: (call.file, call.line, call.receiver, call.call))


def _live(ref: Any) -> Any:
    return ref() if isinstance(ref, weakref.ReferenceType) else ref


def _code_of(receiver: Any) -> Any:
    """The code object that runs when ``receiver`` is called, or None (builtins, C code)."""
    target = _unwrap(receiver)
    code = getattr(target, "__code__", None)
    if code is None and not isinstance(target, type):  # a callable instance: its class's __call__
        call = next((k.__dict__["__call__"] for k in type(target).__mro__ if "__call__" in k.__dict__), None)
        code = getattr(_unwrap(call), "__code__", None) if call is not None else None
    return code if hasattr(code, "co_filename") else None


def is_projects(name: str, file: str) -> bool:
    """Whether a receiver (dotted path, source file) is the project's own code."""
    if name.split(".", 1)[0] in _NOT_THE_PROJECTS:
        return False
    path = os.path.normpath(os.path.abspath(file))
    if _LIBRARY_DIR_NAMES.intersection(path.split(os.sep)):
        return False
    return not any(path.startswith(directory + os.sep) for directory in _library_dirs())


def _library_dirs() -> list[str]:
    """The interpreter's site-packages and standard library directories."""
    found = []
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        try:
            directory = sysconfig.get_path(key)
        except KeyError:
            continue
        if directory:
            found.append(os.path.normpath(directory))
    return found


def _scan(
    receiver: Any, code: Any, signals: tuple[str, ...], trees: dict[str, ast.Module | None]
) -> list[SideEffectCall]:
    name = receiver_info(receiver)[0]
    file = code.co_filename
    if not is_projects(name, file):
        return []
    if file not in trees:
        trees[file] = _parse(file, getattr(_unwrap(receiver), "__globals__", None))
    tree = trees[file]
    function = None if tree is None else _find_function(tree, code)
    if function is None or _deferred_by_decorator(function):
        return []
    return [
        SideEffectCall(receiver=name, file=file, line=line, call=call, kind=kind, signals=signals)
        for line, call, kind in _calls_outside_on_commit(function)
    ]


def _parse(file: str, module_globals: Any) -> ast.Module | None:
    """The file's syntax tree, or None when its source is not available or does not parse."""
    lines = linecache.getlines(file, module_globals if isinstance(module_globals, dict) else None)
    if not lines:
        return None
    try:
        return ast.parse("".join(lines), filename=file)
    except (SyntaxError, ValueError):
        return None


def _find_function(tree: ast.Module, code: Any) -> Function | None:
    """The node whose code is ``code``: by name and first line (a decorated function's code
    starts at its first decorator); a lambda only when it is the only one on its line."""
    line, name = code.co_firstlineno, code.co_name
    if name == "<lambda>":
        lambdas = [node for node in ast.walk(tree) if isinstance(node, ast.Lambda) and node.lineno == line]
        return lambdas[0] if len(lambdas) == 1 else None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            if line in (first, node.lineno):
                return node
    return None


def _callee_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _defers(call: ast.Call) -> bool:
    name = _callee_name(call.func)
    return name is not None and _DEFERRING_WORD in name


def _deferred_by_decorator(function: Function) -> bool:
    decorators = getattr(function, "decorator_list", [])
    return any(_DEFERRING_WORD in ast.unparse(decorator) for decorator in decorators)


def _calls_outside_on_commit(function: Function) -> list[tuple[int, str, str]]:
    """(line, call as written, kind) of each side-effect call in ``function``'s body."""
    body = [function.body] if isinstance(function, ast.Lambda) else function.body
    handed_over: set[str] = set()  # names passed to on_commit: nested defs that run after the commit
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Call) and _defers(node):
                for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
                    handed_over.update(n.id for n in ast.walk(argument) if isinstance(n, ast.Name))
    finder = _Finder(handed_over)
    for statement in body:
        finder.visit(statement)
    return finder.found


class _Finder(ast.NodeVisitor):
    """Collects side-effect calls that are not inside the arguments of an on_commit call."""

    def __init__(self, handed_over: set[str]) -> None:
        self.found: list[tuple[int, str, str]] = []
        self._handed_over = handed_over

    def visit_Call(self, node: ast.Call) -> None:
        if _defers(node):
            self.visit(node.func)  # on_commit's own receiver expression runs now; its arguments later
            return
        effect = _side_effect(node)
        if effect is not None:
            self.found.append((node.lineno, *effect))
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name not in self._handed_over:
            self.generic_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        if node.name not in self._handed_over:
            self.generic_visit(node)


def _side_effect(call: ast.Call) -> tuple[str, str] | None:
    """(the call as written, kind) if ``call`` publishes a task or sends mail."""
    func = call.func
    if isinstance(func, ast.Name):
        return (f"{func.id}()", MAIL) if func.id in _MAIL_FUNCTIONS else None
    if not isinstance(func, ast.Attribute):
        return None
    written = f"{_written(func.value)}.{func.attr}()"
    if func.attr in _TASK_METHODS:
        return written, TASK
    if func.attr in _MAIL_FUNCTIONS or func.attr in _MAIL_METHODS:
        return written, MAIL
    # ``something.send(sender=...)`` sends a signal (``email_confirmed.send``), not mail.
    is_signal = any(keyword.arg == "sender" for keyword in call.keywords)
    if func.attr == "send" and not is_signal and _is_message(func.value):
        return written, MAIL
    return None


def _is_message(value: ast.expr) -> bool:
    """``EmailMessage(...)``, ``EmailMultiAlternatives(...)``, or a name like ``msg``/``email``."""
    if isinstance(value, ast.Call):
        name = _callee_name(value.func)
        return name is not None and name.endswith(_MESSAGE_CLASS_ENDINGS)
    name = _callee_name(value)
    return name is not None and any(word in name.lower() for word in _MESSAGE_WORDS)


def _written(value: ast.expr) -> str:
    """A short form of what a method is called on: ``tasks.notify``, ``EmailMessage(...)``."""
    if isinstance(value, ast.Name):
        return value.id
    if isinstance(value, ast.Attribute):
        return f"{_written(value.value)}.{value.attr}"
    if isinstance(value, ast.Call):
        return f"{_written(value.func)}(...)"
    return "(...)"
