"""Turn signal kwargs into short, safe, redacted strings.

Two steps, so the dispatch hot path stays cheap:

* :func:`snapshot_kwargs` runs while recording. It keeps short immutable plain values
  as they are, reduces model instances to ``(label, pk)`` and everything else to its
  type, and drops the values of sensitive names. It never calls ``repr`` or
  ``str`` on user objects (unless ``REPR_OBJECTS`` opts in), so it cannot run SQL.
* :func:`render_value` runs when a trace is read and formats a snapshot.

What is bounded, and why (a tracer must never break the host, never leak):

* **Memory.** A record keeps no reference to a big value: a ``str`` or ``bytes``
  longer than 256 characters and than ``MAX_REPR_LENGTH`` (the render limit) is cut
  to that limit when it is snapshotted (a copy of its start, marked as cut, renders
  with ``…``), so sending a fresh 1 MB body on every dispatch no longer keeps every
  body alive; shorter texts are kept whole (bounded, and no limit lookup in the
  common case). A tuple or frozenset is kept whole only when it has at most
  :data:`MAX_WALKED_ITEMS` plain items (each cut and checked like a top-level
  value); a bigger one is kept as its size (``<tuple of 1000000 items>``) without
  being walked, so a send costs the same whatever the size of its kwargs.
* **Time on the hot path.** A plain ``str`` gets a length test and a one-character
  test; only a string whose first character could start a credential gets the
  (short) prefix check. Sensitive names are decided once per tuple of kwarg names.
* **Rendering.** :func:`safe_repr` never calls ``repr`` on a container: lists,
  tuples, dicts, sets and frozensets (and their subclasses) are rendered here, at
  most :data:`MAX_DEPTH` levels deep and :data:`MAX_ITEMS` items per container,
  and rendering stops once the text is longer than its limit. A ``str``/``bytes``
  is sliced before its ``repr`` is taken. A model instance is
  ``<app_label.Model pk=..>``, its pk read from the instance ``__dict__`` (a
  model's ``__repr__``/``__str__`` may run SQL); a queryset is shown by its model
  (its ``repr`` would evaluate it); a lazy object by what it already wraps, never
  evaluated. Only other objects' own ``__repr__`` runs, and only with
  ``REPR_OBJECTS``.
* **Secrets.** Values of sensitive kwarg names are dropped; at any depth, so are
  the values of sensitive dict keys and of ``(name, value)`` pairs (2-item tuples
  or lists) whose name is sensitive. Values that look like credentials whatever
  their key (``Bearer …``, ``Basic …``, ``Token …``, ``JWT …``,
  case-insensitively) are dropped too; an ``("Authorization", …)`` or
  ``("Cookie", …)`` pair is dropped by its name. A "name" longer than
  :data:`MAX_NAME_LENGTH` characters is data, not a name: it is not matched.
* **Caches.** The per-type and per-name decisions are process-wide caches; each is
  emptied when it reaches :data:`MAX_CACHED` entries, so they never keep an
  unbounded number of classes (created per test, per request) alive.
"""

from __future__ import annotations

import re
from functools import cache
from itertools import islice
from typing import Any

from signaltrace import conf
from signaltrace.conf import REDACTED, repr_limit, sensitive_pattern, when_reset

#: Items of a tuple or frozenset kwarg walked on the hot path; a bigger one is kept by its size.
MAX_WALKED_ITEMS = 32
#: How deep containers are rendered (deeper ones show as ``[...]``).
MAX_DEPTH = 3
#: Items rendered per container (the others show as ``...``).
MAX_ITEMS = 20
#: Entries each process-wide cache holds before it is emptied.
MAX_CACHED = 1000
#: Longest string matched as a name (a kwarg name, a dict key, the first item of a pair).
MAX_NAME_LENGTH = 256

_SCALAR_TYPES = frozenset({bool, int, float, complex, type(None)})
_MAX_INT_BITS = 4000  # about 1,200 digits
_PLAIN_TYPES = _SCALAR_TYPES | {str, bytes}
# A str or bytes at most this long is kept whole without reading the render limit (a
# longer one is cut to MAX_REPR_LENGTH): what a record keeps of a text is at most
# max(_KEEP_WHOLE, MAX_REPR_LENGTH) long, and the common short text costs no lookup.
_KEEP_WHOLE = 256

