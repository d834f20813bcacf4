"""``--signaltrace-trace=PATH``: a test run as Chrome trace-event JSON, through real pytest runs.

The project under test is the ``shop`` project of tests/test_pytest_plugin.py (Order ->
Receipt receivers, the ``order_paid`` signal, a loop when a paid order is saved).
tests/test_flame_viewer.py opens such a file in speedscope.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from signaltrace.testing.chrome_trace import _microseconds, chrome_trace, track_id
from tests.test_pytest_plugin import project, run

__all__ = ["FLAME_TESTS", "project", "run_traced"]

FLAME_PLUGIN = ("-p", "signaltrace.testing.flame_plugin")

FLAME_TESTS = """
import pytest

from shop.models import Order
from shop.signals import order_paid

pytestmark = pytest.mark.django_db


@pytest.fixture
def order():
    order = Order.objects.create(number=10)
    yield order
    order_paid.send(sender=Order, order=order)


@pytest.mark.parametrize("number", [1, 2, 3])
def test_orders(number):
    Order.objects.create(number=number)


def test_paid_in_teardown(order):
    assert order.number == 10


def test_swallowed_error():
    order_paid.send_robust(sender=Order, order=Order(number=-1))


def test_loop_swallowed():
    order = Order.objects.create(number=7)
    Order.objects.filter(pk=order.pk).update(paid=True)
    order.refresh_from_db()
    order_paid.send_robust(sender=Order, order=order)


def test_fails():
    Order.objects.create(number=4)
    assert False
