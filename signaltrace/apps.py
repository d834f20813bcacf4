"""The Django app: installs the hooks at startup when enabled."""

from __future__ import annotations

from django.apps import AppConfig


class SignalTraceConfig(AppConfig):
    name = "signaltrace"
    verbose_name = "signaltrace"

    def ready(self) -> None:
        """Register checks, follow setting changes, install when enabled.

        Called once by Django's app registry; ``install()`` is idempotent anyway.
        """
        from django.core.signals import setting_changed

        from signaltrace import checks  # noqa: F401 - registers the system checks
        from signaltrace.conf import is_enabled, reset_config
        from signaltrace.core import install

        setting_changed.connect(reset_config, dispatch_uid="signaltrace.reset_config")
        if is_enabled():
            install()
