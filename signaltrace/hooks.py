"""The only module that touches Django's dispatcher internals.

``install()`` replaces ``send``, ``send_robust``, ``asend`` and ``asend_robust`` on
the ``Signal`` class with versions that behave exactly like Django's and also keep
the frame chain used for nesting and loop detection, and, inside ``record()``,
write records. It also wraps ``connect`` to warn about receivers connected twice
or dropped for a taken ``dispatch_uid`` (see :mod:`signaltrace.connections`).

Why the receiver loop is copied rather than wrapped:

* Django's ``send`` calls each receiver straight from its own frame; code such as
  Django's ``complex_setting_changed`` warns with a fixed ``stacklevel``, so the
  copies add no frame between a sender and its receivers (on Django 4.2 under
  Python < 3.12, where Django's list comprehension is a frame of its own, the
  copy adds exactly one frame too).
* Return values must hold the receivers exactly as ``_live_receivers`` gave them
  (no wrapper objects), and we must call ``self._live_receivers`` so caching,
  weak references and other libraries' patches of it (sentry-sdk) keep working.
* No receiver is ever connected: ``has_listeners()`` decides Django's fast delete
  path, and observing must not change query counts.

If the running Django's dispatcher has a shape this module does not know, the
hooks fall back to calling Django's own methods and recording each dispatch from
the responses it returns (no per-receiver timing).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import types
from collections.abc import Coroutine, Generator
from threading import get_ident
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.dispatch import dispatcher
from django.dispatch.dispatcher import NO_RECEIVERS, Signal

from signaltrace.connections import wrap_connect
from signaltrace.errors import SignalLoopError
from signaltrace.loops import check_for_loop, report_swallowed_loop
from signaltrace.recording import (
    F_CALL,
    F_PARENT,
    F_RECEIVER,
    active_recorders,
    adopt_cell,
    begin_call,
    begin_dispatch,
    current_frame,
    end_call,
    end_dispatch,
    frame_cell,
    observers,
    record_empty_dispatch,
)
from signaltrace.safety import report_internal_error

_METHOD_NAMES = ("send", "send_robust", "asend", "asend_robust")

# Django's own methods, taken once at import, before anything is patched.
_django_methods: dict[str, Any] = {
    name: Signal.__dict__[name] for name in _METHOD_NAMES if name in Signal.__dict__
}
# 5.0+: _live_receivers returns (sync, async); 4.2: one list.
_LIVE_IS_PAIR = "asend" in _django_methods
# Django's connect, wrapped while installed to warn about duplicate and dropped receivers.
_django_connect = Signal.__dict__["connect"]
# 6.1+: async receivers run in one TaskGroup sharing a context; earlier: gather.
_run_parallel = getattr(dispatcher, "_run_parallel", None)
_django_logger = logging.getLogger("django.dispatch")

_install_lock = threading.Lock()
_installed: dict[str, Any] = {}


def _new_frame(signal: Signal, sender: Any, named: dict[str, Any], parent: list[Any] | None) -> list[Any]:
    """A frame for the loop guard and for nesting (fields ``F_*``; inlined in ``send``)."""
    return [signal, sender, named.get("instance"), parent, None, None]


def _log_robust_failure(signal: Signal, receiver: Any, err: Exception, frame: list[Any]) -> None:
    """Log like Django's robust methods (through the signal's own method if any).

    Django logs outside the receiver: signals sent while logging (an
    AdminEmailHandler rendering its template) are not the failed receiver's
    children, so ``frame``'s parent is the current frame while it logs. Only on
    this error path is a ``ContextVar`` set.
    """
    token = frame_cell.set([frame[F_PARENT], get_ident()])
    try:
        log = getattr(signal, "_log_robust_failure", None)
        if log is not None:
            log(receiver, err)
        else:
            _django_logger.error(
                "Error calling %s in Signal.send_robust() (%s)",
                receiver.__qualname__,
                err,
                exc_info=err,
            )
    finally:
        frame_cell.reset(token)


def _close_dispatch(dispatch: list[Any] | None) -> None:
    if dispatch is not None:
        end_dispatch(dispatch)


# --------------------------------------------------------------------------- send


def _send(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    """``Signal.send``, recorded. Same results, exceptions and frames as Django's."""
    if not self.receivers or self.sender_receivers_cache.get(sender) is NO_RECEIVERS:
        if active_recorders.get() is not None:
            record_empty_dispatch(self, sender, named, "send")
        return []
    if _LIVE_IS_PAIR:
        sync_receivers, async_receivers = self._live_receivers(sender)
    else:
        sync_receivers, async_receivers = self._live_receivers(sender), ()
    cell = frame_cell.get()
    cell_token = None
    if cell is None or cell[1] != get_ident():  # CELL_THREAD; see recording.adopt_cell()
        cell, cell_token = adopt_cell(cell)
    parent = cell[0]  # CELL_FRAME
    frame = [self, sender, named.get("instance"), parent, None, None]  # _new_frame(), inlined
    recorders = active_recorders.get()
    if parent is not None:
        check_for_loop(frame, recorders, named, "send", len(sync_receivers) + len(async_receivers))
    dispatch = (
        None
        if recorders is None and not observers
        else begin_dispatch(
            recorders, self, sender, named, "send", parent, len(sync_receivers) + len(async_receivers)
        )
    )
    cell[0] = frame
    try:
        responses = []
        if dispatch is None:
            for receiver in sync_receivers:
                frame[F_RECEIVER] = receiver
                responses.append((receiver, receiver(signal=self, sender=sender, **named)))
        else:
            for receiver in sync_receivers:
                frame[F_RECEIVER] = receiver
                call = frame[F_CALL] = begin_call(dispatch, receiver, False)
                try:
                    response = receiver(signal=self, sender=sender, **named)
                except BaseException as exc:
                    end_call(call, exc)
                    raise
                end_call(call)
                responses.append((receiver, response))
        if async_receivers:
            responses.extend(
                async_to_sync(_run_async_receivers)(
                    self, sender, named, async_receivers, frame, dispatch, False
                )
            )
        return responses
    finally:
        cell[0] = parent
        if cell_token is not None:
            frame_cell.reset(cell_token)
        if dispatch is not None:
            end_dispatch(dispatch)


