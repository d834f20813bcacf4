"""How long the debug-toolbar panel takes to render a request with 2,000 dispatches.

A benchmark, not a test: it prints figures and never fails on time. It requests
the test project's ``/panel/many/?n=2000`` page through the toolbar's middleware,
then renders the panel from the toolbar's store the way the toolbar's
``render_panel`` view does, several times, and prints the median against the
1-second budget of issue 4.

Run from the repository root: ``.venv/bin/python benchmarks/panel_render.py [dispatches]``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

BUDGET_S = 1.0
ROUNDS = 5


def main() -> None:
    import django

    django.setup()
    from debug_toolbar.toolbar import DebugToolbar
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    toolbars: list[DebugToolbar] = []
    DebugToolbar._created.connect(lambda sender, toolbar, **kwargs: toolbars.append(toolbar), weak=False)

    started = time.perf_counter()
    response = Client().get(f"/panel/many/?n={count}")
    request_s = time.perf_counter() - started
    assert response.status_code == 200, response.status_code
    request_id = toolbars[-1].request_id

    renders = []
    sizes = set()
    for _ in range(ROUNDS):
        started = time.perf_counter()
        stored = DebugToolbar.fetch(request_id, "SignalTracePanel")
        panel = stored.get_panel_by_id("SignalTracePanel")
        content = panel.content
        renders.append(time.perf_counter() - started)
        sizes.add(len(content))
    dispatches = content.count('class="st-dispatch')
    median = statistics.median(renders)
    print(f"dispatches rendered: {dispatches} ({panel.nav_subtitle})")
    print(f"request with toolbar: {request_s * 1000:.0f} ms")
    size = max(sizes) / 1e6
    print(f"panel render from store, median of {ROUNDS}: {median * 1000:.0f} ms ({size:.1f} MB of HTML)")
    print(f"render / 1 s budget: {median / BUDGET_S:.2f}x")


if __name__ == "__main__":
    main()
