"""Where a recorded model ``save()`` spends its time: recording with one part switched off.

A diagnostic, not a measure of the product (the parts switched off are needed):

    python benchmarks/save_breakdown.py [--rounds 31]

It runs overhead.py's case "save() x200 per record() block, in-memory SQLite" bare, and
recording with everything on, then with one part of the recording replaced by a stand-in
that does nothing, each in turn, interleaved round by round. What a part costs is how much
less the save takes without it. Inside a real save a part costs about three times what it
costs in a loop that does nothing else (a save runs about 90 µs of Django code between two
dispatches, which leaves signaltrace's code and data cold), so only this measure says what
a part is worth to ``save()``.

The stand-ins are calls too: "receiver call records" keeps a call that returns a constant,
and the dispatch nobody listened to (``pre_save``, unless it has receivers) is dropped by a
wrapper around every dispatch's start, so that variant is read against the same wrapper
passing everything through.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import signaltrace
from benchmarks import overhead
from signaltrace.core import hooks, store


def _no_snapshot(named: dict[str, Any], pattern: Any, repr_objects: bool) -> dict[str, Any]:
    return {}


_CALL: list[Any] = []  # the stand-in call record: nothing reads it back


def _no_call_record(dispatch: Any, receiver: Any, is_async: bool = False) -> Any:
    return _CALL


def _no_call_end(call: Any, exception: BaseException | None = None) -> None:
    return None


def _passing_start(
    recorders: Any, signal: Any, sender: Any, named: Any, method: Any, parent: Any, count: int
) -> Any:
    return store.begin_dispatch(recorders, signal, sender, named, method, parent, count)


def _heard_start(
    recorders: Any, signal: Any, sender: Any, named: Any, method: Any, parent: Any, count: int
) -> Any:
    if count == 0:
        return None
    return store.begin_dispatch(recorders, signal, sender, named, method, parent, count)


VARIANTS: dict[str, list[tuple[Any, str, Any]]] = {
    "everything on": [],
    "no kwargs snapshots": [(store, "snapshot_kwargs", _no_snapshot)],
    "no receiver call records": [(hooks, "begin_call", _no_call_record), (hooks, "end_call", _no_call_end)],
    "dispatch start wrapped (reference for the next)": [(hooks, "begin_dispatch", _passing_start)],
    "wrapped, dispatch nobody listened to not kept": [(hooks, "begin_dispatch", _heard_start)],
}


@contextlib.contextmanager
def switched_off(parts: list[tuple[Any, str, Any]]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for module, name, stand_in in parts:
            stack.enter_context(mock.patch.object(module, name, stand_in))
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args()
    # overhead.py's own case and timing (a warm-up batch, then one timed, collector paused).
    run, saves = overhead.cases(2000)[overhead.SAVE_BLOCKS]

    def per_save_us(mode: str) -> float:
        return overhead.time_batch(mode, run, saves, overhead.SAVE_BLOCKS) / 1000

    bare: list[float] = []
    recorded: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        bare.append(per_save_us("bare"))
        for name, parts in VARIANTS.items():
            with switched_off(parts):
                recorded[name].append(per_save_us("recording"))
    signaltrace.uninstall()

    median_bare = statistics.median(bare)
    print(f"save() x200 per record() block, {args.rounds} rounds, medians; bare {median_bare:.1f} µs")
    print()
    print("| recording | µs over bare | ratio to bare |")
    print("|---|---|---|")
    for name, samples in recorded.items():
        over = statistics.median(mode - plain for mode, plain in zip(samples, bare, strict=True))
        ratio = statistics.median(mode / plain for mode, plain in zip(samples, bare, strict=True))
        print(f"| {name} | {over:.1f} | {ratio:.3f}x |")


if __name__ == "__main__":
    main()
