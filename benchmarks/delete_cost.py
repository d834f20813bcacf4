"""What a 1,000-row ``QuerySet.delete()`` costs, bare, with signaltrace idle and recording.

Plain Python, runnable by anyone with signaltrace and Django installed:

    python benchmarks/delete_cost.py [--rounds 15] [--rows 1000]

Two tables. "Modes" times the delete of ``--rows`` rows in three modes, interleaved
round by round so machine noise hits all alike: ``bare`` (signaltrace's hooks and its
``Collector.delete`` wrapper not installed), ``idle`` (installed, not recording) and
``recording`` (inside ``signaltrace.record()``, which keeps a ``SlowDelete`` when delete
receivers force Django's slow path). Each for a model with no receiver (Django's fast
path: one ``DELETE``) and one with a ``post_delete`` receiver (the slow path). Medians
of thread CPU time, and the median of per-round ratios to ``bare``. Target (issue 16):
the delete wrapper adds nothing measurable when idle (idle / hooks 1.00 within noise).

"Receiver" shows what the receiver itself costs the delete, bare: queries and time of the
fast path against the slow one, the figure the loop lab's delete-cost page shows.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
from pathlib import Path
from time import thread_time_ns

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "signaltrace", "benchmarks"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    SIGNALTRACE={"ENABLED": False},
)
django.setup()

from django.db import connection, models  # noqa: E402
from django.db.models.signals import post_delete  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

import signaltrace  # noqa: E402
from signaltrace.core import install_delete_watch, uninstall_delete_watch  # noqa: E402

MODES = ("bare", "hooks", "idle", "recording")


class PlainRow(models.Model):
    """No delete receiver: Django deletes its rows with one statement."""

    number = models.IntegerField()

    class Meta:
        app_label = "benchmarks"


class WatchedRow(models.Model):
    """A post_delete receiver: Django selects every row and sends two signals per row."""

    number = models.IntegerField()

    class Meta:
        app_label = "benchmarks"


def forget_row(sender, instance, **kwargs):
    return None


def set_mode(mode: str) -> None:
    if mode == "bare":
        signaltrace.uninstall()
        uninstall_delete_watch()
    elif mode == "hooks":
        signaltrace.install()
        uninstall_delete_watch()
    else:
        signaltrace.install()
        install_delete_watch()


def timed_delete(model: type[models.Model], rows: int, mode: str) -> int:
    """CPU nanoseconds of one delete of ``rows`` fresh rows (their insert is not timed)."""
    model.objects.bulk_create([model(number=n) for n in range(rows)])
    set_mode(mode)
    gc.collect()
    gc.disable()
    try:
        if mode == "recording":
            with signaltrace.record() as trace:
                start = thread_time_ns()
                model.objects.all().delete()
                elapsed = thread_time_ns() - start
            expected = 1 if model is WatchedRow else 0
            assert len(trace.slow_deletes) == expected, trace.slow_deletes
        else:
            start = thread_time_ns()
            model.objects.all().delete()
            elapsed = thread_time_ns() - start
    finally:
        gc.enable()
        set_mode("bare")
    return elapsed


def modes_table(rounds: int, rows: int) -> list[str]:
    lines = [
        f"Modes: delete of {rows} rows, {rounds} rounds, thread CPU time "
        "(medians; ratio = median of per-round ratios)",
        "",
        "| model | bare | hooks | idle | recording | idle / hooks | idle / bare | recording / bare |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, label in ((PlainRow, "no receiver (fast path)"), (WatchedRow, "post_delete receiver")):
        times: dict[str, list[int]] = {mode: [] for mode in MODES}
        for round_number in range(rounds + 1):
            order = MODES if round_number % 2 else tuple(reversed(MODES))
            measured = {mode: timed_delete(model, rows, mode) for mode in order}
            if round_number == 0:
                continue  # warm-up
            for mode in MODES:
                times[mode].append(measured[mode])
        ms = {mode: statistics.median(values) / 1e6 for mode, values in times.items()}
        ratio = {
            (mode, base): statistics.median(m / b for m, b in zip(times[mode], times[base], strict=True))
            for mode, base in (("idle", "hooks"), ("idle", "bare"), ("recording", "bare"))
        }
        lines.append(
            f"| {label} | {ms['bare']:.2f} ms | {ms['hooks']:.2f} ms | {ms['idle']:.2f} ms | "
            f"{ms['recording']:.2f} ms | {ratio['idle', 'hooks']:.2f}x | {ratio['idle', 'bare']:.2f}x | "
            f"{ratio['recording', 'bare']:.2f}x |"
        )
    return lines


def receiver_table(rounds: int, rows: int) -> list[str]:
    lines = [
        "",
        f"Receiver: what one post_delete receiver costs a delete of {rows} rows (bare Django)",
        "",
        "| model | queries | CPU time | signals sent |",
        "|---|---|---|---|",
    ]
    for model, label in ((PlainRow, "no receiver"), (WatchedRow, "post_delete receiver")):
        model.objects.bulk_create([model(number=n) for n in range(rows)])
        with CaptureQueriesContext(connection) as queries:
            model.objects.all().delete()
        median = statistics.median(timed_delete(model, rows, "bare") for _ in range(rounds)) / 1e6
        signals = 2 * rows if model is WatchedRow else 0
        lines.append(f"| {label} | {len(queries.captured_queries)} | {median:.2f} ms | {signals} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    with connection.schema_editor() as editor:
        editor.create_model(PlainRow)
        editor.create_model(WatchedRow)
    post_delete.connect(forget_row, sender=WatchedRow)
    print(f"Django {django.get_version()}, Python {sys.version.split()[0]}")
    print("\n".join(modes_table(args.rounds, args.rows) + receiver_table(args.rounds, args.rows)))


if __name__ == "__main__":
    main()