"""

TEST_COUNT = 7


def run_traced(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = run(pytester, *FLAME_PLUGIN, "--signaltrace-trace=out/run.json", *args)
    return result, json.loads((pytester.path / "out" / "run.json").read_text())


def slices(content: dict[str, Any], category: str) -> list[dict[str, Any]]:
    return [event for event in content["traceEvents"] if event["ph"] == "X" and event["cat"] == category]


def inside(child: dict[str, Any], parent: dict[str, Any]) -> bool:
    return (
        child["tid"] == parent["tid"]
        and parent["ts"] <= child["ts"]
        and child["ts"] + child["dur"] <= parent["ts"] + parent["dur"]
    )


def assert_properly_nested(content: dict[str, Any]) -> None:
    """Per track, complete events form a tree: each one ends before the one it starts in ends."""
    by_track: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in content["traceEvents"]:
        if event["ph"] == "X":
            by_track[event["tid"]].append(event)
    for events in by_track.values():
        open_ends: list[float] = []
        for event in events:  # the file's order: by start, parents first
            while open_ends and open_ends[-1] <= event["ts"]:
                open_ends.pop()
            end = event["ts"] + event["dur"]
            assert not open_ends or end <= open_ends[-1], event
            open_ends.append(end)


def test_trace_nests_tests_phases_dispatches_and_receivers(project: pytest.Pytester) -> None:
    project.makepyfile(test_shop=FLAME_TESTS)
    result, content = run_traced(project)
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(["signaltrace: flame view of 7 tests (* events) written to */out/run.json"])
    events = content["traceEvents"]
    assert content["displayTimeUnit"] == "ms"
    assert {"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "pytest"}} in events
    assert {"name": "thread_name", "ph": "M", "pid": 1, "tid": 1, "args": {"name": "main"}} in events
    assert min(event["ts"] for event in events if event["ph"] != "M") == 0
    assert_properly_nested(content)

    tests = {event["name"]: event for event in slices(content, "test")}
    assert len(tests) == TEST_COUNT
    assert "test_shop.py::test_fails [failed]" in tests
    assert all("args" not in test for test in tests.values())
    phases = slices(content, "phase")
    assert [phase["name"] for phase in phases if inside(phase, tests["test_shop.py::test_orders[1]"])] == [
        "setup",
        "call",
        "teardown",
    ]

    test = tests["test_shop.py::test_orders[2]"]
    call = next(phase for phase in phases if phase["name"] == "call" and inside(phase, test))
    dispatches = [event for event in slices(content, "dispatch") if inside(event, call)]
    assert [event["name"] for event in dispatches] == [
        "pre_save (shop.Order)",
        "post_save (shop.Order)",
        "pre_save (shop.Receipt)",
        "post_save (shop.Receipt)",
    ]
    post_save = dispatches[1]
    assert "args" not in post_save
    receivers = [event for event in slices(content, "receiver") if inside(event, post_save)]
    assert [event["name"] for event in receivers] == [
        "shop.receivers.create_receipt",
        "shop.receivers.touch_order",
    ]
    assert inside(dispatches[3], receivers[0]) and inside(receivers[1], dispatches[3])

    teardown_test = tests["test_shop.py::test_paid_in_teardown"]
    teardown = next(phase for phase in phases if phase["name"] == "teardown" and inside(phase, teardown_test))
    assert next(event["name"] for event in slices(content, "dispatch") if inside(event, teardown)) == (
        "shop.signals.order_paid (shop.Order)"
    )

    raised = [event for event in slices(content, "receiver") if "args" in event]
    by_test = {name: [event for event in raised if inside(event, test)] for name, test in tests.items()}
    assert [(event["name"], event["args"]) for event in by_test["test_shop.py::test_swallowed_error"]] == [
        ("shop.receivers.notify_accounting", {"exception": "builtins.ValueError", "swallowed": True})
    ]
    # The loop error passes up through each receiver to the send_robust that swallows it.
    assert {event["args"]["exception"] for event in by_test["test_shop.py::test_loop_swallowed"]} == {
        "signaltrace.errors.SignalLoopError"
    }
    instants = {event["name"]: event for event in events if event["ph"] == "i"}
    swallowed = "swallowed ValueError: shop.receivers.notify_accounting"
    assert swallowed in instants and instants[swallowed]["s"] == "t"
    loop_test = tests["test_shop.py::test_loop_swallowed"]
    loops = [event for name, event in instants.items() if name.startswith("loop stopped: ")]
    assert loops and all(
        loop_test["ts"] <= loop["ts"] <= loop_test["ts"] + loop_test["dur"] for loop in loops
    )


def test_xdist_workers_get_one_track_each(project: pytest.Pytester) -> None:
    project.makepyfile(test_shop=FLAME_TESTS)
    result, content = run_traced(project, "-n", "2")
    result.assert_outcomes(passed=6, failed=1)
    names = {
        event["tid"]: event["args"]["name"]
        for event in content["traceEvents"]
        if event["name"] == "thread_name"
    }
    assert names == {2: "gw0", 3: "gw1"}
    tests = slices(content, "test")
    assert len(tests) == TEST_COUNT
    assert {test["tid"] for test in tests} == {2, 3}
    assert_properly_nested(content)


def test_no_option_no_file_and_no_recording(project: pytest.Pytester) -> None:
    project.makepyfile(test_shop=FLAME_TESTS)
    result = run(project, *FLAME_PLUGIN)
    result.assert_outcomes(passed=6, failed=1)
    assert "flame view" not in result.stdout.str()
    assert not (project.path / "out").exists()


def test_times_are_binary_fractions_so_a_child_never_ends_after_its_parent() -> None:
    parent = {"name": "p", "ph": "X", "ts": 1_000_001, "dur": 999_999, "pid": 1, "tid": 1}
    child = {"name": "c", "ph": "X", "ts": 1_000_334, "dur": 999_666, "pid": 1, "tid": 1}
    content = chrome_trace([child, parent])
    first, second = content["traceEvents"][-2:]
    assert (first["name"], second["name"]) == ("p", "c")  # sorted: the parent first
    assert second["ts"] + second["dur"] == first["ts"] + first["dur"]
    assert _microseconds(1_000) == 1.0 and _microseconds(1) == 1 / 1024
    assert [track_id(name) for name in ("main", "gw0", "gw7", "other")] == [1, 2, 9, 1]


def test_flame_file_of_the_fixture_runs_is_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    from signaltrace.testing.chrome_trace import write_chrome_trace

    assert write_chrome_trace(path, []) == 1  # the process name alone
    assert json.loads(path.read_text())["traceEvents"][0]["name"] == "process_name"
