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
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo_project"
UNDER_DEMO = settings.SETTINGS_MODULE == "demo_site.settings"
PASSWORD = "a-long-demo-passphrase-42"


@pytest.mark.skipif(UNDER_DEMO, reason="this is the launcher")
def test_demo_snapshot_passes_under_the_demo_settings() -> None:
    env = {key: value for key, value in os.environ.items() if key != "SIGNALTRACE_SNAPSHOT_UPDATE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DEMO), str(ROOT), env.get("PYTHONPATH")]))
    env["DJANGO_SETTINGS_MODULE"] = "demo_site.settings"
    update = ["--signaltrace-snapshot-update"] if os.environ.get("SIGNALTRACE_SNAPSHOT_UPDATE") else []
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-p",
            "signaltrace.testing.snapshot_plugin",
            "--ds=demo_site.settings",
            *update,
            str(Path(__file__).relative_to(ROOT)),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 passed, 1 skipped" in output, output
    assert "wrote signal snapshot" not in output, "the snapshot file is missing: " + output


@pytest.mark.skipif(not UNDER_DEMO, reason="runs in the subprocess under the demo's settings")
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
