"""The recording core: the only part of signaltrace that touches Django's dispatcher.

Everything the consumers (the panel, the OpenTelemetry spans, the test helpers, the
signal graph) and users need is importable from here; the modules below are
private to the core. The core imports only the standard library, Django and the
Django-app layer (:mod:`signaltrace.conf`, :mod:`signaltrace.errors`,
:mod:`signaltrace.safety`), never a consumer (see docs/architecture.md).

Recording
    :func:`record`, :func:`is_recording`, :func:`install`, :func:`uninstall`,
    :func:`is_installed`.
What a trace holds
    :class:`Trace`, :class:`Dispatch`, :class:`ReceiverCall`, :class:`Loop`,
    :class:`LoopStep`, :class:`SlowDelete` (with :class:`DeleteReceiver`); helpers
    that format what they hold.
Delete cost
    :func:`install_delete_watch`, :func:`uninstall_delete_watch`,
    :func:`is_delete_watch_installed`: deletes that took Django's slow path because
    of delete receivers, kept as :class:`SlowDelete` while recording.
Transactions and what escapes them
    :class:`Transaction` (``Dispatch.transaction``), :class:`OnCommitCallback`,
    :class:`SideEffect`, :class:`BypassedWrite`, :class:`Hazard` and
    :class:`ReceiverRef`; :func:`hazard_of` (a finding's hazard, if it is one);
    :func:`watch_test_case` (``captureOnCommitCallbacks``);
    :func:`scan_receivers` (:class:`SideEffectCall`): the static hint behind check W102.
Live observers
    :class:`DispatchObserver` with :class:`LiveDispatch` and :class:`LiveCall`
    views, :func:`add_observer`, :func:`remove_observer`.
Names and safe rendering
    :func:`signal_name`, :func:`sender_name`, :func:`receiver_info`,
    :func:`short_path`, :func:`dispatch_uids`, :func:`snapshot_value`,
    :func:`render_value`, :func:`safe_repr` ...
"""

from signaltrace.core.connections import connection_problems
from signaltrace.core.deletes import install_delete_watch, is_delete_watch_installed, uninstall_delete_watch
from signaltrace.core.effects import (
    BYPASSED_WRITE,
    MAIL_BEFORE_COMMIT,
    TASK_BEFORE_COMMIT,
    BypassedWrite,
    Hazard,
    OnCommitCallback,
    ReceiverRef,
    SideEffect,
    Transaction,
    hazard_of,
)
from signaltrace.core.hooks import install, is_installed, uninstall
from signaltrace.core.loops import Loop, LoopStep, format_cycle
from signaltrace.core.naming import (
    discover_signals,
    dispatch_uids,
    dotted_path,
    known_signal_name,
    make_id,
    receiver_info,
    receivers_and_uids,
    register_signal_name,
    sender_name,
    sender_type_name,
    short_path,
    signal_name,
)
from signaltrace.core.observers import (
    DispatchObserver,
    LiveCall,
    LiveDispatch,
    add_observer,
    remove_observer,
)
from signaltrace.core.recording import is_recording, record
from signaltrace.core.rendering import (
    is_sensitive,
    render_kwargs,
    render_value,
    safe_repr,
    snapshot_value,
    truncate,
)
from signaltrace.core.side_effect_scan import SideEffectCall, scan_receivers
from signaltrace.core.trace import (
    DeleteReceiver,
    Dispatch,
    ReceiverCall,
    SlowDelete,
    Trace,
    exception_type_name,
    format_exception,
    is_swallowed,
    str_or_repr,
)
from signaltrace.core.transactions import watch_test_case

__all__ = [
    "BYPASSED_WRITE",
    "MAIL_BEFORE_COMMIT",
    "TASK_BEFORE_COMMIT",
    "BypassedWrite",
    "DeleteReceiver",
    "Dispatch",
    "DispatchObserver",
    "Hazard",
    "LiveCall",
    "LiveDispatch",
    "Loop",
    "LoopStep",
    "OnCommitCallback",
    "ReceiverCall",
    "ReceiverRef",
    "SideEffect",
    "SideEffectCall",
    "SlowDelete",
    "Trace",
    "Transaction",
    "add_observer",
    "connection_problems",
    "discover_signals",
    "dispatch_uids",
    "dotted_path",
    "exception_type_name",
    "format_cycle",
    "format_exception",
    "hazard_of",
    "install",
    "install_delete_watch",
    "is_delete_watch_installed",
    "is_installed",
    "is_recording",
    "is_sensitive",
    "is_swallowed",
    "known_signal_name",
    "make_id",
    "receiver_info",
    "receivers_and_uids",
    "record",
    "register_signal_name",
    "remove_observer",
    "render_kwargs",
    "render_value",
    "safe_repr",
    "scan_receivers",
    "sender_name",
    "sender_type_name",
    "short_path",
    "signal_name",
    "snapshot_value",
    "str_or_repr",
    "truncate",
    "uninstall",
    "uninstall_delete_watch",
    "watch_test_case",
]
