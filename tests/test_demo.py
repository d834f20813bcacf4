"""The demo site (demo_project/) through Django's test client, under the demo's own settings.

pytest-django configures one settings module per process, so the main run (test
settings) runs this file again in a subprocess with ``--ds=demo_site.settings`` and
``demo_project`` on the path: ``test_demo_pages_pass_under_the_demo_settings`` below.
There, DEBUG is on (``django_debug_mode``) so the debug toolbar renders as it does
for a visitor, and the page tests run against the demo's real apps and migrations.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.dispatch import Signal

import signaltrace
from tests.demo_launcher import (
    assert_only_the_launcher_skipped,
    demo_only,
    launcher,
    run_under_demo,
)
from tests.demo_launcher import (
    run_lab_scenario as run,
)


@launcher
def test_demo_pages_pass_under_the_demo_settings() -> None:
    assert_only_the_launcher_skipped(run_under_demo(__file__, "-o", "django_debug_mode=true"))


# ----------------------------------------------------------------- demo pages

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@demo_only
def test_home_links_every_page(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    for url in ("/signup/", "/users/", "/lab/"):
        assert f'href="{url}"' in response.content.decode()


@demo_only
@pytest.mark.parametrize("url", ["/", "/signup/", "/users/", "/lab/"])
def test_debug_toolbar_with_the_signal_panel_is_on_every_page(client, url) -> None:
    content = client.get(url).content.decode()
    assert 'id="djDebug"' in content
    assert 'id="djdt-SignalTracePanel"' in content


@demo_only
def test_signal_trace_panel_sits_next_to_the_toolbars_signals_panel() -> None:
    panels = list(settings.DEBUG_TOOLBAR_PANELS)
    signals = panels.index("debug_toolbar.panels.signals.SignalsPanel")
    assert panels[signals + 1] == "signaltrace.panels.SignalTracePanel"
    assert panels.count("signaltrace.panels.SignalTracePanel") == 1


OPENS_THE_PANEL = 'querySelector("#djDebugPanelList a.SignalTracePanel")'


@demo_only
def test_loop_lab_results_open_the_panel_other_pages_do_not(client) -> None:
    """A scenario's page clicks the panel's link once loaded (tests/test_panel_browser.py
    checks it in chromium); the index keeps its buttons clear, other pages are left alone."""
    assert OPENS_THE_PANEL in client.post("/lab/robust/").content.decode()
    for url in ("/", "/signup/", "/users/", "/lab/"):
        assert OPENS_THE_PANEL not in client.get(url).content.decode(), url


@demo_only
def test_signup_page_explains_and_shows_the_form(client) -> None:
    content = client.get("/signup/").content.decode()
    assert "<h1>Sign up</h1>" in content
    assert 'name="username"' in content and 'name="bio"' in content
    assert "create_user_profile" in content


def sign_up(client, username: str = "ada", bio: str = "Hello"):
    password = "a-long-demo-passphrase-42"
    return client.post(
        "/signup/", {"username": username, "password1": password, "password2": password, "bio": bio}
    )


@demo_only
def test_user_creation_sends_post_save_once_creates_one_profile_depth_1_no_loops(
    client, django_assert_signals
) -> None:
    """The demo's showcase, pinned down with signaltrace's own test assertions."""
    from accounts.models import Profile
    from accounts.signals import create_user_profile, save_user_profile
    from django.contrib.auth.models import User
    from django.db.models.signals import post_save

    with (
        django_assert_signals(max_depth=1) as trace,
        django_assert_signals.sent(post_save, sender=User, times=1, created=True),
        django_assert_signals.receiver_called(create_user_profile, signal=post_save, sender=User, times=1),
        django_assert_signals.receiver_called(save_user_profile, signal=post_save, sender=User, times=1),
    ):
        response = sign_up(client)
    assert response.status_code == 200
    assert Profile.objects.filter(user__username="ada").count() == 1
    assert Profile.objects.count() == 1
    assert trace.loops == []
    json.dumps(trace.to_dict())


@demo_only
def test_signup_result_page_shows_the_profile_made_by_the_receiver(client) -> None:
    from accounts.models import Profile

    content = sign_up(client, bio="Likes <b>bold</b> & safe pages").content.decode()
    profile = Profile.objects.get(user__username="ada")
    assert "Welcome, ada" in content
    assert f"Profile of ada (#{profile.pk})" in content
    assert "accounts.signals.create_user_profile" in content
    assert "demo_project/accounts/signals.py:" in content or "accounts/signals.py:" in content
    assert profile.bio == "Likes <b>bold</b> & safe pages"
    users = client.get("/users/").content.decode()
    assert "Likes &lt;b&gt;bold&lt;/b&gt; &amp; safe pages" in users
    assert "<b>bold</b>" not in users


@demo_only
def test_signup_errors_are_shown(client) -> None:
    response = client.post("/signup/", {"username": "ada", "password1": "x", "password2": "y"})
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    from django.contrib.auth.models import User

    assert not User.objects.exists()


@demo_only
def test_seed_command_is_idempotent_and_profiles_come_from_the_signal(client) -> None:
    from django.contrib.auth.models import User

    out = StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)
    assert out.getvalue().splitlines() == [
        "Demo data ready: 3 new users, 3 in all.",
        "Demo data ready: 0 new users, 3 in all.",
    ]
    assert sorted(User.objects.values_list("username", flat=True)) == ["ada", "grace", "linus"]
    content = client.get("/users/").content.decode()
    assert "Finds bugs, sometimes literally." in content
    assert content.count("<tr>") == 4  # header + 3 users, each with a profile
    assert "none (created before" not in content


@demo_only
def test_loop_lab_lists_every_scenario(client) -> None:
    content = client.get("/lab/").content.decode()
    for slug in ("ping-pong", "self-resave", "guarded-resave", "robust", "slow", "bulk-create", "photo"):
        assert f'action="/lab/{slug}/"' in content


@demo_only
def test_ping_pong_is_stopped_and_explained(client) -> None:
    from looplab.models import Ping, Pong

    content = run(client, "ping-pong")
    assert "SignalLoopError raised" in content
    assert "Signal loop detected: post_save(looplab.Ping #1) -&gt; looplab.receivers.ping_saved (" in content
    assert "post_save(looplab.Pong #1) -&gt; looplab.receivers.pong_saved (" in content
    assert "stopped: Signal loop detected" in content  # the stopped dispatch in the trace table
    assert not Ping.objects.exists() and not Pong.objects.exists()  # rolled back


@demo_only
def test_self_resave_is_stopped(client) -> None:
    content = run(client, "self-resave")
    assert "post_save(looplab.Note #1) -&gt; looplab.receivers.count_note_words (" in content


@demo_only
def test_guarded_resave_is_not_a_loop(client) -> None:
    content = run(client, "guarded-resave")
    assert "saved with word_count=4" in content
    assert "Signal loop detected" not in content
    assert content.count("count_article_words") == 2  # the first save and the guarded re-save


@demo_only
def test_send_robust_error_is_shown_as_swallowed(client) -> None:
    content = run(client, "robust")
    assert (
        "notify_warehouse raised ConnectionError: warehouse API unreachable (swallowed by send_robust)"
        in (content)
    )
    assert "ConnectionError: warehouse API unreachable (swallowed by send_robust)</div>" in content
    assert "add_loyalty_points returned &#x27;10 points added&#x27;" in content


@demo_only
def test_slow_receiver_is_timed(client) -> None:
    with signaltrace.record() as trace:
        content = run(client, "slow")
    assert "build_report returned &#x27;report built&#x27;" in content
    calls = {call.receiver_name: call for d in trace.dispatches for call in d.calls}
    assert calls["looplab.receivers.build_report"].duration_ns >= 300_000_000


@demo_only
def test_bulk_create_sends_nothing(client) -> None:
    from looplab.models import Tag

    content = run(client, "bulk-create")
    assert Tag.objects.count() == 4
    assert "The post_save receiver saw: single-0." in content
    assert content.count("looplab.receivers.announce_tag") == 1


@demo_only
def test_async_receivers_from_an_async_view(client) -> None:
    content = run(client, "photo")
    if not hasattr(Signal, "asend"):
        assert "no Signal.asend" in content
        return
    assert "make_thumbnail returned &#x27;thumbnail of cat.jpg&#x27;" in content
    assert "scan_photo returned &#x27;cat.jpg is clean&#x27;" in content
    assert "log_upload returned &#x27;upload of cat.jpg logged&#x27;" in content
    assert "asend, depth 0" in content
    assert content.count("(async)") == 2


@demo_only
def test_scenarios_need_post_and_a_known_name(client) -> None:
    assert client.get("/lab/ping-pong/").status_code == 405
    assert client.get("/lab/photo/").status_code == 405
    assert client.post("/lab/nope/").status_code == 404


@demo_only
def test_graph_command_lists_the_demo_receivers(capsys) -> None:
    call_command("signaltrace", "graph", "--signal", "post_save", "--exclude", "django.*")
    text = capsys.readouterr().out
    assert "  sender auth.User\n    accounts.signals.create_user_profile  " in text
    assert "accounts/signals.py:" in text
    assert "  sender looplab.Ping\n    looplab.receivers.ping_saved  " in text
