"""What signaltrace costs per dispatch, against bare Django in the same run.

Plain Python, runnable by anyone with signaltrace and Django installed:

    python benchmarks/overhead.py [--rounds 15] [--batch 2000] [--otel-rounds 60]

Every case runs in three modes, interleaved round by round so machine noise hits
all modes alike: ``bare`` (hooks not installed: Django's own methods),
``idle`` (installed, loop guard on, not recording) and ``recording`` (inside
``signaltrace.record()``). The table gives medians of per-operation times and,
paired round by round, their ratio to ``bare``. Targets (issue 11): idle <= 1.15x
bare for ``send`` with 1 receiver; recording <= 2.2x with 1 receiver and <= 2.8x with
5; model ``save()`` recording <= 1.08x, measured as an application records: 200
saves per ``record()`` block on an in-memory SQLite database, the block's enter and
exit timed too.

Then the OpenTelemetry row (``--otel-rounds 0`` skips it): a ``post_save``-like
send with 2 receivers, bare, with the spans made by hand with the SDK, with
signaltrace's ``SignalInstrumentor`` and with sentry-sdk's
``DjangoIntegration(signals_spans=True)``, measured by ``benchmarks/otel_overhead.py``
(which explains the method and covers 1, 2 and 5 receivers). Targets: signaltrace's
cost beyond the SDK's own span cost <= 12% of that span cost, and cheaper per
receiver than sentry-sdk.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import sys
from collections.abc import Callable
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

from django.db import connection, models, transaction  # noqa: E402
from django.db.models.signals import post_init, post_save  # noqa: E402
from django.dispatch import Signal  # noqa: E402

import signaltrace  # noqa: E402


class Row(models.Model):
    name = models.CharField(max_length=20)
    counter = models.IntegerField(default=0)

    class Meta:
        app_label = "benchmarks"


def receiver(sender, **kwargs):
    return None


async def async_receiver(sender, **kwargs):
    return None


def on_row_saved(sender, instance, created, **kwargs):
    return None


def on_row_saved_too(sender, instance, **kwargs):
    return None


def on_row_loaded(sender, instance, **kwargs):
    return None


def noop() -> None:
    pass


def make_signal(count: int, connect_async: bool = False) -> Signal:
    signal = Signal()
    for _ in range(count):
        # Distinct function objects, as distinct receivers are in real projects.
        def fn(sender, **kwargs):
            return None

        signal.connect(fn, weak=False)
    if connect_async:
        signal.connect(async_receiver, weak=False)
    return signal


def setup_database() -> Row:
    with connection.schema_editor() as editor:
        editor.create_model(Row)
    Row.objects.bulk_create(Row(name=f"row {i}") for i in range(100))
    post_save.connect(on_row_saved, sender=Row, weak=False)
    post_save.connect(on_row_saved_too, sender=Row, weak=False)
    post_init.connect(on_row_loaded, sender=Row, weak=False)
    return Row.objects.get(pk=1)


def cases(batch: int) -> dict[str, tuple[Callable[[], None], int]]:
    """Name -> (function running ``n`` operations, n)."""
    zero, one, five = make_signal(0), make_signal(1), make_signal(5)
    robust_one = make_signal(1)
    async_one = make_signal(0, connect_async=True)
    row = setup_database()
    loop = asyncio.new_event_loop()

    def run_send(signal: Signal, n: int) -> Callable[[], None]:
        def run() -> None:
            send = signal.send
            for _ in range(n):
                send(sender=None, value=1)

        return run

    def run_robust() -> None:
        for _ in range(batch):
            robust_one.send_robust(sender=None, value=1)

    def run_asend() -> None:
        async def many() -> None:
            for _ in range(batch // 10):
                await async_one.asend(sender=None, value=1)

        loop.run_until_complete(many())

    def run_save() -> None:
        for _ in range(batch // 20):
            row.counter += 1
            row.save(update_fields=["counter"])

    def run_save_blocks() -> None:
        # As an application records: a record() block of 200 saves, its enter and
        # exit timed too (time_batch leaves this case's recording to it).
        for _ in range(batch // 200):
            block = signaltrace.record() if MODE[0] == "recording" else contextlib.nullcontext()
            with block:
                for _ in range(200):
                    row.counter += 1
                    row.save(update_fields=["counter"])

    def run_atomic_save() -> None:
        # Issue 13: an atomic block, a save and an on_commit callback per operation:
        # the block's wrapper, the transaction of each dispatch, the callback's fate.
        for _ in range(batch // 20):
            with transaction.atomic():
                row.counter += 1
                row.save(update_fields=["counter"])
                transaction.on_commit(noop)

    def run_bulk_create() -> None:
        # Issue 13: bulk_create on a model with post_save receivers (a bypassed write).
        for _ in range(batch // 200):
            Row.objects.bulk_create([Row(name="bulk") for _ in range(10)])

    def run_load() -> None:
        for _ in range(batch // 200):
            list(Row.objects.all()[:100])

    return {
        "send, 0 receivers": (run_send(zero, batch), batch),
        "send, 1 receiver": (run_send(one, batch), batch),
        "send, 5 receivers": (run_send(five, batch), batch),
        "send_robust, 1 receiver": (run_robust, batch),
        "asend, 1 async receiver": (run_asend, batch // 10),
        "save(), 2 post_save receivers": (run_save, batch // 20),
        SAVE_BLOCKS: (run_save_blocks, (batch // 200) * 200),
        "load 100 rows, post_init receiver": (run_load, batch // 200),
        "atomic() + save() + on_commit()": (run_atomic_save, batch // 20),
        "bulk_create 10 rows, post_save receivers": (run_bulk_create, batch // 200),
    }


#: The case that opens its own record() blocks, and the mode it runs in now.
SAVE_BLOCKS = "save() x200 per record() block, in-memory SQLite"
MODE = ["bare"]


def time_batch(mode: str, run: Callable[[], None], n: int, name: str = "", warm_up: bool = True) -> float:
    """Per-operation nanoseconds of one batch in ``mode``.

    Measures this thread's CPU time with the garbage collector paused: on a shared
    machine, wall time also counts the moments other processes had the CPU.

    ``warm_up``: an untimed batch in the same mode runs first. The first batch after
    ``install()`` or ``uninstall()`` pays for warming up (caches, the interpreter's
    specializations); untimed, that would be charged to the first mode of each round
    (bare), flattering the others most in the short cases.
    """
    if mode == "bare":
        signaltrace.uninstall()
    else:
        signaltrace.install()
    MODE[0] = mode
    # SAVE_BLOCKS opens its own record() blocks.
    recorded = mode == "recording" and name != SAVE_BLOCKS
    gc.disable()
    try:
        if warm_up:
            with signaltrace.record() if recorded else contextlib.nullcontext():
                run()
        with signaltrace.record() if recorded else contextlib.nullcontext():
            start = thread_time_ns()
            run()
            elapsed = thread_time_ns() - start
    finally:
        gc.enable()
    return elapsed / n


MODES = ("bare", "idle", "recording")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=2000, help="sends per batch (fewer for slow cases)")
    parser.add_argument(
        "--otel-rounds", type=int, default=60, help="rounds of the OpenTelemetry row; 0: none"
    )
    args = parser.parse_args()

    all_cases = cases(args.batch)
    samples: dict[tuple[str, str], list[float]] = {(c, m): [] for c in all_cases for m in MODES}
    for _ in range(args.rounds):
        for case, (run, n) in all_cases.items():
            for mode in MODES:
                samples[(case, mode)].append(time_batch(mode, run, n, case))
    signaltrace.uninstall()

    print(
        f"Python {sys.version.split()[0]}, Django {django.get_version()}, {args.rounds} rounds, "
        "medians of thread CPU time per operation; ratios: median of each round's ratio to bare"
    )
    print()
    print("| case | bare µs | idle µs | idle ratio | recording µs | recording ratio |")
    print("|---|---|---|---|---|---|")
    for case in all_cases:
        bare, idle, recording = (statistics.median(samples[(case, mode)]) / 1000 for mode in MODES)
        # Paired: each round's ratio to that round's bare time (taken moments apart, so a
        # slower phase of a shared machine hits both), then the median over rounds.
        idle_ratio, recording_ratio = (
            statistics.median(
                mode_time / bare_time
                for mode_time, bare_time in zip(samples[(case, mode)], samples[(case, "bare")], strict=True)
            )
            for mode in ("idle", "recording")
        )
        print(
            f"| {case} | {bare:.2f} | {idle:.2f} | {idle_ratio:.2f}x "
            f"| {recording:.2f} | {recording_ratio:.2f}x |"
        )
    if args.otel_rounds:
        print()
        print_otel_row(args.otel_rounds)


def print_otel_row(rounds: int) -> None:
    """The OpenTelemetry row: 2 receivers, after the table (sentry-sdk patches Django for good)."""
    try:
        from benchmarks import otel_overhead
    except ImportError as missing:  # the row needs the test extras: OpenTelemetry SDK, sentry-sdk
        print(f"OpenTelemetry row skipped: {missing} (pip install -e '.[test,otel]')")
        return
    receivers = 2
    samples = otel_overhead.Bench(sends=100).measure(receivers, rounds)
    summary = otel_overhead.Summary(samples, receivers)
    bare, by_hand, ours, sentry = (
        statistics.median(samples[mode]) for mode in ("bare", "SDK by hand", "signaltrace", "sentry")
    )
    print(
        f"OpenTelemetry spans, {rounds} rounds, medians of thread CPU time per send "
        "(sentry-sdk: with its transaction end, see otel_overhead.py)"
    )
    print()
    print(
        "| case | bare µs | SDK by hand µs | signaltrace µs | sentry-sdk µs "
        "| beyond the SDK (<= 12%) | per receiver: ours / sentry-sdk µs |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| send + spans, {receivers} receivers | {bare:.2f} | {by_hand:.2f} | {ours:.2f} | {sentry:.2f} "
        f"| {summary.beyond:.1%} {'ok' if summary.a_ok else 'OVER'} "
        f"| {summary.ours:.1f} / {summary.sentry:.1f} {'ok' if summary.b_ok else 'DEARER'} |"
    )


if __name__ == "__main__":
    main()
