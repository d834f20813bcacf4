"""The package as installed: imports, optional dependencies, app config."""

from __future__ import annotations

import subprocess
import sys

import pytest

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


@pytest.mark.parametrize("enabled", [True, False])
def test_the_app_installs_the_hooks_only_when_enabled(enabled):
    """In a fresh process (tests here install the hooks themselves): django.setup()
    with signaltrace in INSTALLED_APPS installs them, unless ENABLED is False."""
    code = (
        "import django, signaltrace\n"
        "from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['signaltrace'], DATABASES={},\n"
        f"                   SIGNALTRACE={{'ENABLED': {enabled}}})\n"
        "assert not signaltrace.is_installed()\n"
        "django.setup()\n"
        "print(signaltrace.is_installed())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(enabled)
