"""OpenTelemetry spans' cost beyond the SDK's own span cost, in instructions (valgrind).

    python benchmarks/otel_instructions.py [--receivers 1 2 5] [--sends 200] [--reps 4]

The sends of ``benchmarks/otel_overhead.py`` (a ``post_save``-like send, spans exported
through a ``BatchSpanProcessor`` to an exporter that drops them), counted rather than
timed: bare Django, the same spans made by hand with the SDK, and
:class:`signaltrace.otel.SignalInstrumentor`. For each, valgrind counts a process that
sends ``--sends`` once and one that sends them ``--reps`` times more; the difference per
send is what one send costs, the exporting thread's work included (the same spans for
both span-making modes). The garbage collector is off; ``.pyc`` files are written first.
"""

from __future__ import annotations

import argparse
import compileall
import gc
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = ("bare", "SDK by hand", "signaltrace")


def run_sends(mode: str, receivers: int, reps: int, sends: int) -> None:
    """The measured process: ``sends`` sends to warm up, then ``reps`` times more."""
    sys.argv = [sys.argv[0]]
    from django.dispatch import Signal

    from benchmarks import otel_overhead as bench_module
    from signaltrace.otel import SignalInstrumentor

    bench = bench_module.Bench(sends)
    connected = [bench_module.make_receiver(index) for index in range(receivers)]
    for receiver in connected:
        bench_module.bench_signal.connect(receiver, weak=False)
    Signal._live_receivers = bench_module.DJANGO_LIVE_RECEIVERS
    by_hand = bench_module.ByHand(bench.provider.get_tracer("bench"), connected)
    if mode == "signaltrace":
        SignalInstrumentor().instrument(tracer_provider=bench.provider)
    send = by_hand.send if mode == "SDK by hand" else bench_module.bench_signal.send
    instance = bench_module.Order()
    gc.disable()
    for _ in range(reps + 1):
        for _ in range(sends):
            send(sender=bench_module.Order, instance=instance, created=True)
        bench.provider.force_flush()


def count(mode: str, receivers: int, reps: int, sends: int) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__]
    command += ["--child", mode, str(receivers), str(reps), "--sends", str(sends)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--receivers", nargs="+", type=int, default=[1, 2, 5])
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "RECEIVERS", "REPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.child:
        mode, receivers, reps = args.child[0], int(args.child[1]), int(args.child[2])
        run_sends(mode, receivers, reps, args.sends)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt install valgrind)")
    for folder in ("signaltrace", "benchmarks"):
        compileall.compile_dir(ROOT / folder, quiet=1)
    print("| receivers | bare | SDK by hand | signaltrace | beyond the SDK's span cost (<= 12%) |")
    print("|---|---|---|---|---|")
    for receivers in args.receivers:
        per_send = {}
        for mode in MODES:
            warm = count(mode, receivers, 0, args.sends)
            per_send[mode] = (count(mode, receivers, args.reps, args.sends) - warm) / (args.reps * args.sends)
        bare, by_hand, ours = (per_send[mode] for mode in MODES)
        share = (ours - by_hand) / (by_hand - bare)
        print(f"| {receivers} | {bare:,.0f} | {by_hand:,.0f} | {ours:,.0f} | {share:.1%} |")


if __name__ == "__main__":
    main()
