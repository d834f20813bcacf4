"""The headless chromium the browser checks drive (Debian's, through Playwright)."""

from __future__ import annotations

import os
import shutil

#: The browser binary: ``SIGNALTRACE_CHROMIUM``, else ``chromium`` on the PATH.
CHROMIUM = os.environ.get("SIGNALTRACE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

#: Arguments for a quiet, offline headless run in a container.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
