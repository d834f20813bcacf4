"""Human names for signals, senders and receivers.

Signals have no names in Django, so a signal's name is found by looking for the
module attribute that holds it: ``post_save`` for Django's own signals, the dotted
path (``shop.signals.order_paid``) for everyone else's. Names are resolved when a
trace is read, never on the dispatch hot path, except :func:`receiver_info`, which
is cached per receiver function.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from functools import lru_cache
from types import ModuleType
from typing import Any

from django.dispatch import Signal

# id(signal) -> (weak reference, name), filled by scanning modules. Weak: a signal
# created in a test and dropped must not be kept alive by its name; the reference's
# callback drops the entry, so an id found here is the signal it was made for. Keyed
# by id, never by the signal: a Signal subclass may define __eq__ and __hash__.
_signal_names: dict[int, tuple[weakref.ref[Any], str]] = {}
# What sys.modules looked like at the last scan: (count, last module name). The count
# alone misses one module removed and another imported since.
_scanned_modules: tuple[int, str | None] = (0, None)
_scan_lock = threading.Lock()

# Modules that import many signals just to re-export or use them; never a signal's
# home when a better candidate exists.
_DJANGO_PREFIX = "django."


def _signal_types() -> set[type]:
    """Signal and all its subclasses, compared by exact type during the scan."""
    found: set[type] = set()
    pending = [Signal]
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.add(cls)
            pending.extend(cls.__subclasses__())
    return found


def _candidate_rank(module_name: str) -> tuple[int, int, int]:
    """Lower is better: Django's own modules, then ``*signals`` modules, shortest."""
    is_django = module_name.startswith(_DJANGO_PREFIX) or module_name == "django"
    return (0 if is_django else 1, 0 if module_name.endswith("signals") else 1, len(module_name))


def _module_signals(modules: list[tuple[str, Any]]) -> Iterator[tuple[str, str, Signal]]:
    """``(module name, attribute, signal)`` for every signal held by a module attribute.

    Compares ``type(value)`` instead of ``isinstance`` so lazy objects (which answer
    ``isinstance`` by evaluating themselves) are never touched.
    """
    signal_types = _signal_types()
    for module_name, module in modules:
        if not isinstance(module, ModuleType):
            continue
        try:
            attributes = list(vars(module).items())
        except Exception:  # noqa: BLE001 - a hostile module must not stop the scan
            continue
        for attribute, value in attributes:
            if type(value) in signal_types and not attribute.startswith("__"):
                yield module_name, attribute, value


def discover_signals() -> list[Signal]:
    """Every signal held by a module attribute of an imported module, each once."""
    found: dict[int, Signal] = {}
    for _module_name, _attribute, signal in _module_signals(list(sys.modules.items())):
        found.setdefault(id(signal), signal)
    return list(found.values())


def _scan_modules() -> None:
    """Name every signal held by a module attribute in ``sys.modules``."""
    global _scanned_modules
    best: dict[int, tuple[tuple[int, int, int], Signal, str]] = {}
    modules = list(sys.modules.items())
    for module_name, attribute, signal in _module_signals(modules):
        rank = _candidate_rank(module_name)
        current = best.get(id(signal))
        if current is None or rank < current[0]:
            name = attribute if rank[0] == 0 else f"{module_name}.{attribute}"
            best[id(signal)] = (rank, signal, name)
    for _rank, signal, name in best.values():
        _remember_name(signal, name)
    _scanned_modules = _modules_state()


def _modules_state() -> tuple[int, str | None]:
    """(how many modules are imported, the name of the last one): changes with any import."""
    modules = sys.modules
    try:
        return len(modules), next(reversed(modules))
    except (StopIteration, RuntimeError):  # empty, or changed while read by another thread
        return len(modules), None


def _remember_name(signal: Signal, name: str) -> None:
    key = id(signal)
    try:
        ref = weakref.ref(signal, lambda _ref, key=key: _signal_names.pop(key, None))
    except TypeError:
        return  # not weak-referenceable: named again when asked
    _signal_names[key] = (ref, name)


def _known_name(signal: Signal) -> str | None:
    entry = _signal_names.get(id(signal))
    return None if entry is None else entry[1]


def signal_name(signal: Signal) -> str:
    """``post_save`` for Django's signals, ``module.attribute`` for others.

    Scans again only when modules were imported since the last scan; a signal not
    found is named by its id and is looked for again next time.
    """
    name = _known_name(signal)
    if name is not None:
        return name
    with _scan_lock:
        if _modules_state() != _scanned_modules:
            _scan_modules()
    name = _known_name(signal)
    if name is not None:
        return name
    return f"{type(signal).__name__} at {id(signal):#x}"


