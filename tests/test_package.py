"""The package as installed: imports, optional dependencies, app config."""

from __future__ import annotations

import subprocess
import sys

import signaltrace


def test_importing_signaltrace_loads_no_optional_dependency():
    code = (
        "import sys, signaltrace\n"
        "loaded = [m for m in ('debug_toolbar', 'opentelemetry', 'pytest') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_public_api_is_listed():
    for name in ("record", "install", "uninstall", "is_installed", "Trace", "Dispatch", "ReceiverCall"):
        assert name in signaltrace.__all__
        assert getattr(signaltrace, name)


def test_the_app_installs_the_hooks_when_enabled():
    # tests/settings.py sets SIGNALTRACE = {"ENABLED": True}
    assert signaltrace.is_installed()
