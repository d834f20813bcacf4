"""signaltrace: see what Django signals really do.

Usage::

    import signaltrace

    with signaltrace.record() as trace:
        User.objects.create(username="ada")
    for dispatch in trace.dispatches:
        print(dispatch.depth, dispatch.signal_name, dispatch.sender_name,
              [call.receiver_name for call in dispatch.calls])
"""

from signaltrace.connections import ReceiverConnectionWarning
from signaltrace.errors import SignalLoopError, SignalTraceError
from signaltrace.hooks import install, is_installed, uninstall
from signaltrace.loops import Loop, LoopStep, SignalLoopWarning
from signaltrace.recording import is_recording, record
from signaltrace.records import Dispatch, ReceiverCall, Trace

__version__ = "0.1.0"

__all__ = [
    "Dispatch",
    "Loop",
    "LoopStep",
    "ReceiverCall",
    "ReceiverConnectionWarning",
    "SignalLoopError",
    "SignalLoopWarning",
    "SignalTraceError",
    "Trace",
    "install",
    "is_installed",
    "is_recording",
    "record",
    "uninstall",
]