def known_signal_name(signal: Signal) -> str | None:
    """The name :func:`signal_name` gives, or None while the signal has no name yet
    (it is then named by its id, and may be named later: don't cache that)."""
    signal_name(signal)  # scans modules if needed
    return _known_name(signal)


def register_signal_name(signal: Signal, name: str) -> None:
    """Give a signal an explicit name (for signals not held by a module attribute)."""
    _remember_name(signal, name)


def dotted_path(obj: Any) -> str:
    """``module.qualname`` of a function or class."""
    module = _attribute(obj, "__module__") or "?"
    qualname = _attribute(obj, "__qualname__") or _attribute(obj, "__name__")
    if qualname is None:
        qualname = type(obj).__qualname__
    return f"{module}.{qualname}"


_PLAIN_SENDERS = (str, int, float, bool, bytes)
_NAMED_BY_PATH = (types.FunctionType, types.MethodType, types.BuiltinFunctionType)


def sender_name(sender: Any) -> str:
    """``app_label.Model`` for models, the dotted path for classes and functions.

    Plain values are shown by ``repr``; any other object by its type, because its
    ``repr`` or ``__str__`` may run arbitrary code (or SQL). Only ``type(sender)``
    is asked what the sender is: ``isinstance`` would read a ``__class__``
    property, which proxies (``SimpleLazyObject``) and hostile objects define.
    """
    if sender is None:
        return "None"
    kind = type(sender)
    if issubclass(kind, type):
        meta = sender.__dict__.get("_meta")
        label = getattr(meta, "label", None)
        if isinstance(label, str):
            return label
        return dotted_path(sender)
    if kind in _PLAIN_SENDERS:
        text = repr(sender)
        return text if len(text) <= 80 else text[:79] + "…"
    if issubclass(kind, types.ModuleType):
        return sender.__dict__.get("__name__", "?")
    if issubclass(kind, _NAMED_BY_PATH):
        return dotted_path(sender)
    return f"<{dotted_path(kind)} object>"


def sender_type_name(sender: Any) -> str:
    """What a sender is, never an instance's value: the label of a class, else its type.

    For span attributes, which must not carry values (``'nobody'`` becomes
    ``<builtins.str object>``).
    """
    if sender is None:
        return "None"
    if issubclass(type(sender), type) or issubclass(type(sender), _NAMED_BY_PATH):
        return sender_name(sender)
    return f"<{dotted_path(type(sender))} object>"


ReceiverInfo = tuple[str, str, int]

# id(function) -> (weak reference, info). Weak so the cache never keeps a receiver
# alive: the reference's callback drops the entry when the function dies, before
# its id can be reused, so an id found here is always the function it was made
# for. (Functions that cannot be weakly referenced are not cached.)
_receiver_infos: dict[int, tuple[weakref.ref[Any], ReceiverInfo]] = {}

#: Read-only lookup in that cache for the recording hot path (the dict's own ``get``, as
#: cheap as a lookup gets): ``cached_receiver_info(id(function))`` gives ``(weak
#: reference, info)`` or None (then call :func:`function_info` or :func:`receiver_info`).
cached_receiver_info: Callable[[int], tuple[weakref.ref[Any], ReceiverInfo] | None] = _receiver_infos.get


def _attribute(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)`` that also survives a ``__getattr__`` raising anything."""
    try:
        return getattr(obj, name, None)
    except Exception:  # noqa: BLE001 - hostile objects are expected
        return None


def _function_of(receiver: Any) -> Any:
    """A bound method's function, else the receiver itself."""
    function = _attribute(receiver, "__func__")
    return receiver if function is None else function


def _unwrap(receiver: Any) -> Any:
    """The function whose code runs: bound methods, partials, decorated wrappers."""
    target = _function_of(receiver)
    for _ in range(10):
        wrapped = _attribute(target, "__wrapped__") or _attribute(target, "func")
        if wrapped is None or wrapped is target or not callable(wrapped):
            break
        target = _function_of(wrapped)
    return target


def _compute_receiver_info(receiver: Any) -> ReceiverInfo:
    target = _unwrap(receiver)
    code = _attribute(target, "__code__")
    if code is None:
        call_method = type(target).__dict__.get("__call__")  # callable instances
        code = getattr(call_method, "__code__", None)
        name = dotted_path(type(target)) if not inspect.isroutine(target) else dotted_path(target)
    else:
        name = dotted_path(target)
    if code is None:
        return (name, "", 0)
    return (name, code.co_filename, code.co_firstlineno)


