"""Running a test module again under the demo's settings, in a subprocess.

pytest-django configures one settings module per process, so a module that tests the
demo (demo_project/) through Django's test client has two halves: its launcher, run by
the main suite, which calls :func:`run_under_demo` on the module's own file; and its
tests, marked :data:`demo_only`, which run in that subprocess with
``--ds=demo_site.settings`` and ``demo_project`` on the path.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo_project"
#: Whether this process runs under the demo's settings (the subprocess half).
UNDER_DEMO = settings.SETTINGS_MODULE == "demo_site.settings"

demo_only = pytest.mark.skipif(not UNDER_DEMO, reason="runs in the subprocess under the demo's settings")
launcher = pytest.mark.skipif(UNDER_DEMO, reason="this is the launcher")


def run_under_demo(test_file: str, *options: str, drop_env: tuple[str, ...] = ()) -> str:
    """Run pytest on ``test_file`` under the demo's settings; its output, once it passed."""
    env = {key: value for key, value in os.environ.items() if key not in drop_env}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DEMO), str(ROOT), env.get("PYTHONPATH")]))
    env["DJANGO_SETTINGS_MODULE"] = "demo_site.settings"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ds=demo_site.settings"]
    command += [*options, str(Path(test_file).resolve().relative_to(ROOT))]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def assert_only_the_launcher_skipped(output: str) -> None:
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, output
    assert " 1 skipped" in summary, output  # only the launcher itself


def run_lab_scenario(client, slug: str) -> str:
    """Post a loop-lab scenario with Django's test client; the result page, with the toolbar."""
    response = client.post(f"/lab/{slug}/")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="djDebug"' in content
    assert "What signaltrace reveals" in content
    return content


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_served(url: str, server: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the demo server exited: {server.stderr.read() if server.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the demo server did not answer {url} in {timeout} s")


@contextmanager
def served_demo(data_dir: Path, ready_path: str = "/") -> Iterator[str]:
    """The demo, migrated into a database in ``data_dir``, served by runserver; its base URL."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(
        DJANGO_SETTINGS_MODULE="demo_site.settings",
        DEMO_DATABASE=str(data_dir / "db.sqlite3"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    manage = [sys.executable, str(DEMO / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, timeout=180)
    port = _free_port()
    server = subprocess.Popen(
        [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_served(f"{url}{ready_path}", server)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stderr:
            server.stderr.close()
