"""signaltrace: see what Django signals really do.

Usage::

    import signaltrace

    with signaltrace.record() as trace:
        User.objects.create(username="ada")
    for dispatch in trace.dispatches:
        print(dispatch.depth, dispatch.signal_name, dispatch.sender_name,
              [call.receiver_name for call in dispatch.calls])

Everything public is importable from here; the consumers live in their own
packages: ``signaltrace.panels`` (django-debug-toolbar), ``signaltrace.otel``
(OpenTelemetry), ``signaltrace.testing`` (pytest and unittest) and
``signaltrace.graph`` (the signal map).
"""

from signaltrace.core import (
    Dispatch,
    DispatchObserver,
    LiveCall,
    LiveDispatch,
    Loop,
    LoopStep,
    ReceiverCall,
    SlowDelete,
    Trace,
    add_observer,
    install,
    is_installed,
    is_recording,
    record,
    remove_observer,
    uninstall,
)
from signaltrace.errors import SignalLoopError, SignalTraceError

__version__ = "0.1.0"

__all__ = [
    "Dispatch",
    "DispatchObserver",
    "LiveCall",
    "LiveDispatch",
    "Loop",
    "LoopStep",
    "ReceiverCall",
    "SignalLoopError",
    "SignalTraceError",
    "SlowDelete",
    "Trace",
    "add_observer",
    "install",
    "is_installed",
    "is_recording",
    "record",
    "remove_observer",
    "uninstall",
]