_CREDENTIAL_PREFIXES = ("bearer ", "basic ", "token ", "jwt ")
_BYTES_CREDENTIAL_PREFIXES = tuple(prefix.encode() for prefix in _CREDENTIAL_PREFIXES)
# First characters of the prefixes, both cases ("" is in it too: harmless).
_CREDENTIAL_FIRST = "".join(sorted({c for p in _CREDENTIAL_PREFIXES for c in (p[0], p[0].upper())}))
_BYTES_CREDENTIAL_FIRST = _CREDENTIAL_FIRST.encode()
_PREFIX_LENGTH = max(len(prefix) for prefix in _CREDENTIAL_PREFIXES)


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


class SizedRef:
    """A tuple or frozenset too big to walk on the hot path, by its type and size."""

    __slots__ = ("name", "size")

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size


class Cut:
    """The start of a ``str`` or ``bytes`` too long to keep: a copy, so the record
    holds no reference to the original."""

    __slots__ = ("head",)

    def __init__(self, head: str | bytes) -> None:
        self.head = head


class ReprText:
    """An object rendered eagerly because ``REPR_OBJECTS`` is on."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


REDACTED_VALUE = Redacted()

# type -> function(value, pattern, limit) making its snapshot; filled on first sight
# of each type (one cache per REPR_OBJECTS value, since the choice for unknown types
# depends on it). Emptied at MAX_CACHED entries: the keys are classes.
_snapshotters: dict[type, Any] = {}
_snapshotters_repr: dict[type, Any] = {}
# kwarg name (or dict key) -> bool, whether it is sensitive; filled on first sight.
_sensitive_names: dict[str, bool] = {}
# tuple of kwarg names -> tuple of "redact this one?" flags, one per name, or ()
# when no name of the tuple is sensitive (the common case).
_redaction_plans: dict[tuple[str, ...], tuple[bool, ...]] = {}
_MAX_PLANS = MAX_CACHED
# frozensets of plain values (update_fields) that snapshot_kwargs keeps as they are:
# an equal set is kept without walking it (equal sets hold equal, equally plain items).
_kept_sets: set[frozenset[Any]] = set()
# model class -> (label, pk attname) for models with a one-field primary key that is
# not a secret, filled when their snapshotter is made: snapshot_kwargs's fast scan
# then stands in for their instances without a call.
_model_refs: dict[type, tuple[str, str]] = {}
# (conf.generation it was read in, MAX_REPR_LENGTH): the limit long texts are cut to.
_limit_now: tuple[int, int] = (-1, 0)


@when_reset
def clear_caches() -> None:
    """Forget per-type and per-name decisions (after a settings change)."""
    global _limit_now, _save_names_plain
    _save_names_plain = None
    _snapshotters.clear()
    _snapshotters_repr.clear()
    _sensitive_names.clear()
    _redaction_plans.clear()
    _kept_sets.clear()
    _model_refs.clear()
    _limit_now = (-1, 0)


def _snapshot_limit() -> int:
    """``MAX_REPR_LENGTH``, read again only when the config in force may have changed."""
    global _limit_now
    generation, limit = _limit_now
    if generation != conf.generation:
        limit = repr_limit()
        _limit_now = (conf.generation, limit)
    return limit


_CREDENTIAL_IN_TEXT = re.compile(r"(?i)\b(bearer|basic|token|jwt)(\s+)([A-Za-z0-9._~+/=:-]{8,})")


def redact_credentials(text: str) -> str:
    """``text`` with what follows ``Bearer``/``Basic``/``Token``/``JWT`` redacted (free text:
    exception messages, which may quote a header)."""
    if "earer" not in text and "asic" not in text and "oken" not in text and "wt" not in text.lower():
        return text
    return _CREDENTIAL_IN_TEXT.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    secret = match[3]
    if not any(char.isdigit() or char in "._-+/=" for char in secret):
        return match[0]  # a word ("token expired"), not a credential
    return f"{match[1]}{match[2]}{REDACTED}"


def looks_like_credential(value: Any) -> bool:
    """Whether a ``str`` or ``bytes`` looks like a secret whatever its key
    (``Bearer …``, ``Basic …``, ``Token …``, ``JWT …``, case-insensitively)."""
    value_type = type(value)
    if value_type is str:
        return value[:1] in _CREDENTIAL_FIRST and value[:_PREFIX_LENGTH].lower().startswith(
            _CREDENTIAL_PREFIXES
        )
    if value_type is bytes:
        return value[:1] in _BYTES_CREDENTIAL_FIRST and value[:_PREFIX_LENGTH].lower().startswith(
            _BYTES_CREDENTIAL_PREFIXES
        )
    return False


def _snapshot_text(value: str | bytes, limit: int | None) -> Any:
    """A ``str`` or ``bytes`` (exact types): redacted, cut to ``limit``, or itself
    (as :func:`snapshot_kwargs` does inline)."""
    if looks_like_credential(value):
        return REDACTED_VALUE
    if len(value) <= _KEEP_WHOLE:
        return value
    if limit is None:
        limit = _snapshot_limit()
    if len(value) > limit:
        return Cut(value[:limit])
    return value


def _snapshot_bytes(value: bytes, pattern: re.Pattern[str] | None, limit: int | None) -> Any:
    if value[:1] in _BYTES_CREDENTIAL_FIRST or len(value) > _KEEP_WHOLE:
        return _snapshot_text(value, limit)
    return value


def _keep(value: Any, pattern: re.Pattern[str] | None, limit: int | None) -> Any:
    return value


def _snapshot_container(
    value: Any, pattern: re.Pattern[str] | None, limit: int | None, repr_objects: bool = False
) -> Any:
    """A tuple or frozenset (``update_fields``) of plain values is kept (its long
    texts cut, its credentials redacted); a bigger one by its size, never walked."""
    size = len(value)
    if size > MAX_WALKED_ITEMS:
        return _rendered_now(value, pattern, limit) if repr_objects else SizedRef(type(value).__name__, size)
    # Fast scan: the usual container (short names, numbers) is kept as it is.
    for item in value:
        item_type = type(item)
        if item_type is str:
            if item[:1] in _CREDENTIAL_FIRST or len(item) > _KEEP_WHOLE:
                break
        elif item_type in _SCALAR_TYPES:
            continue
        elif item_type is bytes:
            if item[:1] in _BYTES_CREDENTIAL_FIRST or len(item) > _KEEP_WHOLE:
                break
        else:
            return _rendered_now(value, pattern, limit) if repr_objects else TypeRef(type(value).__name__)
    else:
        if size == 2 and type(value) is tuple and _names_secret(value[0], pattern):
            return (value[0], REDACTED_VALUE)
        return value
    return _rebuilt_container(value, pattern, limit, repr_objects)


def _rebuilt_container(
    value: Any, pattern: re.Pattern[str] | None, limit: int | None, repr_objects: bool
) -> Any:
    """A small tuple or frozenset with a text to cut or redact: a copy with it replaced."""
    items = []
    for item in value:
        item_type = type(item)
        if item_type is str or item_type is bytes:
            items.append(_snapshot_text(item, limit))
        elif item_type in _SCALAR_TYPES:
            items.append(item)
        else:
            return _rendered_now(value, pattern, limit) if repr_objects else TypeRef(type(value).__name__)
    if len(items) == 2 and type(value) is tuple and _names_secret(value[0], pattern):
        items[1] = REDACTED_VALUE
    return tuple(items) if type(value) is tuple else frozenset(items)


def _snapshot_container_repr(value: Any, pattern: re.Pattern[str] | None, limit: int | None) -> Any:
    return _snapshot_container(value, pattern, limit, True)


def _snapshot_set(
    value: set[Any], pattern: re.Pattern[str] | None, limit: int | None, repr_objects: bool = False
) -> Any:
    """A small set of plain values (``m2m_changed``'s ``pk_set``) as a frozenset copy: the
    set itself may change after the dispatch. Otherwise as a tuple or frozenset would be."""
    kept = _snapshot_container(value, pattern, limit, repr_objects)
    # Kept as it is only when every item is an exact str, bytes or scalar: copying rehashes
    # nothing but built-in values.
    return frozenset(value) if kept is value else kept


def _snapshot_set_repr(value: set[Any], pattern: re.Pattern[str] | None, limit: int | None) -> Any:
    return _snapshot_set(value, pattern, limit, True)


def _rendered_now(value: Any, pattern: re.Pattern[str] | None, limit: int | None) -> ReprText:
    """``REPR_OBJECTS``: the object rendered now, redacted and bounded."""
    if limit is None:
        limit = _snapshot_limit()
    return ReprText(_safe_text(value, limit, pattern))


def _pk_attnames(model: type) -> tuple[str, ...]:
    """Where a model's primary key value lives in an instance ``__dict__``."""
    meta = model._meta  # type: ignore[attr-defined]
    if meta.pk is None:
        return ()
    if getattr(meta, "is_composite_pk", False):  # Django 5.2+
        return tuple(field.attname for field in meta.pk_fields)
    return (meta.pk.attname,)


def pk_is_secret(model: type) -> bool:
    """Whether a model's primary key is itself a secret (``Session.session_key``, an API
    token's ``key``): its name matches the sensitive names. Such a pk is shown redacted."""
    try:
        return any(is_sensitive(name, sensitive_pattern()) for name in _pk_attnames(model))
    except Exception:  # noqa: BLE001 - a broken model: err on the side of hiding
        return True


def _pk_of(instance: Any, attnames: tuple[str, ...]) -> Any:
    """The pk of a model instance, from its ``__dict__`` (never ``.pk`` through a proxy)."""
    state = instance.__dict__
    if len(attnames) == 1:
        return state.get(attnames[0])
    return tuple(state.get(name) for name in attnames) if attnames else None


def _snapshot_for_type(value_type: type, repr_objects: bool) -> Any:
    from signaltrace.core.naming import dotted_path, sender_name

    Model, QuerySet, _LazyObject, _empty = _django_types()
    if value_type in _SCALAR_TYPES:
        return _keep
    if value_type is str:
        return lambda value, pattern, limit: _snapshot_text(value, limit)
    if value_type is bytes:
        return _snapshot_bytes
    if value_type is tuple or value_type is frozenset:
        return _snapshot_container_repr if repr_objects else _snapshot_container
    if value_type is set:
        return _snapshot_set_repr if repr_objects else _snapshot_set
    if issubclass(value_type, Model):
        label = sender_name(value_type)
        attnames = _pk_attnames(value_type)
        if pk_is_secret(value_type):
            secret = (MODEL_MARK, label, REDACTED_VALUE)
            return lambda instance, pattern, limit: secret
        if len(attnames) == 1:
            attname = attnames[0]
            if len(_model_refs) >= MAX_CACHED:
                _model_refs.clear()
            _model_refs[value_type] = (label, attname)
            return lambda instance, pattern, limit: (MODEL_MARK, label, instance.__dict__.get(attname))
        return lambda instance, pattern, limit: (MODEL_MARK, label, _pk_of(instance, attnames))
    if issubclass(value_type, QuerySet):
        return lambda queryset, pattern, limit: QuerySetRef(sender_name(queryset.model))
    if issubclass(value_type, type):
        return _keep  # classes (e.g. a model class) live as long as their module
    if repr_objects:
        return _rendered_now
    type_ref = TypeRef(dotted_path(value_type))
    return lambda value, pattern, limit: type_ref


def _snapshotter(value_type: type, repr_objects: bool) -> Any:
    cache = _snapshotters_repr if repr_objects else _snapshotters
    snapshotter = cache.get(value_type)
    if snapshotter is None:
        snapshotter = _snapshot_for_type(value_type, repr_objects)
        if len(cache) >= MAX_CACHED:
            cache.clear()
        cache[value_type] = snapshotter
    return snapshotter


def snapshot_value(
    value: Any,
    repr_objects: bool = False,
    pattern: re.Pattern[str] | None = None,
    limit: int | None = None,
) -> Any:
    """A cheap, SQL-free, non-owning stand-in for ``value``, as :func:`snapshot_kwargs` makes it.

    ``pattern`` (sensitive names, for dict keys and pairs) and ``limit`` (texts are
    cut to it) default to the settings in force.
    """
    value_type = type(value)
    if value_type in _SCALAR_TYPES:
        return value
    if value_type is str:
        if value[:1] in _CREDENTIAL_FIRST or len(value) > _KEEP_WHOLE:
            return _snapshot_text(value, limit)
        return value
    if pattern is None:
        pattern = sensitive_pattern()
    return _snapshotter(value_type, repr_objects)(value, pattern, limit)


def is_sensitive(name: str, pattern: re.Pattern[str]) -> bool:
    """Whether a kwarg name looks like it holds a secret (cached per name, at most
    :data:`MAX_CACHED` names; longer names than :data:`MAX_NAME_LENGTH` are not cached)."""
    sensitive = _sensitive_names.get(name)
    if sensitive is None:
        sensitive = bool(pattern.search(name))
        if len(name) <= MAX_NAME_LENGTH:
            if len(_sensitive_names) >= MAX_CACHED:
                _sensitive_names.clear()
            _sensitive_names[name] = sensitive
    return sensitive


def _names_secret(name: Any, pattern: re.Pattern[str] | None) -> bool:
    """Whether ``name`` (a dict key, the first item of a pair) is a sensitive name."""
    name_type = type(name)
    if name_type is str:
        pass
    elif name_type is bytes:
        if len(name) > MAX_NAME_LENGTH:
            return False
        name = name.decode("latin-1")
    elif issubclass(name_type, str):
        name = str.__str__(name)  # an exact str: the key's own __hash__/__eq__ are not called
    else:
        return False
    if len(name) > MAX_NAME_LENGTH:
        return False
    return is_sensitive(name, sensitive_pattern() if pattern is None else pattern)


#: What :func:`snapshot_kwargs` keeps: ``(names, values)``, or the dispatch's own kwargs
#: dict when every value may be kept as it is (see there).
KwargsSnapshot = dict[str, Any] | tuple[tuple[str, ...], list[Any]]


# The kwargs Django's Model.save_base() sends pre_save and post_save with: the most
# frequent dispatches of all, so _snapshot_save_kwargs checks them as one known shape.
_SAVE_NAMES = ("instance", "raw", "using", "update_fields", "created")
# Whether no name in _SAVE_NAMES is sensitive under the settings in force (None: not known yet).
_save_names_plain: bool | None = None
_NO_VALUE = object()


def _snapshot_save_kwargs(named: dict[str, Any], pattern: re.Pattern[str]) -> dict[str, Any] | None:
    """What :func:`snapshot_kwargs` makes of a save signal's kwargs, as Django sends them.

    None when they are not exactly that (another name, a value of another type, a text
    or set that needs a look): the general path then runs. Same result, fewer steps.
    """
    global _save_names_plain
    instance = named["instance"]
    model_ref = _model_refs.get(type(instance))
    if model_ref is None:
        return None
    if _save_names_plain is None:
        _save_names_plain = not any(is_sensitive(name, pattern) for name in _SAVE_NAMES)
    using = named.get("using")
    update_fields = named.get("update_fields", _NO_VALUE)  # must be there, None or a set
    if (
        _save_names_plain
        and type(named.get("raw")) is bool
        and type(using) is str
        and len(using) <= _KEEP_WHOLE
        and using[:1] not in _CREDENTIAL_FIRST
        and (update_fields is None or update_fields in _kept_sets)
        and len(named) == (5 if type(named.get("created")) is bool else 4)
    ):
        kept = named.copy()
        kept["instance"] = (MODEL_MARK, model_ref[0], instance.__dict__.get(model_ref[1]))
        return kept
    return None


def snapshot_kwargs(
    named: dict[str, Any], pattern: re.Pattern[str], repr_objects: bool, limit: int | None = None
) -> KwargsSnapshot:
    """Snapshot every kwarg of a dispatch, redacting sensitive ones: ``(names, values)``.

    Runs on the hot path while recording. Which names to redact is decided once
    per distinct tuple of names; short plain values are kept as they are; others go
    through a snapshotter chosen once per type. ``limit``: the length long texts are
    cut to (default ``MAX_REPR_LENGTH``, read only when a long text is seen).
    """
    # The common case builds nothing: every name already known not to be sensitive and
    # every value a scalar or a short text that cannot be a credential. The dict is then
    # kept itself: it is the one Python made for this call's **named, which nothing else
    # holds or changes (receivers get copies), and its values are immutable. Model
    # signals' kwargs (an instance, update_fields) cost one copy of the dict, with the
    # instance's stand-in in it.
    if "instance" in named:
        kept = _snapshot_save_kwargs(named, pattern)
        if kept is not None:
            return kept
    replaced = None
    for name in named:
        if _sensitive_names.get(name) is not False:
            break
        value = named[name]
        value_type = type(value)
        if value_type in _SCALAR_TYPES:
            continue
        if value_type is str:
            if len(value) > _KEEP_WHOLE or value[:1] in _CREDENTIAL_FIRST:
                break
            continue
        if value_type is frozenset:
            if value in _kept_sets:
                continue
            kept = _snapshot_container(value, pattern, limit, repr_objects)
            if kept is value:
                if len(_kept_sets) >= MAX_CACHED:
                    _kept_sets.clear()
                _kept_sets.add(value)
                continue
        elif (model_ref := _model_refs.get(value_type)) is not None:
            if replaced is None:
                replaced = named.copy()
            replaced[name] = (MODEL_MARK, model_ref[0], value.__dict__.get(model_ref[1]))
            continue
        elif value_type is tuple:
            kept = _snapshot_container(value, pattern, limit, repr_objects)
            if kept is value:
                continue
        else:
            break
        if replaced is None:
            replaced = named.copy()
        replaced[name] = kept
    else:
        return named if replaced is None else replaced
    names = tuple(named)
    plan = _redaction_plans.get(names)
    if plan is None:
        if len(_redaction_plans) >= _MAX_PLANS:
            _redaction_plans.clear()
        flags = tuple(is_sensitive(name, pattern) for name in names)
        plan = flags if any(flags) else ()
        if all(len(name) <= MAX_NAME_LENGTH for name in names):
            _redaction_plans[names] = plan  # huge names are data: not kept past the dispatch
    values = list(named.values())
    snapshotters = _snapshotters_repr if repr_objects else _snapshotters
    for index, value in enumerate(values):
        if plan and plan[index]:
            values[index] = REDACTED_VALUE
        elif type(value) in _SCALAR_TYPES:
            pass
        elif type(value) is str:
            # Inline: the common string costs a one-character test and a length test.
            if value[:1] in _CREDENTIAL_FIRST and value[:_PREFIX_LENGTH].lower().startswith(
                _CREDENTIAL_PREFIXES
            ):
                values[index] = REDACTED_VALUE
            elif len(value) > _KEEP_WHOLE:
                if limit is None:
                    limit = _snapshot_limit()
                if len(value) > limit:
                    values[index] = Cut(value[:limit])
        else:
            snapshotter = snapshotters.get(type(value)) or _snapshotter(type(value), repr_objects)
            values[index] = snapshotter(value, pattern, limit)
    return names, values


def snapshot_get(snapshot: KwargsSnapshot, name: str) -> Any:
    """The kept value of kwarg ``name`` in a snapshot made by :func:`snapshot_kwargs` (None if absent)."""
    if type(snapshot) is dict:
        return snapshot.get(name)
    names, values = snapshot
    return values[names.index(name)] if name in names else None


def render_kwargs(snapshot: KwargsSnapshot, limit: int | None = None) -> dict[str, str]:
    """Display strings of a snapshot made by :func:`snapshot_kwargs` (limit: ``MAX_REPR_LENGTH``)."""
    if limit is None:
        limit = repr_limit()
    if type(snapshot) is dict:
        return {name: render_value(value, limit) for name, value in snapshot.items()}
    names, values = snapshot
    return {name: render_value(value, limit) for name, value in zip(names, values, strict=True)}


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def safe_repr(value: Any, limit: int = 200) -> str:
    """A ``repr`` of ``value`` that never raises, never grows past ``limit`` and never
    runs SQL: containers are rendered here (bounded), texts sliced before their
    ``repr``, models by label and pk, querysets by model, secrets redacted."""
    return _safe_text(value, limit, None)


def _safe_text(value: Any, limit: int, pattern: re.Pattern[str] | None) -> str:
    try:
        text = _render(value, 0, limit, pattern)
    except Exception as exc:  # noqa: BLE001 - hostile objects are expected
        text = _unrepresentable(value, exc)
    return truncate(text, limit)


def render_value(snapshot: Any, limit: int | None = None) -> str:
    """The display string of a snapshot made by :func:`snapshot_value` (limit: ``MAX_REPR_LENGTH``)."""
    if limit is None:
        limit = repr_limit()
    if type(snapshot) is Redacted:
        return REDACTED
    return _safe_text(snapshot, limit, None)


# ------------------------------------------------------------------ rendering


@cache
def _django_types() -> tuple[type, type, type, Any]:
    """``(Model, QuerySet, LazyObject, empty)``, imported on first use."""
    from django.db.models import Model, QuerySet
    from django.utils.functional import LazyObject, empty

    return Model, QuerySet, LazyObject, empty


def _unrepresentable(value: Any, exc: BaseException) -> str:
    return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"


def _leaf_repr(value: Any, budget: int) -> str:
    """``repr(value)`` of an object not rendered here, cut to ``budget``; never raises."""
    try:
        text = repr(value)
        if not isinstance(text, str):
            raise TypeError("__repr__ returned a non-string")
    except Exception as exc:  # noqa: BLE001 - hostile reprs are expected
        return _unrepresentable(value, exc)
    return truncate(text, max(budget, 1))


def _text_repr(value: str | bytes, budget: int) -> str:
    """The ``repr`` of a str or bytes (exact types), sliced first when longer than ``budget``."""
    if len(value) > budget:
        return _cut_repr(value[: max(budget, 1)])
    return repr(value)


def _cut_repr(head: str | bytes) -> str:
    """A cut text: its start without the closing quote, then ``…``."""
    return repr(head)[:-1] + "…"


_SHAPES: dict[type, tuple[str, str, str]] = {
    list: ("[", "]", "[]"),
    tuple: ("(", ")", "()"),
    dict: ("{", "}", "{}"),
    set: ("{", "}", "set()"),
    frozenset: ("frozenset({", "})", "frozenset()"),
}


def _container_base(value_type: type) -> type | None:
    """Which of list, tuple, dict, set, frozenset ``value_type`` is (or subclasses)."""
    if value_type in _SHAPES:
        return value_type
    for base in _SHAPES:
        if issubclass(value_type, base):
            return base
    return None


def _render(value: Any, depth: int, budget: int, pattern: re.Pattern[str] | None) -> str:
    """``value`` (a snapshot, or with ``REPR_OBJECTS`` any object) as text.

    Renders at most about ``budget`` characters (the caller truncates). ``pattern``:
    sensitive names (None: the settings' pattern, read when a name is checked).
    """
    value_type = type(value)
    if value_type is str or value_type is bytes:
        return REDACTED if looks_like_credential(value) else _text_repr(value, budget)
    if value_type in _SCALAR_TYPES:
        if value_type is int and value.bit_length() > _MAX_INT_BITS:
            return f"<int of {value.bit_length()} bits>"  # its repr is slow, or refused (ValueError)
        return _leaf_repr(value, budget)
    marker = _MARKERS.get(value_type)
    if marker is not None:
        return marker(value, depth, budget, pattern)
    if value_type is tuple and len(value) == 3 and value[0] is MODEL_MARK:
        _mark, label, pk = value
        return f"<{label} pk={_render(pk, depth + 1, budget, pattern)}>"
    base = _container_base(value_type)
    if base is not None:
        return _container_text(value, value_type, base, depth, budget, pattern)
    return _object_text(value, value_type, depth, budget, pattern)


def _object_text(
    value: Any, value_type: type, depth: int, budget: int, pattern: re.Pattern[str] | None
) -> str:
    """Anything but plain values and containers: never a model's or queryset's ``repr``."""
    from signaltrace.core.naming import sender_name

    Model, QuerySet, LazyObject, empty = _django_types()
    if issubclass(value_type, type):
        return sender_name(value)
    if issubclass(value_type, Model):
        if pk_is_secret(value_type):
            return f"<{sender_name(value_type)} pk={REDACTED}>"
        pk = _pk_of(value, _pk_attnames(value_type))
        return f"<{sender_name(value_type)} pk={_render(pk, depth + 1, budget, pattern)}>"
    if issubclass(value_type, QuerySet):
        return f"<QuerySet of {sender_name(value.model)}>"
    if issubclass(value_type, LazyObject):
        # Read what it wraps from its __dict__: any other access would evaluate it.
        wrapped = object.__getattribute__(value, "__dict__").get("_wrapped", empty)
        if wrapped is empty:
            return f"<{value_type.__name__}: not evaluated>"
        return f"<{value_type.__name__}: {_render(wrapped, depth + 1, budget, pattern)}>"
    for text_type in (str, bytes):
        # A str subclass (SafeString) with the str repr: sliced first, checked alike.
        if issubclass(value_type, text_type) and value_type.__repr__ is text_type.__repr__:
            text = text_type.__getitem__(value, slice(0, max(budget, _PREFIX_LENGTH) + 1))
            return REDACTED if looks_like_credential(text) else _text_repr(text, budget)
    return _leaf_repr(value, budget)


def _container_text(
    value: Any, value_type: type, base: type, depth: int, budget: int, pattern: re.Pattern[str] | None
) -> str:
    """A container as its ``repr`` would show it, without calling any ``repr`` but
    its items' (bounded depth, items and length; sensitive keys and pairs redacted)."""
    opening, closing, empty = _SHAPES[base]
    size = base.__len__(value)
    fields = None
    if value_type is not base:
        name = value_type.__name__
        candidate = getattr(value_type, "_fields", None) if base is tuple else None
        if type(candidate) is tuple and len(candidate) == size:  # a namedtuple
            fields = candidate
            opening, closing, empty = f"{name}(", ")", f"{name}()"
        else:
            opening, closing, empty = f"{name}({opening}", f"{closing})", f"{name}()"
    if size == 0:
        return empty
    if depth >= MAX_DEPTH:
        return f"{opening}...{closing}"
    secret_pair = (
        size == 2 and (base is tuple or base is list) and _names_secret(base.__getitem__(value, 0), pattern)
    )
    items = dict.items(value) if base is dict else base.__iter__(value)
    parts: list[str] = []
    used = len(opening) + len(closing)
    for position, item in enumerate(islice(items, MAX_ITEMS + 1)):
        if position == MAX_ITEMS or used >= budget:
            parts.append("...")
            break
        remaining = budget - used
        if base is dict:
            key, item_value = item
            key_text = _render(key, depth + 1, remaining, pattern)
            if _names_secret(key, pattern):
                value_text = REDACTED
            else:
                value_text = _render(item_value, depth + 1, remaining - len(key_text), pattern)
            text = f"{key_text}: {value_text}"
        elif secret_pair and position == 1:
            text = REDACTED
        else:
            text = _render(item, depth + 1, remaining, pattern)
        if fields is not None:
            text = f"{fields[position]}={text}"
        parts.append(text)
        used += len(text) + 2
    body = ", ".join(parts)
    if base is tuple and fields is None and size == 1 and len(parts) == 1:
        body += ","
    return opening + body + closing


_MARKERS: dict[type, Any] = {
    Redacted: lambda value, depth, budget, pattern: REDACTED,
    Cut: lambda value, depth, budget, pattern: _cut_repr(value.head[: max(budget, 1)]),
    TypeRef: lambda value, depth, budget, pattern: f"<{value.name} object>",
    SizedRef: lambda value, depth, budget, pattern: f"<{value.name} of {value.size} items>",
    QuerySetRef: lambda value, depth, budget, pattern: f"<QuerySet of {value.label}>",
    ReprText: lambda value, depth, budget, pattern: value.text,
}
