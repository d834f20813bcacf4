"""Wall time of a whole test run recorded for the report, against the same run unrecorded.

Two suites, each run ``--rounds`` times, interleaved, in fresh subprocesses:

* the demo's tests (``tests/test_demo.py`` and ``tests/test_demo_patterns.py`` under
  ``demo_site.settings``, as tests/test_demo.py launches them): ``pytest -p no:signaltrace``
  against ``pytest --signaltrace-report=PATH`` (the one test that uses the plugin's
  ``django_assert_signals`` fixture is deselected in both runs);
* Django's own ``signals`` suite (``runtests.py signals --parallel 1``, from the sdist
  tests/django_suite/run.py downloads) with Django's ``DiscoverRunner`` against
  :class:`signaltrace.testing.runner.SignalTraceRunner` writing the report.

Prints the median wall time and the median CPU time (user + system of the run's
processes) of each; on a busy machine the CPU time is the steadier figure.

Usage: ``python benchmarks/report_overhead.py [--rounds 7] [--suite demo|django]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo_project"
USES_THE_PLUGIN = (
    "tests/test_demo.py::test_user_creation_sends_post_save_once_creates_one_profile_depth_1_no_loops"
)

RUNNER = """
import os

from signaltrace.testing.runner import SignalTraceRunner


class ReportingRunner(SignalTraceRunner):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, signaltrace_report=os.environ["BENCH_REPORT"], **kwargs)
"""

SETTINGS = """
from test_sqlite import *  # noqa: F403

TEST_RUNNER = "bench_runner.ReportingRunner"
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path, environment: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run: on a busy machine the CPU time
    is the steadier figure."""
    cpu, started = _children_cpu(), time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if result.returncode != 0:
        raise SystemExit(result.stdout[-3000:] + result.stderr[-3000:])
    return elapsed, cpu


def demo_variants(folder: Path) -> dict[str, tuple[list[str], Path, dict[str, str]]]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([str(DEMO), str(ROOT)])
    environment["DJANGO_SETTINGS_MODULE"] = "demo_site.settings"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "--ds=demo_site.settings",
        "-o",
        "django_debug_mode=true",
        "tests/test_demo.py",
        "tests/test_demo_patterns.py",
        "--deselect",
        USES_THE_PLUGIN,
    ]
    return {
        "bare": ([*command, "-p", "no:signaltrace"], ROOT, environment),
        "report": ([*command, f"--signaltrace-report={folder / 'demo.json'}"], ROOT, environment),
    }


def django_variants(folder: Path) -> dict[str, tuple[list[str], Path, dict[str, str]]]:
    sys.path.insert(0, str(ROOT / "tests" / "django_suite"))
    from run import django_tests_dir  # the sdist's tests, downloaded once into .cache/

    tests_dir = django_tests_dir()
    (folder / "bench_runner.py").write_text(RUNNER)
    (folder / "bench_settings.py").write_text(SETTINGS)
    environment = dict(os.environ)
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    environment["PYTHONPATH"] = os.pathsep.join([str(folder), str(tests_dir), str(ROOT)])
    environment["BENCH_REPORT"] = str(folder / "django.json")
    command = [sys.executable, "runtests.py", "signals", "--parallel", "1", "-v", "0"]
    return {
        "bare": (command, tests_dir, environment),
        "report": ([*command, "--settings=bench_settings"], tests_dir, environment),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--suite", choices=("demo", "django"), action="append")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for suite in options.suite or ("demo", "django"):
            variants = (demo_variants if suite == "demo" else django_variants)(folder)
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
            for _ in range(options.rounds):
                for name, (command, cwd, environment) in variants.items():
                    times[name].append(timed(command, cwd, environment))
            for index, what in ((0, "wall"), (1, "CPU")):
                bare = statistics.median(run[index] for run in times["bare"])
                report = statistics.median(run[index] for run in times["report"])
                print(
                    f"{suite}: {options.rounds} rounds, median {what} time: unrecorded {bare:.2f}s, "
                    f"recorded with the report {report:.2f}s, ratio {report / bare:.3f}x"
                )
            report_file = folder / f"{suite}.json"
            if report_file.exists():
                print(f"  report: {report_file.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
