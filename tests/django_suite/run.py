"""Run Django's own ``dispatch`` and ``signals`` test suites under signaltrace.

Downloads the source distribution of the Django version installed in this
environment (it contains Django's test suite), then runs the suites twice with
``sitecustomize.py`` installing signaltrace: recording for the whole run, then
making OpenTelemetry spans for every dispatch (the observers' path).

Usage: python tests/django_suite/run.py [test labels...]
"""

from __future__ import annotations

import os
import re
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


MODES = {
    # mode -> (environment variable set for sitecustomize, the line proving it was active:
    # hooks installed and a count of what they made, which must not be 0)
    "recording": ("SIGNALTRACE_SUITE_RECORD", r"signaltrace: installed=True recorded=(\d+) "),
    "opentelemetry spans": ("SIGNALTRACE_SUITE_OTEL", r"signaltrace: instrumented=True spans=(\d+)"),
}


def run_suite(tests_dir: Path, labels: list[str], mode: str) -> int:
    variable, proof = MODES[mode]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(tests_dir)])
    env[variable] = "1"
    print(f"Django {django.get_version()}: running {' '.join(labels)} with signaltrace {mode}", flush=True)
    result = subprocess.run(
        [sys.executable, "runtests.py", *labels, "--parallel", "1", "-v", "1"],
        cwd=tests_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    found = re.search(proof, result.stdout)
    if result.returncode == 0 and (found is None or int(found.group(1)) == 0):
        print(f"signaltrace ({mode}) was not active during Django's suite", file=sys.stderr)
        return 1
    return result.returncode


def main() -> int:
    labels = sys.argv[1:] or DEFAULT_LABELS
    tests_dir = django_tests_dir()
    for mode in MODES:
        returncode = run_suite(tests_dir, labels, mode)
        if returncode:
            return returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
