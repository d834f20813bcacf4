"""The report builder (signaltrace.testing.report), the part recorder and the ignored-signal counter.

Real dispatches of real signals, recorded in this process; the front ends (the
pytest plugin, the Django runner) are tested through real runs in
tests/test_pytest_plugin.py and tests/test_runner.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db.models.signals import post_init, post_save, pre_init
from django.dispatch import Signal

from signaltrace.testing.ignored import IgnoredCounter
from signaltrace.testing.parts import recorded_part
from signaltrace.testing.report import (
    TOP,
    build_report,
    dumps,
    entry_of_test,
    merge_parts,
    suite_summary,
    text_summary,
    write_report,
)
from tests.testapp.models import Item, Ping

ping = Signal()
pong = Signal()


def answer(sender: Any, **kwargs: Any) -> None:
    pong.send(sender="answer")


ping.connect(answer, weak=False)


def part(*senders: str) -> dict[str, Any]:
    """The summary of a recorded block that sends ``ping`` once per sender."""
    with recorded_part() as recorded:
        for sender in senders:
            ping.send(sender=sender)
    assert recorded.summary is not None
    return recorded.summary


def test_a_part_tallies_signals_by_sender_and_receivers_under_their_signal() -> None:
    summary = part("a", "a", "b")
    assert summary["dispatches"] == 6 and summary["receiver_calls"] == 3
    assert summary["empty_dispatches"] == 3  # pong has no receiver
    assert summary["max_depth"] == 1
    assert [(e["signal"], e["sender"], e["count"], e["empty"]) for e in summary["signals"]] == [
        ("tests.test_report.pong", "'answer'", 3, 3),
        ("tests.test_report.ping", "'a'", 2, 0),
        ("tests.test_report.ping", "'b'", 1, 0),
    ]
    (receiver,) = summary["receivers"]
    assert (receiver["signal"], receiver["receiver"], receiver["calls"]) == (
        "tests.test_report.ping",
        "tests.test_report.answer",
        3,
    )
    assert receiver["total_ns"] >= receiver["max_ns"] > 0
    json.dumps(summary)  # plain JSON types, as xdist sends them


def test_a_part_is_summarized_when_its_block_raises() -> None:
    with pytest.raises(ZeroDivisionError), recorded_part() as recorded:
        ping.send(sender="x")
        1 / 0  # noqa: B018
    assert recorded.summary is not None and recorded.summary["dispatches"] == 2


def test_merged_parts_add_up() -> None:
    first, second = part("a"), part("a", "b")
    merged = merge_parts([first, second])
    assert merged["dispatches"] == 6
    assert [(e["sender"], e["count"]) for e in merged["signals"]] == [("'answer'", 3), ("'a'", 2), ("'b'", 1)]
    (receiver,) = merged["receivers"]
    assert receiver["calls"] == 3
    assert receiver["max_ns"] == max(first["receivers"][0]["max_ns"], second["receivers"][0]["max_ns"])


def entries(count: int) -> list[dict[str, Any]]:
    """``count`` tests; test ``n`` sends ping from ``count - n`` distinct senders in its call."""
    return [
        entry_of_test(
            f"t.py::test_{number:02}",
            "passed",
            None,
            {"call": part(*(f"s{index}" for index in range(count - number)))},
        )
        for number in range(count)
    ]


def test_suite_sections_are_bounded_and_ordered() -> None:
    tests = entries(12)
    summary = suite_summary(tests)
    assert summary["no_receivers"]["count"] == 1  # pong from 'answer'
    busiest = summary["busiest_tests"]
    assert busiest["count"] == 12 and len(busiest["items"]) == TOP
    assert [item["nodeid"] for item in busiest["items"]][:2] == ["t.py::test_00", "t.py::test_01"]
    (top_ping,) = [e for e in summary["top_signals"]["items"] if e["signal"] == "tests.test_report.ping"]
    assert top_ping == {
        "signal": "tests.test_report.ping",
        "dispatches": sum(range(1, 13)),
        "empty": 0,
        "receiver_calls": sum(range(1, 13)),
        "tests": 12,
    }
    assert summary["receivers_by_total"]["items"][0]["calls"] == sum(range(1, 13))


def test_summary_detail_trims_tests_and_full_keeps_every_tally() -> None:
    tests = entries(3)
    summary, full = build_report(tests, "summary"), build_report(tests, "full")
    assert summary["summary"] == full["summary"]
    assert summary["totals"] == full["totals"]
    first = summary["tests"][0]
    assert first["phases"] == {"call": 6}
    assert first["top_signals"] == [
        ["tests.test_report.pong", "'answer'", 3],
        ["tests.test_report.ping", "'s0'", 1],
        ["tests.test_report.ping", "'s1'", 1],
    ]
    assert "loops" not in first and "worker" not in first
    assert len(full["tests"][0]["phases"]["call"]["signals"]) == 4
    assert full["tests"][0]["loops"] == [] and full["tests"][0]["worker"] is None
    with pytest.raises(ValueError, match="detail must be one of summary, full"):
        build_report(tests, "everything")


def test_written_report_is_json_with_one_line_per_test(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "report.json"
    report = write_report(path, entries(3))
    text = path.read_text()
    assert json.loads(text) == report
    lines = text.splitlines()
    assert sum(line.startswith('  {"nodeid"') for line in lines) == 3
    assert not list(tmp_path.glob("**/*.partial"))
    assert json.loads(dumps({**report, "tests": []}))["tests"] == []


def test_text_summary_has_at_most_ten_lines(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    counter = IgnoredCounter()
    counter.install()
    try:
        tests = [
            entry_of_test("t.py::test_items", "passed", None, {"call": _with_items(counter)}),
            *entries(12),
        ]
    finally:
        counter.uninstall()
    report = write_report(path, tests)
    lines = text_summary(report, path)
    assert len(lines) <= 10
    assert lines[0].startswith("signaltrace: 13 tests, ")
    assert lines[-1] == f"  report (summary detail, {path.stat().st_size / 1024:.0f} KB): {path}"
    assert any(line.startswith("  hidden by IGNORE_SIGNALS: post_init 2 dispatches") for line in lines)


def _with_items(counter: IgnoredCounter) -> dict[str, Any]:
    with recorded_part(counter) as recorded:
        Item(name="a"), Item(name="b")
    assert recorded.summary is not None
    return recorded.summary


def _noticed(sender: Any, instance: Any, **kwargs: Any) -> None:
    pass


def test_ignored_counter_counts_by_sender_and_receiver_and_removes_its_shadows() -> None:
    counter = IgnoredCounter()
    counter.install()
    counter.install()  # idempotent
    post_init.connect(_noticed, sender=Item)
    try:
        assert "send" in vars(post_init) and "send" in vars(pre_init)
        assert set(counter.signal_names) == {"pre_init", "post_init"}
        hidden = counter.hidden_receivers()
        assert {"receiver": "tests.test_report._noticed", "location": hidden["post_init"][0]["location"]} in (
            hidden["post_init"]
        )
        Item(name="outside a part")  # not counted: no tally is open
        summary = _with_items(counter)
    finally:
        post_init.disconnect(_noticed, sender=Item)
        counter.uninstall()
    assert "send" not in vars(post_init) and "send" not in vars(pre_init)
    assert summary["ignored_dispatches"] == 4
    ignored = {entry["signal"]: entry for entry in summary["ignored"]}
    assert ignored["post_init"] == {
        "signal": "post_init",
        "dispatches": 2,
        "senders": [{"sender": "testapp.Item", "dispatches": 2}],
        "receivers": [{"receiver": "tests.test_report._noticed", "calls": 2}],
    }
    assert ignored["pre_init"]["receivers"] == []
    # The suite summary joins counted calls to the receivers connected at the end.
    entry = entry_of_test("t.py::test_items", "passed", None, {"call": summary})
    hidden_section = suite_summary(
        [entry], {"post_init": [{"receiver": "tests.test_report._noticed", "location": "x:1"}]}
    )
    (post,) = [item for item in hidden_section["ignored"]["items"] if item["signal"] == "post_init"]
    assert post["receivers"] == [{"receiver": "tests.test_report._noticed", "location": "x:1", "calls": 2}]


# ------------------------------------------------------------------ hazards


def _create_ping(sender: Any, instance: Item, created: bool, **kwargs: Any) -> None:
    Ping.objects.create(name=instance.name)


def _bulk_parts(connect: Any, *batches: int) -> dict[str, Any]:
    """A part in which each batch is one ``bulk_create`` of Items, from one line."""
    connect(post_save, _create_ping, sender=Item)
    with recorded_part() as recorded:
        for rows in batches:
            Item.objects.bulk_create([Item(name=str(row)) for row in range(rows)])  # hazard: bulk
    assert recorded.summary is not None
    return recorded.summary


def _bulk_line() -> int:
    lines = Path(__file__).read_text().splitlines()
    [number] = [n for n, line in enumerate(lines, 1) if line.rstrip().endswith("# hazard: bulk")]
    return number


@pytest.mark.django_db
def test_a_part_lists_each_distinct_hazard_once_with_a_count(connect: Any) -> None:
    summary = _bulk_parts(connect, 2, 2, 1)
    assert [(e["kind"], e["count"]) for e in summary["hazards"]] == [
        ("bypassed_write", 2),
        ("bypassed_write", 1),
    ]
    first = summary["hazards"][0]
    assert set(first) == {"kind", "place", "message", "count"}
    assert first["place"].endswith(f"test_report.py:{_bulk_line()}")
    assert first["message"].startswith("bulk_create of 2 testapp.Item rows: 1 post_save receiver did not run")
    assert not Ping.objects.exists()
    json.dumps(summary)


@pytest.mark.django_db
def test_hazards_are_merged_listed_per_test_and_counted_in_the_summary(connect: Any, tmp_path: Path) -> None:
    one, two = _bulk_parts(connect, 2), _bulk_parts(connect, 2, 3)
    merged = merge_parts([one, two])
    assert [e["count"] for e in merged["hazards"]] == [2, 1]  # the same hazard in both parts, added
    assert merge_parts([part("a"), part("b")])["hazards"] == []
    tests = [
        entry_of_test("t.py::test_bulk", "passed", None, {"setup": one, "call": two}),
        entry_of_test("t.py::test_quiet", "passed", None, {"call": part("a")}),
    ]
    report = write_report(tmp_path / "report.json", tests)
    assert report["totals"]["hazards"] == 3
    bulk, quiet = report["tests"]
    assert [(e["phase"], e["count"]) for e in bulk["hazards"]] == [("setup", 1), ("call", 1), ("call", 1)]
    assert "hazards" not in quiet
    # The suite counts by kind and place: three bulk writes from one line, in one test.
    section = report["summary"]["hazards"]
    assert section["count"] == 1
    assert [(e["kind"], e["count"], e["tests"]) for e in section["items"]] == [("bypassed_write", 3, 1)]
    assert section["items"][0]["place"].endswith(f"test_report.py:{_bulk_line()}")
    full = build_report(tests, "full")
    assert full["tests"][1]["hazards"] == [] and full["totals"] == report["totals"]
    lines = text_summary(report, tmp_path / "report.json")
    assert lines[0].endswith(", 0 loops, 0 receiver errors, 3 hazards")
    assert lines[1].startswith("  hazards: bypassed_write at ") and "(3x in 1 tests)" in lines[1]
