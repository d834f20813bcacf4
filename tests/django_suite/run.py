"""Run Django's own test suites under signaltrace.

Downloads the source distribution of the Django version installed in this
environment (it contains Django's test suite), then runs the suites twice with
``sitecustomize.py`` installing signaltrace: recording for the whole run, then
making OpenTelemetry spans for every dispatch (the observers' path).

By default: ``dispatch`` and ``signals`` (the hooks), ``transactions`` and
``transaction_hooks`` (atomic blocks and ``on_commit``), on SQLite, Django's default
for its suite. When ``tests/scripts/postgres.sh`` has started PostgreSQL
(``SIGNALTRACE_TEST_POSTGRES=1``), the transaction suites among the labels run on
PostgreSQL too (``postgres_settings.py``). Every run goes on after a failure; the
command fails if any did.

Usage: python tests/django_suite/run.py [test labels...]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import django

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent.parent / ".cache" / "django-sdist"
DEFAULT_LABELS = ["dispatch", "signals", "transactions", "transaction_hooks"]
# The suites that also run on PostgreSQL when it is up, with this settings module.
POSTGRES_LABELS = {"transactions", "transaction_hooks"}
POSTGRES_SETTINGS = "postgres_settings"


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
        # The "data" filter where this Python has it (3.12, and 3.10/3.11 patch releases):
        # without it, 3.13 warns that 3.14 filters by default.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(CACHE, members=members, **safe)
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


def run_suite(tests_dir: Path, labels: list[str], mode: str, settings: str | None = None) -> int:
    variable, proof = MODES[mode]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(tests_dir)])
    env[variable] = "1"
    database = "PostgreSQL" if settings == POSTGRES_SETTINGS else "SQLite"
    print(
        f"Django {django.get_version()}: running {' '.join(labels)} on {database} with signaltrace {mode}",
        flush=True,
    )
    command = [sys.executable, "runtests.py", *labels, "--parallel", "1", "-v", "1"]
    if settings:
        command.append(f"--settings={settings}")
    started = time.monotonic()
    result = subprocess.run(command, cwd=tests_dir, env=env, capture_output=True, text=True)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    found = re.search(proof, result.stdout)
    returncode = result.returncode
    if returncode == 0 and (found is None or int(found.group(1)) == 0):
        print(f"signaltrace ({mode}) was not active during Django's suite", file=sys.stderr)
        returncode = 1
    outcome = "FAILED" if returncode else "passed"
    print(
        f"--- {' '.join(labels)} on {database}, {mode}: {outcome} ({time.monotonic() - started:.1f} s)",
        flush=True,
    )
    return returncode


def runs(labels: list[str]) -> list[tuple[list[str], str | None]]:
    """(labels, settings module) per run: SQLite, then PostgreSQL for its suites when it is up."""
    planned: list[tuple[list[str], str | None]] = [(labels, None)]
    on_postgres = [label for label in labels if label.split(".")[0] in POSTGRES_LABELS]
    if not on_postgres:
        return planned
    if os.environ.get("SIGNALTRACE_TEST_POSTGRES") == "1":
        planned.append((on_postgres, POSTGRES_SETTINGS))
    else:
        print(
            f"PostgreSQL is not available (SIGNALTRACE_TEST_POSTGRES is not 1; tests/scripts/postgres.sh "
            f"starts it or says why it cannot): {' '.join(on_postgres)} run on SQLite only",
            flush=True,
        )
    return planned


def main() -> int:
    labels = sys.argv[1:] or DEFAULT_LABELS
    tests_dir = django_tests_dir()
    failed = 0
    for run_labels, settings in runs(labels):
        for mode in MODES:
            if run_suite(tests_dir, run_labels, mode, settings):
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
