"""The django-debug-toolbar panel: what the signals did during one request.

Add ``"signaltrace.panels.SignalTracePanel"`` to ``DEBUG_TOOLBAR_PANELS`` (see
docs/panel.md for the whole list: that setting replaces the toolbar's defaults).
"""

from signaltrace.panels.panel import SignalTracePanel

__all__ = ["SignalTracePanel"]
