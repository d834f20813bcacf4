"""Run Django's own ``dispatch`` and ``signals`` test suites under signaltrace.

Downloads the source distribution of the Django version installed in this
environment (it contains Django's test suite), then runs the suites with
``sitecustomize.py`` installing signaltrace and recording for the whole run.

Usage: python tests/django_suite/run.py [test labels...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import django

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent.parent / ".cache" / "django-sdist"
DEFAULT_LABELS = ["dispatch", "signals"]


def django_tests_dir() -> Path:
    version = django.get_version()
    target = CACHE / f"django-{version}"
    if (target / "tests" / "runtests.py").exists():
        return target / "tests"
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"django=={version}",
            "-d",
            str(CACHE),
        ],
        check=True,
    )
    archive = next(CACHE.glob(f"[dD]jango-{version}.tar.gz"))
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if "/tests/" in m.name or m.name.endswith("/tests")]
        tar.extractall(CACHE, members=members)
    extracted = next(p for p in CACHE.iterdir() if p.is_dir() and p.name.lower() == f"django-{version}")
    if extracted != target:
        extracted.rename(target)
    return target / "tests"


def main() -> int:
    labels = sys.argv[1:] or DEFAULT_LABELS
    tests_dir = django_tests_dir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(tests_dir)])
    env["SIGNALTRACE_SUITE_RECORD"] = "1"
    print(f"Django {django.get_version()}: running {' '.join(labels)} with signaltrace recording", flush=True)
    result = subprocess.run(
        [sys.executable, "runtests.py", *labels, "--parallel", "1", "-v", "1"],
        cwd=tests_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode == 0 and "signaltrace: installed=True" not in result.stdout:
        print("signaltrace was not active during Django's suite", file=sys.stderr)
        return 1
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
