"""Patches Django's ``Signal``: the one place a dispatch passes through signaltrace.

``install()`` replaces ``send``, ``send_robust``, ``asend`` and ``asend_robust`` on
the ``Signal`` class with versions that behave exactly like Django's and also keep
the frame chain used for nesting and loop detection, and, inside ``record()``,
write records. It also wraps ``connect`` to report receivers connected twice or
dropped for a taken ``dispatch_uid`` (see :mod:`signaltrace.core.connections`).
Another library's patch of these methods is composed with, never replaced.

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

Every path shares its set-up (:func:`_enter`: the frame, the loop guard, the
record) and teardown (:func:`_leave`); only the receiver loops are written out
per path, because each receiver must be called from the dispatching method's own
frame.
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

from signaltrace.core import store
from signaltrace.core.connections import wrap_connect
from signaltrace.core.deletes import install_delete_watch, uninstall_delete_watch
from signaltrace.core.frames import (
    CELL_FRAME,
    CELL_THREAD,
    F_CALL,
    F_CELL,
    F_PARENT,
    F_RECEIVER,
    F_RECORD,
    F_TOKEN,
    Frame,
    adopt_cell,
    get_frame_cell,
    reset_frame_cell,
    set_frame_cell,
)
from signaltrace.core.loops import check_for_loop, report_swallowed_loop
from signaltrace.core.side_effects import install_side_effect_watch, uninstall_side_effect_watch
from signaltrace.core.store import (
    begin_call,
    begin_dispatch,
    current_recorders,
    end_call,
    end_dispatch,
    get_active_recorders,
    open_count,
)
from signaltrace.core.transactions import install_transaction_watch, uninstall_transaction_watch
from signaltrace.errors import SignalLoopError
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
# What install() put on Signal, by name, and whether the hooks are installed (a
# library's wrapper around ours may leave nothing for us to replace).
_installed: dict[str, Any] = {}
_active = False


# ------------------------------------------------------------ shared set-up and teardown


def _enter(
    signal: Signal,
    sender: Any,
    named: dict[str, Any],
    method: str,
    receiver_count: int,
    recorders: tuple[Any, ...] | None,
    own_cell: bool,
) -> Frame:
    """Set-up shared by every dispatch path: the frame, the loop guard and the record.

    The frame becomes current before the first receiver runs. ``own_cell``: the
    frame is held across ``await`` (``asend``), so it gets a cell of its own set
    with ``ContextVar.set`` rather than the shared one (see
    :mod:`signaltrace.core.frames`). Raises :class:`SignalLoopError` when the loop
    guard stops the dispatch, with nothing left to undo. ``recorders``: the
    caller's read of ``current_recorders()``.
    """
    cell = get_frame_cell()
    if own_cell:
        parent = None if cell is None else cell[CELL_FRAME]
        cell = [None, get_ident()]
        token = set_frame_cell(cell)
    elif cell is None or cell[CELL_THREAD] != get_ident():
        cell, token = adopt_cell(cell)
        parent = cell[CELL_FRAME]
    else:
        token = None
        parent = cell[CELL_FRAME]
    frame = [signal, sender, named, parent, None, None, None, cell, token]
    if parent is not None:
        try:
            check_for_loop(frame, recorders, named, method, receiver_count)
        except SignalLoopError:
            if token is not None:
                reset_frame_cell(token)
            raise
    if recorders is not None or store.observed is not None:
        frame[F_RECORD] = begin_dispatch(recorders, signal, sender, named, method, parent, receiver_count)
    cell[CELL_FRAME] = frame
    return frame


def _leave(frame: Frame) -> None:
    """Teardown shared by every dispatch path: the parent frame is current again, the record closed.

    Idempotent for the cell, so ``send`` may restore it inline and call this only
    when there is more to undo.
    """
    frame[F_CELL][CELL_FRAME] = frame[F_PARENT]
    token = frame[F_TOKEN]
    if token is not None:
        reset_frame_cell(token)
    record = frame[F_RECORD]
    if record is not None:
        end_dispatch(record)


def _record_unheard(
    recorders: tuple[Any, ...], signal: Signal, sender: Any, named: dict[str, Any], method: str
) -> None:
    """Record a dispatch that found no receivers ("sent, but nobody listened"), while recording."""
    cell = get_frame_cell()
    begin_dispatch(recorders, signal, sender, named, method, None if cell is None else cell[CELL_FRAME], 0)


def _swallow(signal: Signal, receiver: Any, err: Exception, frame: Frame, call: Any) -> Exception:
    """What a robust method does with a receiver's exception: record, report, log, return it."""
    if call is not None:
        end_call(call, err)
    if isinstance(err, SignalLoopError):
        report_swallowed_loop(err)
    _log_robust_failure(signal, receiver, err, frame)
    return err