def _send_robust(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    """``Signal.send_robust``, recorded; swallowed exceptions are recorded too."""
    if not self.receivers or self.sender_receivers_cache.get(sender) is NO_RECEIVERS:
        if active_recorders.get() is not None:
            record_empty_dispatch(self, sender, named, "send_robust")
        return []
    if _LIVE_IS_PAIR:
        sync_receivers, async_receivers = self._live_receivers(sender)
    else:
        sync_receivers, async_receivers = self._live_receivers(sender), ()
    cell = frame_cell.get()
    cell_token = None
    if cell is None or cell[1] != get_ident():  # CELL_THREAD; see recording.adopt_cell()
        cell, cell_token = adopt_cell(cell)
    parent = cell[0]  # CELL_FRAME
    frame = [self, sender, named.get("instance"), parent, None, None]  # _new_frame(), inlined
    recorders = active_recorders.get()
    if parent is not None:
        check_for_loop(frame, recorders, named, "send_robust", len(sync_receivers) + len(async_receivers))
    dispatch = (
        None
        if recorders is None and not observers
        else begin_dispatch(
            recorders, self, sender, named, "send_robust", parent, len(sync_receivers) + len(async_receivers)
        )
    )
    cell[0] = frame
    try:
        responses = []
        for receiver in sync_receivers:
            frame[F_RECEIVER] = receiver
            call = frame[F_CALL] = None if dispatch is None else begin_call(dispatch, receiver, False)
            try:
                response = receiver(signal=self, sender=sender, **named)
            except Exception as err:  # noqa: BLE001 - send_robust's contract
                if call is not None:
                    end_call(call, err)
                if isinstance(err, SignalLoopError):
                    report_swallowed_loop(err)
                _log_robust_failure(self, receiver, err, frame)
                responses.append((receiver, err))
            except BaseException as exc:
                if call is not None:
                    end_call(call, exc)
                raise
            else:
                if call is not None:
                    end_call(call)
                responses.append((receiver, response))
        if async_receivers:
            responses.extend(
                async_to_sync(_run_async_receivers)(
                    self, sender, named, async_receivers, frame, dispatch, True
                )
            )
        return responses
    finally:
        cell[0] = parent
        if cell_token is not None:
            frame_cell.reset(cell_token)
        if dispatch is not None:
            end_dispatch(dispatch)


if not _LIVE_IS_PAIR and sys.version_info < (3, 12):
    _send_without_comprehension_frame = _send

    def _send(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:  # type: ignore[no-redef]
        """Django 4.2's ``send`` loops in a list comprehension, a frame of its own
        before Python 3.12: this extra frame keeps ``stacklevel`` warnings right."""
        return _send_without_comprehension_frame(self, sender, **named)


# ----------------------------------------------------------------- async receivers


@types.coroutine
def _in_frame(coroutine: Coroutine[Any, Any, Any], frame: list[Any]) -> Generator[Any, Any, Any]:
    """Drive ``coroutine`` with a frame cell of its own, starting at ``frame``.

    On Django 6.1 the async receivers of one dispatch run as tasks that share a
    single context, so a plain ``ContextVar.set`` inside one receiver would be seen
    by its siblings. Setting the frame around each step of the coroutine, and
    remembering what the coroutine left in it between steps, makes the current
    frame task-local while every other context variable stays shared, as Django
    intends.
    """
    value: Any = None
    error: BaseException | None = None
    cell = [frame, get_ident()]
    while True:
        token = frame_cell.set(cell)
        try:
            yielded = coroutine.send(value) if error is None else coroutine.throw(error)
        except StopIteration as stop:
            return stop.value
        finally:
            cell = frame_cell.get()
            frame_cell.reset(token)
        try:
            value = yield yielded
            error = None
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - forwarded into the coroutine
            value = None
            error = exc


async def _call_async_receiver(
    signal: Signal,
    sender: Any,
    named: dict[str, Any],
    receiver: Any,
    frame: list[Any],
    dispatch: list[Any] | None,
    robust: bool,
) -> Any:
    """Await one async receiver in a frame of its own, recording it if asked."""
    own_frame = frame.copy()
    own_frame[F_RECEIVER] = receiver
    call = own_frame[F_CALL] = None if dispatch is None else begin_call(dispatch, receiver, True)
    try:
        response = await _in_frame(receiver(signal=signal, sender=sender, **named), own_frame)
    except Exception as err:
        if call is not None:
            end_call(call, err)
        if not robust:
            raise
        if isinstance(err, SignalLoopError):
            report_swallowed_loop(err)
        _log_robust_failure(signal, receiver, err, frame)
        return err
    except BaseException as exc:
        if call is not None:
            end_call(call, exc)
        raise
    if call is not None:
        end_call(call)
    return response


async def _run_async_receivers(
    signal: Signal,
    sender: Any,
    named: dict[str, Any],
    receivers: list[Any],
    frame: list[Any],
    dispatch: list[Any] | None,
    robust: bool,
) -> list[tuple[Any, Any]]:
    """Run async receivers concurrently, the way this Django version does."""
    coroutines = [
        _call_async_receiver(signal, sender, named, receiver, frame, dispatch, robust)
        for receiver in receivers
    ]
    if _run_parallel is not None:
        results = await _run_parallel(*coroutines)
    else:
        results = await asyncio.gather(*coroutines)
    return list(zip(receivers, results, strict=False))


def _call_sync_receivers(
    signal: Signal,
    sender: Any,
    named: dict[str, Any],
    receivers: list[Any],
    frame: list[Any],
    dispatch: list[Any] | None,
    robust: bool,
) -> list[tuple[Any, Any]]:
    """The sync receivers of an ``asend``; runs in a thread via ``sync_to_async``."""
    responses = []
    for receiver in receivers:
        frame[F_RECEIVER] = receiver
        call = frame[F_CALL] = None if dispatch is None else begin_call(dispatch, receiver, False)
        try:
            response = receiver(signal=signal, sender=sender, **named)
        except Exception as err:
            if call is not None:
                end_call(call, err)
            if not robust:
                raise
            if isinstance(err, SignalLoopError):
                report_swallowed_loop(err)
            _log_robust_failure(signal, receiver, err, frame)
            responses.append((receiver, err))
        except BaseException as exc:
            if call is not None:
                end_call(call, exc)
            raise
        else:
            if call is not None:
                end_call(call)
            responses.append((receiver, response))
    return responses


async def _no_responses() -> list[tuple[Any, Any]]:
    return []


async def _asend_common(
    self: Signal, sender: Any, named: dict[str, Any], method: str
) -> list[tuple[Any, Any]]:
    robust = method == "asend_robust"
    if not self.receivers or self.sender_receivers_cache.get(sender) is NO_RECEIVERS:
        if active_recorders.get() is not None:
            record_empty_dispatch(self, sender, named, method)
        return []
    sync_receivers, async_receivers = self._live_receivers(sender)
    parent = current_frame()
    frame = _new_frame(self, sender, named, parent)
    recorders = active_recorders.get()
    if parent is not None:
        check_for_loop(frame, recorders, named, method, len(sync_receivers) + len(async_receivers))
    dispatch = (
        None
        if recorders is None and not observers
        else begin_dispatch(
            recorders, self, sender, named, method, parent, len(sync_receivers) + len(async_receivers)
        )
    )
    # Held across awaits: a cell of our own, never the one sibling tasks share.
    token = frame_cell.set([frame, get_ident()])
    try:
        if sync_receivers:
            sync_group = sync_to_async(_call_sync_receivers)(
                self, sender, named, sync_receivers, frame, dispatch, robust
            )
        else:
            sync_group = _no_responses()
        arguments = (self, sender, named, async_receivers, frame, dispatch, robust)
        if _run_parallel is not None:
            # 6.1+: the sync group first; the async group is not even created if it raises.
            responses = await sync_group
            responses.extend(await _run_async_receivers(*arguments))
        else:
            responses, async_responses = await asyncio.gather(sync_group, _run_async_receivers(*arguments))
            responses.extend(async_responses)
        return responses
    finally:
        frame_cell.reset(token)
        _close_dispatch(dispatch)


async def _asend(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    """``Signal.asend``, recorded."""
    return await _asend_common(self, sender, named, "asend")


async def _asend_robust(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    """``Signal.asend_robust``, recorded."""
    return await _asend_common(self, sender, named, "asend_robust")


# ---------------------------------------------------------------------- fallback


def _record_from_responses(
    dispatch: list[Any] | None, responses: list[tuple[Any, Any]], robust: bool
) -> None:
    """Fallback recording: one call per response (no timing), exceptions from robust results.

    Each call is begun and ended like any other, so observers see both events.
    """
    if dispatch is None:
        return
    for receiver, response in responses:
        call = begin_call(dispatch, receiver, False)
        end_call(call, response if robust and isinstance(response, Exception) else None)


def _fallback_method(name: str) -> Any:
    """A wrapper around Django's own method, for dispatchers of unknown shape."""
    django_method = _django_methods[name]
    robust = name.endswith("robust")

    if name.startswith("a"):

        async def async_method(self: Signal, sender: Any, **named: Any) -> Any:
            recorders = active_recorders.get()
            dispatch = (
                None
                if recorders is None and not observers
                else begin_dispatch(
                    recorders, self, sender, named, name, current_frame(), 1 if self.receivers else 0
                )
            )
            try:
                responses = await django_method(self, sender, **named)
                _record_from_responses(dispatch, responses, robust)
                return responses
            finally:
                _close_dispatch(dispatch)

        return async_method

    def method(self: Signal, sender: Any, **named: Any) -> Any:
        recorders = active_recorders.get()
        dispatch = (
            None
            if recorders is None and not observers
            else begin_dispatch(
                recorders, self, sender, named, name, current_frame(), 1 if self.receivers else 0
            )
        )
        try:
            responses = django_method(self, sender, **named)
            _record_from_responses(dispatch, responses, robust)
            return responses
        finally:
            _close_dispatch(dispatch)

    return method


def _dispatcher_shape_is_known() -> bool:
    """Whether this Django's dispatcher matches one the copied loops were written for."""
    try:
        probe = Signal()
        live = probe._live_receivers(None)
    except Exception:  # noqa: BLE001
        return False
    if _LIVE_IS_PAIR:
        return isinstance(live, tuple) and len(live) == 2 and all(isinstance(part, list) for part in live)
    return isinstance(live, list)


def _replacement_methods() -> dict[str, Any]:
    if not _dispatcher_shape_is_known():
        logging.getLogger("signaltrace").warning(
            "signaltrace does not know this Django's dispatcher; recording dispatches "
            "without per-receiver timings"
        )
        return {name: _fallback_method(name) for name in _django_methods}
    ours = {"send": _send, "send_robust": _send_robust, "asend": _asend, "asend_robust": _asend_robust}
    return {name: ours[name] for name in _django_methods}


# ------------------------------------------------------------------ install / uninstall


def install() -> None:
    """Patch ``Signal`` (idempotent; safe before Django settings are configured)."""
    with _install_lock:
        if _installed:
            return
        try:
            replacements = _replacement_methods()
        except Exception:  # noqa: BLE001
            report_internal_error("install")
            return
        replacements["connect"] = wrap_connect(_django_connect)
        for name, method in replacements.items():
            setattr(Signal, name, method)
        _installed.update(replacements)


def uninstall() -> None:
    """Restore Django's own methods on ``Signal`` exactly (idempotent)."""
    with _install_lock:
        for name, method in _installed.items():
            if Signal.__dict__.get(name) is method:
                setattr(Signal, name, _django_connect if name == "connect" else _django_methods[name])
        _installed.clear()


def is_installed() -> bool:
    """Whether the hooks are in place."""
    return bool(_installed)