def function_info(receiver: Any) -> tuple[int, ReceiverInfo | None]:
    """``(id of the receiver's function, its cached info or None)``: a bound method is found
    by its ``__func__`` (the hot path looks a plain function up with :data:`cached_receiver_info`
    itself first)."""
    function = _function_of(receiver)
    cached = _receiver_infos.get(id(function))
    return id(function), (None if cached is None else cached[1])


def receiver_info(receiver: Any) -> ReceiverInfo:
    """(dotted name, source file, first line) of a receiver, cached per function."""
    key_object = _function_of(receiver)
    key = id(key_object)
    cached = _receiver_infos.get(key)
    if cached is not None:
        return cached[1]
    info = _compute_receiver_info(receiver)
    try:
        ref = weakref.ref(key_object, lambda _ref, key=key: _receiver_infos.pop(key, None))
    except TypeError:
        return info  # not weak-referenceable: not cached rather than kept alive
    _receiver_infos[key] = (ref, info)
    return info


def make_id(target: Any) -> Any:
    """Django's receiver and sender ids (``dispatcher._make_id``, unchanged since 1.x):
    a receiver connected without a ``dispatch_uid`` is keyed by this."""
    if hasattr(target, "__func__"):
        return (id(target.__self__), id(target.__func__))
    return id(target)


# id(signal) -> (weak reference validating the id, the signal's receiver entries the
# map was built from, {id(receiver function): dispatch_uid}).
_uid_maps: dict[int, tuple[weakref.ref[Any], list[Any], dict[int, Any]]] = {}


def receivers_and_uids(signal: Signal) -> tuple[list[Any], dict[int, Any]]:
    """A copy of ``signal.receivers`` and ``{id(receiver function): dispatch_uid}`` for those
    of its receivers connected with one.

    Django keys receivers by ``(dispatch_uid or id(receiver), id(sender))``: a key
    that differs from the receiver's own id is its dispatch_uid; a function connected
    twice is decided by its first entry, as Django's ``send`` calls it first.

    For traces and live observers, which need the uid of every receiver call: built once and
    reused while ``signal.receivers`` holds the same entries (a list comparison
    that checks identity first, so it costs about one pointer test per receiver).
    Empty for the usual signal whose receivers have no ``dispatch_uid``. The cache
    keeps the entry tuples of the last build, so a ``weak=False`` receiver
    disconnected since stays referenced until the signal's next traced dispatch.
    Callers may compare ``signal.receivers`` with the copy to know whether the map
    still holds, but must not change either.
    """
    receivers = signal.receivers
    key = id(signal)
    cached = _uid_maps.get(key)
    if cached is not None and cached[1] == receivers and cached[0]() is signal:
        return cached[1], cached[2]
    entries = list(receivers)
    uids: dict[int, Any] = {}
    seen: set[int] = set()
    for entry in entries:
        lookup_key, ref = entry[0], entry[1]
        target = ref() if isinstance(ref, weakref.ReferenceType) else ref
        if target is None:
            continue
        function = getattr(target, "__func__", target)
        if id(function) in seen:
            continue  # the first entry of a function decides
        seen.add(id(function))
        if lookup_key[0] != make_id(target):
            uids[id(function)] = lookup_key[0]
    try:
        ref_to_signal = weakref.ref(signal, lambda _ref, key=key: _uid_maps.pop(key, None))
    except TypeError:
        return entries, uids
    _uid_maps[key] = (ref_to_signal, entries, uids)
    return entries, uids


def dispatch_uids(signal: Signal) -> dict[int, Any]:
    """``{id(receiver function): dispatch_uid}`` (see :func:`receivers_and_uids`)."""
    return receivers_and_uids(signal)[1]


@lru_cache(maxsize=1024)
def short_path(file: str) -> str:
    """How locations are shown: ``app/receivers.py`` for a file under a ``sys.path``
    entry (the longest one), else the path as stored.

    Relative entries (``""`` and ``"."``, which ``python -m`` and uvicorn put first)
    stand for directories under the current one: they are resolved against it, as
    Python's import system does.
    """
    if not file:
        return file
    file = os.path.normpath(file)  # Python 3.10 names a module found through "." "/root/./app/x.py"
    if not os.path.isabs(file):
        return file
    best = ""
    cwd: str | None = None
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        if not os.path.isabs(entry):
            if cwd is None:
                try:
                    cwd = os.getcwd()
                except OSError:  # the current directory was removed
                    continue
            entry = os.path.normpath(os.path.join(cwd, entry))
        base = entry.rstrip(os.sep)
        if base and len(base) > len(best) and file.startswith(base + os.sep):
            best = base
    return file[len(best) + 1 :] if best else file
