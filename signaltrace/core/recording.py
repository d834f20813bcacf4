"""``record()`` blocks: turn recording on for one context (thread or asyncio task).

State lives in :data:`signaltrace.core.store.active_recorders`, a ``ContextVar``
holding the recorders of the enclosing blocks (default None, never a shared
mutable object), so threads and tasks never see each other's dispatches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from signaltrace.core.hooks import install, is_installed
from signaltrace.core.side_effects import watch_celery
from signaltrace.core.store import Recorder, active_recorders, is_recording
from signaltrace.core.trace import Trace
from signaltrace.core.transactions import adopt_open_blocks, watch_test_case
from signaltrace.safety import report_internal_error

__all__ = ["is_recording", "record"]


@contextmanager
def record() -> Iterator[Trace]:
    """Record every signal dispatch in this context (thread or asyncio task).

    Installs the hooks on first use. Blocks nest: an outer block also sees what an
    inner one recorded. Works in sync and async code alike; dispatches made in
    other threads or tasks that did not inherit this context are not recorded.
    """
    if not is_installed():
        install()
    try:
        watch_test_case()  # django.test and Celery may have been loaded after install()
        watch_celery()
    except Exception:  # noqa: BLE001
        report_internal_error("record")
    adopt_open_blocks()  # blocks opened before the hooks were installed (guarded)
    recorder = Recorder()
    outer = active_recorders.get()
    token = active_recorders.set((*outer, recorder) if outer else (recorder,))
    trace = Trace(recorder)
    try:
        yield trace
    finally:
        recorder.close()
        try:
            active_recorders.reset(token)
        except (ValueError, RuntimeError):
            # Exited in another thread or task than it was entered in (a block kept
            # open across a thread hop): the entering context cannot be reset from
            # here. The recorder is closed, so it keeps nothing more there.
            pass
