"""A page that sends the hostile table of tests/hostile.py, for tests/test_hostile_inputs.py.

Served at ``/panel/hostile/`` by tests/hostile_urls.py (the test project's URLs plus this
page), so the toolbar shows on it (see ``panel_views.show_toolbar``). Its receivers are
connected only while the page runs; the kwargs it sent are kept in :data:`last_kwargs` so
the test can check that rendering the panel left them untouched.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from tests import hostile

#: The hostile kwargs the last request sent (the test empties it).
last_kwargs: dict[str, Any] = {}


def hostile_page(request: HttpRequest) -> HttpResponse:
    """The whole table, once per hostile sender, then a loop with it (stopped and caught)."""
    kwargs = hostile.build()
    last_kwargs.clear()
    last_kwargs.update(kwargs)
    with hostile.connected():
        hostile.send_table(kwargs)
    return HttpResponse(
        "<!DOCTYPE html><html><head><title>hostile</title></head><body><h1>hostile</h1></body></html>"
    )
