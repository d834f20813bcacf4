"""The demo's profile pattern, pinned by a signal snapshot.

The snapshot file is tests/__signal_snapshots__/test_demo_snapshot.json.

A sign-up creates a User, whose ``post_save`` receivers create and save its Profile;
a login saves the User again (``last_login``), and ``save_user_profile`` saves the
Profile once more. The snapshot records those signals, senders, kwargs and receivers
in order; a change to the demo's receivers fails this test with a diff. Review a change
and accept it with ``--signaltrace-snapshot-update`` (see docs/ci.md).

Runs like tests/test_demo.py: the main run starts this file again in a subprocess under
the demo's settings, where the snapshot test itself runs.
"""

from __future__ import annotations

import os

import pytest

from tests.demo_launcher import demo_only, launcher, run_under_demo

PASSWORD = "a-long-demo-passphrase-42"


@launcher
def test_demo_snapshot_passes_under_the_demo_settings() -> None:
    update = ["--signaltrace-snapshot-update"] if os.environ.get("SIGNALTRACE_SNAPSHOT_UPDATE") else []
    output = run_under_demo(
        __file__,
        "-p",
        "no:randomly",
        *update,
        drop_env=("SIGNALTRACE_SNAPSHOT_UPDATE",),
    )
    assert "1 passed, 1 skipped" in output, output
    assert "wrote signal snapshot" not in output, "the snapshot file is missing: " + output


@demo_only
@pytest.mark.django_db
def test_signup_and_login_send_the_profile_signals(client, settings, signal_snapshot) -> None:
    from accounts.models import Profile

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with signal_snapshot("signup", only=["pre_save", "post_save"]):
        response = client.post(
            "/signup/", {"username": "ada", "password1": PASSWORD, "password2": PASSWORD, "bio": "Hello"}
        )
    assert response.status_code == 200
    assert Profile.objects.get(user__username="ada").bio == "Hello"

    with signal_snapshot("login", only=["user_logged_in", "pre_save", "post_save"]):
        assert client.login(username="ada", password=PASSWORD)
