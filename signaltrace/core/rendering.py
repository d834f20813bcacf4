"""Turn signal kwargs into short, safe, redacted strings.

Two steps, so the dispatch hot path stays cheap:

* :func:`snapshot_kwargs` runs while recording. It keeps immutable plain values as
  they are, reduces model instances to ``(label, pk)`` and everything else to its
  type, and drops the values of sensitive names. It never calls ``repr`` or
  ``str`` on user objects (unless ``REPR_OBJECTS`` opts in), so it cannot run SQL.
* :func:`render_value` runs when a trace is read and formats a snapshot.
"""

from __future__ import annotations

import re
from typing import Any

from signaltrace.conf import REDACTED, repr_limit, when_reset

_PLAIN_TYPES = frozenset({bool, int, float, complex, str, bytes, type(None)})
_CONTAINER_TYPES = frozenset({tuple, frozenset})


class Redacted:
    """Marker stored instead of a sensitive value."""

    __slots__ = ()


# A model instance as it was when sent is stored as ``(MODEL_MARK, label, pk)``: a
# plain tuple is several times cheaper to build than an object, and no user tuple
# can hold this private marker.
MODEL_MARK = object()


class QuerySetRef:
    """A queryset, by its model only (rendering it would evaluate it)."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label


class TypeRef:
    """Any other object, by the dotted path of its type."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class ReprText:
    """An object rendered eagerly because ``REPR_OBJECTS`` is on."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


REDACTED_VALUE = Redacted()

# type -> function making its snapshot; filled on first sight of each type (one
# cache per REPR_OBJECTS value, since the choice for unknown types depends on it).
_snapshotters: dict[type, Any] = {}
_snapshotters_repr: dict[type, Any] = {}
# kwarg name -> bool, whether it is sensitive; filled on first sight of each name.
_sensitive_names: dict[str, bool] = {}
# tuple of kwarg names -> tuple of "redact this one?" flags, one per name, or ()
# when no name of the tuple is sensitive (the common case).
_redaction_plans: dict[tuple[str, ...], tuple[bool, ...]] = {}
_MAX_PLANS = 1000


@when_reset
def clear_caches() -> None:
    """Forget per-type and per-name decisions (after a settings change)."""
    _snapshotters.clear()
    _snapshotters_repr.clear()
    _sensitive_names.clear()
    _redaction_plans.clear()


def _keep(value: Any) -> Any:
    return value


def _snapshot_for_type(value_type: type, repr_objects: bool) -> Any:
    from django.db.models import Model, QuerySet

    from signaltrace.core.naming import dotted_path, sender_name

    if value_type in _PLAIN_TYPES:
        return _keep
    if value_type in _CONTAINER_TYPES:
        return _snapshot_container
    if issubclass(value_type, Model):
        label = sender_name(value_type)
        return lambda instance: (MODEL_MARK, label, instance.pk)
    if issubclass(value_type, QuerySet):
        return lambda queryset: QuerySetRef(sender_name(queryset.model))
    if isinstance(value_type, type) and issubclass(value_type, type):
        return _keep  # classes (e.g. a model class) live as long as their module
    if repr_objects:
        return lambda value: ReprText(safe_repr(value))
    type_ref = TypeRef(dotted_path(value_type))
    return lambda value: type_ref


def _snapshot_container(value: Any) -> Any:
    """A tuple or frozenset (``update_fields``) of plain values is kept as it is."""
    for item in value:
        if type(item) not in _PLAIN_TYPES:
            return TypeRef(type(value).__name__)
    return value


def _snapshotter(value_type: type, repr_objects: bool) -> Any:
    cache = _snapshotters_repr if repr_objects else _snapshotters
    snapshotter = cache.get(value_type)
    if snapshotter is None:
        snapshotter = cache[value_type] = _snapshot_for_type(value_type, repr_objects)
    return snapshotter


def snapshot_value(value: Any, repr_objects: bool = False) -> Any:
    """A cheap, SQL-free, non-owning stand-in for ``value``."""
    return _snapshotter(type(value), repr_objects)(value)


def is_sensitive(name: str, pattern: re.Pattern[str]) -> bool:
    """Whether a kwarg name looks like it holds a secret (cached per name)."""
    sensitive = _sensitive_names.get(name)
    if sensitive is None:
        sensitive = _sensitive_names[name] = bool(pattern.search(name))
    return sensitive


KwargsSnapshot = tuple[tuple[str, ...], list[Any]]


def snapshot_kwargs(named: dict[str, Any], pattern: re.Pattern[str], repr_objects: bool) -> KwargsSnapshot:
    """Snapshot every kwarg of a dispatch, redacting sensitive ones: ``(names, values)``.

    Runs on the hot path while recording. Which names to redact is decided once
    per distinct tuple of names; plain values are kept as they are; others go
    through a snapshotter chosen once per type.
    """
    names = tuple(named)
    plan = _redaction_plans.get(names)
    if plan is None:
        if len(_redaction_plans) >= _MAX_PLANS:
            _redaction_plans.clear()
        flags = tuple(is_sensitive(name, pattern) for name in names)
        plan = _redaction_plans[names] = flags if any(flags) else ()
    values = list(named.values())
    snapshotters = _snapshotters_repr if repr_objects else _snapshotters
    for index, value in enumerate(values):
        if plan and plan[index]:
            values[index] = REDACTED_VALUE
        elif type(value) not in _PLAIN_TYPES:
            snapshotter = snapshotters.get(type(value)) or _snapshotter(type(value), repr_objects)
            values[index] = snapshotter(value)
    return names, values


def render_kwargs(snapshot: KwargsSnapshot, limit: int | None = None) -> dict[str, str]:
    """Display strings of a snapshot made by :func:`snapshot_kwargs` (limit: ``MAX_REPR_LENGTH``)."""
    names, values = snapshot
    if limit is None:
        limit = repr_limit()
    return {name: render_value(value, limit) for name, value in zip(names, values, strict=True)}


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def safe_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)`` that never raises and never grows past ``limit``."""
    try:
        text = repr(value)
        if not isinstance(text, str):
            raise TypeError("__repr__ returned a non-string")
    except Exception as exc:  # noqa: BLE001 - hostile reprs are expected
        text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return truncate(text, limit)


def render_value(snapshot: Any, limit: int | None = None) -> str:
    """The display string of a snapshot made by :func:`snapshot_value` (limit: ``MAX_REPR_LENGTH``)."""
    if limit is None:
        limit = repr_limit()
    if isinstance(snapshot, Redacted):
        return REDACTED
    if type(snapshot) is tuple and len(snapshot) == 3 and snapshot[0] is MODEL_MARK:
        _mark, label, pk = snapshot
        return truncate(f"<{label} pk={pk!r}>", limit)
    if isinstance(snapshot, QuerySetRef):
        return f"<QuerySet of {snapshot.label}>"
    if isinstance(snapshot, TypeRef):
        return f"<{snapshot.name} object>"
    if isinstance(snapshot, ReprText):
        return truncate(snapshot.text, limit)
    if isinstance(snapshot, type):
        from signaltrace.core.naming import sender_name

        return sender_name(snapshot)
    return safe_repr(snapshot, limit)
