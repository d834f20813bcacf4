"""Instruction counts per operation of one overhead.py case, with valgrind: figures that do not
depend on the machine's load.

    python benchmarks/instructions.py "send, 1 receiver"
    python benchmarks/instructions.py "save() x200 per record() block, in-memory SQLite" --batch 200

For each mode, valgrind (``--tool=callgrind``) counts a process that runs the case's batch
once to warm up and one that runs it ``--reps`` times more; the difference, divided by the
operations, is what one operation costs. Three things keep the figure honest:

* the garbage collector never runs, as in overhead.py's timed region (there it is paused);
* ``.pyc`` files are written first: a process that compiles the changed modules and one that
  does not would differ by the compile;
* the per-operation cost moves by a few tenths of a percent with the process's memory layout
  (an environment variable of another length is enough), so each ratio is taken in one layout,
  the two modes side by side, and over ``--paddings`` layouts.
"""

from __future__ import annotations

import argparse
import compileall
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_case(case: str, mode: str, reps: int, batch: int) -> None:
    """The measured process: one warm-up batch in ``mode``, then ``reps`` more."""
    sys.argv = [sys.argv[0]]
    from benchmarks import overhead

    run, n = overhead.cases(batch)[case]
    gc.collect()
    overhead.gc = _NoCollector  # time_batch re-enables the collector: here it stays off
    gc.disable()
    for _ in range(reps + 1):
        overhead.time_batch(mode, run, n, case, warm_up=False)  # warm-up: the first process


class _NoCollector:
    disable = staticmethod(gc.disable)
    enable = staticmethod(lambda: None)


def count(case: str, mode: str, reps: int, batch: int, padding: int) -> int:
    """Instructions valgrind counts for one process (see run_case)."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "SIGNALTRACE_LAYOUT_PADDING": "x" * padding}
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += [__file__, case, "--child", mode, str(reps), "--batch", str(batch)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("case", help="a case name of benchmarks/overhead.py")
    parser.add_argument("--batch", type=int, default=2000, help="as overhead.py's --batch")
    parser.add_argument("--reps", type=int, default=2, help="batches counted per process")
    parser.add_argument("--modes", nargs="+", default=["bare", "idle", "recording"])
    parser.add_argument("--paddings", nargs="+", type=int, default=[1, 50, 200])
    parser.add_argument("--child", nargs=2, metavar=("MODE", "REPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.child:
        run_case(args.case, args.child[0], int(args.child[1]), args.batch)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt install valgrind)")
    from benchmarks import overhead

    n = overhead.cases(args.batch)[args.case][1]
    for folder in ("signaltrace", "benchmarks"):
        compileall.compile_dir(ROOT / folder, quiet=1)
    per_op: dict[str, list[float]] = {mode: [] for mode in args.modes}
    for padding in args.paddings:
        for mode in args.modes:
            warm = count(args.case, mode, 0, args.batch, padding)
            counted = count(args.case, mode, args.reps, args.batch, padding)
            per_op[mode].append((counted - warm) / (args.reps * n))
    print(f"{args.case}: instructions per operation, {len(args.paddings)} layouts")
    print("| mode | per layout | median | ratio to bare (median of layouts) |")
    print("|---|---|---|---|")
    for mode in args.modes:
        values = per_op[mode]
        ratio = ""
        if "bare" in per_op and mode != "bare":
            ratios = [value / bare for value, bare in zip(values, per_op["bare"], strict=True)]
            ratio = f"{statistics.median(ratios):.3f}x ({', '.join(f'{r:.3f}' for r in ratios)})"
        shown = ", ".join(f"{value:,.0f}" for value in values)
        print(f"| {mode} | {shown} | {statistics.median(values):,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
