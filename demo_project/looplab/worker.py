"""The loop lab's Celery worker: one thread in the web process, started by the first task scenario.

The broker and the result store are in this process's memory (settings.py), so the
worker must be a thread here. Celery's test worker (``celery.contrib.testing.worker``)
is one too, but it reconfigures the root logger and the warning filters of the whole
process; this one leaves them alone.

The worker uses its own database connection (Django's connections are per thread), as a
worker in another process would: it sees only committed rows.
"""

import threading

from celery.worker import WorkController

#: Seconds the first task scenario waits for the worker to take tasks.
START_TIMEOUT = 30.0

_lock = threading.Lock()
#: Set once the worker takes tasks, or once its thread has ended (then it failed or stopped).
_ready = threading.Event()
_thread: threading.Thread | None = None
_failure = ""


def ensure_worker(timeout: float = START_TIMEOUT) -> str:
    """Start the worker thread once per process and wait until it takes tasks; "" or what went wrong.

    Safe to call from several request threads at once: one starts the thread, all wait.
    The worker is built in its own thread because Celery's Django fix-up closes the
    building thread's database connections. The thread is a daemon, so the process exits
    without stopping it (a task still running then is lost, which the demo can afford).
    """
    global _thread
    with _lock:
        if _thread is None:
            thread = threading.Thread(target=_serve, name="looplab-celery-worker", daemon=True)
            thread.start()  # if this raises, the next scenario tries again
            _thread = thread
    if not _ready.wait(timeout):
        return f"The Celery worker did not start within {timeout:g} s."
    if not _thread.is_alive():
        return _failure or "The Celery worker stopped; restart the demo to start it again."
    return _failure


def _serve() -> None:
    global _failure
    try:
        from demo_site.celery import app

        worker = WorkController(
            app=app,
            hostname="looplab@localhost",
            pool="solo",
            concurrency=1,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            ready_callback=lambda consumer: _ready.set(),
        )
        worker.start()
    except BaseException as exc:  # shown on the page, rather than a thread that died unseen
        _failure = f"The Celery worker failed: {type(exc).__name__}: {exc}"
        raise
    finally:
        _ready.set()  # ended: no page waits for it any longer