def _log_robust_failure(signal: Signal, receiver: Any, err: Exception, frame: Frame) -> None:
    """Log like Django's robust methods (through the signal's own method if any).

    Django logs outside the receiver: signals sent while logging (an
    AdminEmailHandler rendering its template) are not the failed receiver's
    children, so ``frame``'s parent is the current frame while it logs. Only on
    this error path is a ``ContextVar`` set.
    """
    token = set_frame_cell([frame[F_PARENT], get_ident()])
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
        reset_frame_cell(token)


# --------------------------------------------------------------------------- send


def _send(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    """``Signal.send``, recorded. Same results, exceptions and frames as Django's."""
    if not self.receivers or self.sender_receivers_cache.get(sender) is NO_RECEIVERS:
        # store.current_recorders() and _record_unheard(), inlined: every save's pre_save comes here
        recorders = get_active_recorders() if open_count[0] else None
        if recorders is not None:
            cell = get_frame_cell()
            begin_dispatch(recorders, self, sender, named, "send", None if cell is None else cell[0], 0)
        return []
    if _LIVE_IS_PAIR:
        sync_receivers, async_receivers = self._live_receivers(sender)
    else:
        sync_receivers, async_receivers = self._live_receivers(sender), ()
    recorders = get_active_recorders() if open_count[0] else None  # store.current_recorders(), inlined
    cell = get_frame_cell()
    # The one copy of _enter()'s top-level case (no parent frame, so no loop to check),
    # for the most common dispatch of all. Indexes are literal on this path (frames.py
    # names them: CELL_FRAME 0, CELL_THREAD 1, F_PARENT 3, F_RECEIVER 4, F_CALL 5,
    # F_RECORD 6, F_CELL 7, F_TOKEN 8): a constant costs less than a global's lookup.
    if cell is not None and cell[0] is None and cell[1] == get_ident():
        frame = [self, sender, named, None, None, None, None, cell, None]
        if recorders is None and store.observed is None:
            dispatch = None  # the app is not recording: nothing more to do
        else:
            dispatch = frame[6] = begin_dispatch(
                recorders, self, sender, named, "send", None, len(sync_receivers) + len(async_receivers)
            )
        cell[0] = frame
    else:
        frame = _enter(
            self, sender, named, "send", len(sync_receivers) + len(async_receivers), recorders, False
        )
        cell, dispatch = frame[7], frame[6]
    try:
        responses = []
        if dispatch is None:
            for receiver in sync_receivers:
                frame[4] = receiver
                responses.append((receiver, receiver(signal=self, sender=sender, **named)))
        else:
            for receiver in sync_receivers:
                frame[4] = receiver
                call = frame[5] = begin_call(dispatch, receiver)
                try:
                    response = receiver(signal=self, sender=sender, **named)
                except BaseException as exc:
                    end_call(call, exc)
                    raise
                end_call(call)
                responses.append((receiver, response))
        if async_receivers:
            responses.extend(
                async_to_sync(_run_async_receivers)(self, sender, named, async_receivers, frame, False)
            )
        return responses
    finally:
        # _leave(), with its common cases inlined.
        cell[0] = frame[3]
        if frame[8] is not None:
            _leave(frame)
        elif dispatch is not None:
            end_dispatch(dispatch)


def _send_robust(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    """``Signal.send_robust``, recorded; swallowed exceptions are recorded too."""
    if not self.receivers or self.sender_receivers_cache.get(sender) is NO_RECEIVERS:
        recorders = current_recorders()
        if recorders is not None:
            _record_unheard(recorders, self, sender, named, "send_robust")
        return []
    if _LIVE_IS_PAIR:
        sync_receivers, async_receivers = self._live_receivers(sender)
    else:
        sync_receivers, async_receivers = self._live_receivers(sender), ()
    frame = _enter(
        self,
        sender,
        named,
        "send_robust",
        len(sync_receivers) + len(async_receivers),
        current_recorders(),
        False,
    )
    dispatch = frame[F_RECORD]
    try:
        responses = []
        for receiver in sync_receivers:
            frame[F_RECEIVER] = receiver
            call = frame[F_CALL] = None if dispatch is None else begin_call(dispatch, receiver)
            try:
                response = receiver(signal=self, sender=sender, **named)
            except Exception as err:  # noqa: BLE001 - send_robust's contract
                responses.append((receiver, _swallow(self, receiver, err, frame, call)))
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
                async_to_sync(_run_async_receivers)(self, sender, named, async_receivers, frame, True)
            )
        return responses
    finally:
        _leave(frame)


if not _LIVE_IS_PAIR and sys.version_info < (3, 12):
    _send_without_comprehension_frame = _send

    def _send(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:  # type: ignore[no-redef]
        """Django 4.2's ``send`` loops in a list comprehension, a frame of its own
        before Python 3.12: this extra frame keeps ``stacklevel`` warnings right."""
        return _send_without_comprehension_frame(self, sender, **named)


# ----------------------------------------------------------------- async receivers


@types.coroutine
def _in_frame(coroutine: Coroutine[Any, Any, Any], frame: Frame) -> Generator[Any, Any, Any]:
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
        token = set_frame_cell(cell)
        try:
            yielded = coroutine.send(value) if error is None else coroutine.throw(error)
        except StopIteration as stop:
            return stop.value
        finally:
            cell = get_frame_cell()
            reset_frame_cell(token)
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
    signal: Signal, sender: Any, named: dict[str, Any], receiver: Any, frame: Frame, robust: bool
) -> Any:
    """Await one async receiver in a frame of its own, recording it if asked."""
    own_frame = frame.copy()
    own_frame[F_RECEIVER] = receiver
    dispatch = frame[F_RECORD]
    call = own_frame[F_CALL] = None if dispatch is None else begin_call(dispatch, receiver, True)
    try:
        response = await _in_frame(receiver(signal=signal, sender=sender, **named), own_frame)
    except Exception as err:
        if not robust:
            if call is not None:
                end_call(call, err)
            raise
        return _swallow(signal, receiver, err, frame, call)
    except BaseException as exc:
        if call is not None:
            end_call(call, exc)
        raise
    if call is not None:
        end_call(call)
    return response


async def _run_async_receivers(
    signal: Signal, sender: Any, named: dict[str, Any], receivers: list[Any], frame: Frame, robust: bool
) -> list[tuple[Any, Any]]:
    """Run async receivers concurrently, the way this Django version does."""
    coroutines = [
        _call_async_receiver(signal, sender, named, receiver, frame, robust) for receiver in receivers
    ]
    if _run_parallel is not None:
        results = await _run_parallel(*coroutines)
    else:
        results = await asyncio.gather(*coroutines)
    return list(zip(receivers, results, strict=False))


def _call_sync_receivers(
    signal: Signal, sender: Any, named: dict[str, Any], receivers: list[Any], frame: Frame, robust: bool
) -> list[tuple[Any, Any]]:
    """The sync receivers of an ``asend``; runs in a thread via ``sync_to_async``."""
    dispatch = frame[F_RECORD]
    responses = []
    for receiver in receivers:
        frame[F_RECEIVER] = receiver
        call = frame[F_CALL] = None if dispatch is None else begin_call(dispatch, receiver)
        try:
            response = receiver(signal=signal, sender=sender, **named)
        except Exception as err:
            if not robust:
                if call is not None:
                    end_call(call, err)
                raise
            responses.append((receiver, _swallow(signal, receiver, err, frame, call)))
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
        recorders = current_recorders()
        if recorders is not None:
            _record_unheard(recorders, self, sender, named, method)
        return []
    sync_receivers, async_receivers = self._live_receivers(sender)
    count = len(sync_receivers) + len(async_receivers)
    frame = _enter(self, sender, named, method, count, current_recorders(), True)
    try:
        if sync_receivers:
            sync_group = sync_to_async(_call_sync_receivers)(
                self, sender, named, sync_receivers, frame, robust
            )
        else:
            sync_group = _no_responses()
        arguments = (self, sender, named, async_receivers, frame, robust)
        if _run_parallel is not None:
            # 6.1+: the sync group first; the async group is not even created if it raises.
            responses = await sync_group
            responses.extend(await _run_async_receivers(*arguments))
        else:
            responses, async_responses = await asyncio.gather(sync_group, _run_async_receivers(*arguments))
            responses.extend(async_responses)
        return responses
    finally:
        _leave(frame)


async def _asend(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    """``Signal.asend``, recorded."""
    return await _asend_common(self, sender, named, "asend")


async def _asend_robust(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    """``Signal.asend_robust``, recorded."""
    return await _asend_common(self, sender, named, "asend_robust")


# ---------------------------------------------------------------------- fallback


def _record_from_responses(frame: Frame, responses: list[tuple[Any, Any]], robust: bool) -> None:
    """Fallback recording: one call per response (no timing), exceptions from robust results.

    Each call is begun and ended like any other, so observers see both events.
    """
    dispatch = frame[F_RECORD]
    if dispatch is None:
        return
    for receiver, response in responses:
        call = begin_call(dispatch, receiver)
        end_call(call, response if robust and isinstance(response, Exception) else None)


def _fallback_method(name: str, django_method: Any) -> Any:
    """A wrapper around ``django_method``: Django's own method, for a dispatcher of unknown
    shape, or another library's patch of it, which must keep being called."""
    robust = name.endswith("robust")

    if name.startswith("a"):

        async def async_method(self: Signal, sender: Any, **named: Any) -> Any:
            frame = _enter(self, sender, named, name, 1 if self.receivers else 0, current_recorders(), True)
            try:
                responses = await django_method(self, sender, **named)
                _record_from_responses(frame, responses, robust)
                return responses
            finally:
                _leave(frame)

        return async_method

    def method(self: Signal, sender: Any, **named: Any) -> Any:
        frame = _enter(self, sender, named, name, 1 if self.receivers else 0, current_recorders(), False)
        try:
            responses = django_method(self, sender, **named)
            _record_from_responses(frame, responses, robust)
            return responses
        finally:
            _leave(frame)

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
    """What to put on ``Signal`` for each method, given what is there now."""
    known_shape = _dispatcher_shape_is_known()
    if not known_shape:
        logging.getLogger("signaltrace").warning(
            "signaltrace does not know this Django's dispatcher; recording dispatches "
            "without per-receiver timings"
        )
    ours = {"send": _send, "send_robust": _send_robust, "asend": _asend, "asend_robust": _asend_robust}
    replacements = {}
    for name in _django_methods:
        current = Signal.__dict__.get(name)
        if _wraps_ours(current):
            continue  # another library wrapped ours and left it there: ours still runs
        if known_shape and _is_djangos(current):
            replacements[name] = ours[name]
        else:
            if known_shape:
                logging.getLogger("signaltrace").info(
                    "Signal.%s is patched by another library (%s); signaltrace records around it, "
                    "without per-receiver timings",
                    name,
                    getattr(current, "__module__", "?"),
                )
            replacements[name] = _fallback_method(name, current)
    return replacements


def _unwrapped(method: Any) -> list[Any]:
    """``method`` and every function it wraps (``__wrapped__``, as ``functools.wraps`` sets it)."""
    chain = [method]
    for _ in range(20):
        method = getattr(method, "__wrapped__", None)
        if method is None:
            break
        chain.append(method)
    return chain


def _is_djangos(method: Any) -> bool:
    """Whether ``method`` is Django's own, not a patch (whose code lives elsewhere)."""
    code = getattr(method, "__code__", None)
    return code is not None and code.co_filename == dispatcher.__file__


def _wraps_ours(method: Any) -> bool:
    ours = (_send, _send_robust, _asend, _asend_robust, *_installed_before.values())
    return any(function in ours for function in _unwrapped(method)[1:])


# ------------------------------------------------------------------ install / uninstall

# Our methods from earlier installs: a library may have wrapped one since.
_installed_before: dict[str, Any] = {}
# What each name held before we replaced it, restored by uninstall().
_previous: dict[str, Any] = {}


def install() -> None:
    """Patch ``Signal`` (idempotent; safe before Django settings are configured).

    Composes with other libraries' patches: one made before is wrapped and keeps
    being called (:func:`_fallback_method`); one made after, around ours, is left
    in place by :func:`uninstall`.
    """
    with _install_lock:
        global _active
        if _active:
            return
        try:
            replacements = _replacement_methods()
            current_connect = Signal.__dict__["connect"]
            if not _wraps_ours(current_connect):
                replacements["connect"] = wrap_connect(current_connect)
        except Exception:  # noqa: BLE001
            report_internal_error("install")
            return
        for name, method in replacements.items():
            _previous[name] = Signal.__dict__.get(name)
            setattr(Signal, name, method)
            _installed_before[name] = method
        _installed.update(replacements)
        _active = True
    for install_watch in (install_delete_watch, install_transaction_watch, install_side_effect_watch):
        try:
            install_watch()
        except Exception:  # noqa: BLE001
            report_internal_error("install")


def uninstall() -> None:
    """Restore what ``Signal`` held before :func:`install`, where ours is still in place (idempotent).

    A method another library has wrapped around ours since is left as it is.
    """
    global _active
    with _install_lock:
        for name, method in _installed.items():
            if name in _previous and Signal.__dict__.get(name) is method:
                setattr(Signal, name, _previous.pop(name))
        _installed.clear()
        _active = False
    uninstall_delete_watch()
    uninstall_transaction_watch()
    uninstall_side_effect_watch()


def is_installed() -> bool:
    """Whether the hooks are in place."""
    return _active
