"""The cost of delete receivers: deletes that took Django's slow path because of them.

``Collector.can_fast_delete()`` refuses a model with ``pre_delete`` or ``post_delete``
listeners, and a related model a delete cascades to is refused for the same reason.
``QuerySet.delete()`` then selects every row of those models into memory and sends
two signals per row, where one ``DELETE`` statement would have done. Nothing in
Django says so.

:func:`install_delete_watch` wraps ``Collector.delete`` once. Outside ``record()``
and with no observer, the wrapper only asks :func:`~signaltrace.core.store.is_watched`
(a global and a context-variable read) and calls Django's method. Otherwise it reads
what the collector gathered *before* Django deletes anything (the collected rows, and
which of their models have delete receivers), times the delete, and keeps a
:class:`~signaltrace.core.trace.SlowDelete` in every open ``record()`` block and tells
observers (:func:`~signaltrace.core.store.keep_finding`).
Observing never changes what Django decides: ``has_listeners()`` and
``_live_receivers()`` are the same calls Django makes on the same delete. Errors of
signaltrace's own are logged, never raised into the delete.
"""

from __future__ import annotations

import functools
import threading
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from signaltrace.core.effects import receiver_refs
from signaltrace.core.rendering import safe_repr
from signaltrace.core.store import is_watched, keep_finding
from signaltrace.core.trace import DeleteReceiver, SlowDelete
from signaltrace.safety import report_internal_error

if TYPE_CHECKING:
    from django.db.models.deletion import Collector

_lock = threading.Lock()
# Django's Collector.delete as it was before install_delete_watch(), while ours is in place.
_original: dict[str, Any] = {}


def install_delete_watch() -> None:
    """Wrap ``Collector.delete`` (idempotent). Called when signaltrace installs its hooks.

    Django's ORM is imported here, not when signaltrace is: ``import signaltrace`` stays
    light enough for ``opentelemetry-instrument``, which loads it before settings exist.
    """
    from django.db.models.deletion import Collector

    with _lock:
        if "delete" in _original:
            return
        django_delete = Collector.__dict__["delete"]

        @functools.wraps(django_delete)
        def delete(self: Collector) -> Any:
            if not is_watched():
                return django_delete(self)
            return _recorded_delete(self, django_delete)

        _original["delete"] = django_delete
        _original["ours"] = delete
        Collector.delete = delete  # type: ignore[method-assign]


def uninstall_delete_watch() -> None:
    """Put Django's ``Collector.delete`` back, unless another library wrapped ours since (idempotent)."""
    from django.db.models.deletion import Collector

    with _lock:
        if "delete" not in _original:
            return
        if Collector.__dict__.get("delete") is _original["ours"]:
            Collector.delete = _original["delete"]  # type: ignore[method-assign]
        _original.clear()


def is_delete_watch_installed() -> bool:
    return "delete" in _original


def _recorded_delete(collector: Collector, django_delete: Any) -> Any:
    try:
        found = _slow_path_facts(collector)
    except Exception:  # noqa: BLE001
        report_internal_error("slow delete")
        found = None
    start = perf_counter_ns()
    try:
        return django_delete(collector)
    finally:
        if found is not None:
            _keep(found, start, perf_counter_ns())


def _keep(found: tuple[Any, ...], start: int, end: int) -> None:
    try:
        model, pk, rows, sent, receivers = found
        finding = SlowDelete(model, pk, rows, sent, receivers, start, end - start)
        keep_finding(finding, 300 + 60 * len(rows) + 150 * len(receivers))
    except Exception:  # noqa: BLE001
        report_internal_error("slow delete")


def _slow_path_facts(collector: Collector) -> tuple[Any, ...] | None:
    """What the delete about to run will do, or None when signals do not force its slow path.

    Read before ``Collector.delete`` runs: it empties nothing, but sets primary keys to
    None at the end.
    """
    data = collector.data
    if not data:
        return None  # only fast deletes: no rows in memory, no signals
    if len(data) == 1:
        instances = next(iter(data.values()))
        if len(instances) == 1 and collector.can_fast_delete(next(iter(instances))):
            return None  # Django's own single-object shortcut
    receivers: list[DeleteReceiver] = []
    rows: list[tuple[str, int]] = []
    sent = 0
    for model, instances in data.items():
        rows.append((model._meta.label, len(instances)))
        if model._meta.auto_created:
            continue
        sent += 2 * len(instances)
        receivers += _delete_receivers(model)
    if not receivers:
        return None  # collected for other reasons (cascades, parents): not the signals' cost
    model, pk = _origin(collector, data)
    return model, pk, tuple(rows), sent, tuple(receivers)


def _delete_receivers(model: Any) -> list[DeleteReceiver]:
    from django.db.models.signals import post_delete, pre_delete

    return receiver_refs(pre_delete, model) + receiver_refs(post_delete, model)


def _origin(collector: Collector, data: dict[Any, Any]) -> tuple[str, str | None]:
    """``(app_label.Model, primary key or None)`` of what the delete was asked for."""
    origin = getattr(collector, "origin", None)  # Django 4.1+
    meta = getattr(type(origin), "_meta", None)
    if meta is not None:
        pk = origin.pk
        return meta.label, (str(pk) if type(pk) in (int, str) else safe_repr(pk))
    query_model = getattr(origin, "model", None)
    if query_model is not None and hasattr(query_model, "_meta"):
        return query_model._meta.label, None
    return next(iter(data))._meta.label, None
