"""``manage.py signaltrace graph``: the static map, its formats, and edges from a saved trace."""

from __future__ import annotations

import json
import os
import sys
import sysconfig
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db.models.signals import post_save

import signaltrace
from tests.locations import where
from tests.test_loops import ping_saved, pong_saved
from tests.testapp.models import Item, Ping, Pong
from tests.testapp.signals import item_viewed


def on_item_saved(sender: Any, **kwargs: Any) -> None:
    return None


async def on_item_viewed(sender: Any, **kwargs: Any) -> None:
    return None


@pytest.fixture
def receivers() -> Iterator[None]:
    post_save.connect(on_item_saved, sender=Item, dispatch_uid="graph.item_saved")
    item_viewed.connect(on_item_viewed)
    post_save.connect(ping_saved, sender=Ping)
    post_save.connect(pong_saved, sender=Pong)
    yield
    post_save.disconnect(on_item_saved, sender=Item, dispatch_uid="graph.item_saved")
    item_viewed.disconnect(on_item_viewed)
    post_save.disconnect(ping_saved, sender=Ping)
    post_save.disconnect(pong_saved, sender=Pong)


def graph(*args: str) -> str:
    out = StringIO()
    call_command("signaltrace", "graph", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def loop_trace(receivers: None, tmp_path: Path, db: None) -> Path:
    with signaltrace.record() as trace, pytest.raises(signaltrace.SignalLoopError):
        Ping.objects.create()
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(trace.to_dict()))
    return path


def test_text_lists_every_receiver_per_signal_and_sender(receivers: None) -> None:
    text = graph()
    assert text.startswith("Signal map: ")
    assert (
        "post_save\n"
        "  sender testapp.Item\n"
        f"    tests.test_graph_command.on_item_saved  {where(on_item_saved)}"
        "  dispatch_uid='graph.item_saved'\n"
        "  sender testapp.Ping\n"
        f"    tests.test_loops.ping_saved  {where(ping_saved)}\n"
    ) in text
    assert (
        "tests.testapp.signals.item_viewed\n  any sender\n"
        f"    tests.test_graph_command.on_item_viewed  {where(on_item_viewed)}  async\n"
    ) in text
    assert f"    signaltrace.conf.reset_config  {where(signaltrace.conf.reset_config)}" in text
    assert "Cycles" not in text


def test_filters_by_signal_and_receiver_globs(receivers: None) -> None:
    text = graph("--signal", "post_save", "--exclude", "tests.test_loops.*")
    assert "on_item_saved" in text
    assert "ping_saved" not in text and "reset_config" not in text
    only = graph("--include", "*.pong_saved")
    assert only.startswith("Signal map: 1 receivers on 1 signals")


def test_json_lists_connections(receivers: None) -> None:
    data = json.loads(graph("--format", "json", "--signal", "post_save"))
    item = next(c for c in data["connections"] if c["receiver"] == "tests.test_graph_command.on_item_saved")
    assert item == {
        "signal": "post_save",
        "sender": "testapp.Item",
        "receiver": "tests.test_graph_command.on_item_saved",
        "file": on_item_saved.__code__.co_filename,
        "line": on_item_saved.__code__.co_firstlineno,
        "dispatch_uid": "graph.item_saved",
        "is_async": False,
        "weak": True,
        "count": 1,
    }
    assert data["cycles"] == []


def test_from_trace_shows_the_loop_as_a_cycle(loop_trace: Path) -> None:
    text = graph("--from-trace", str(loop_trace), "--signal", "post_save")
    assert f"Observed in {loop_trace}:" in text
    assert "  post_save(testapp.Ping) -> tests.test_loops.ping_saved  called x2" in text
    assert "  tests.test_loops.ping_saved -> post_save(testapp.Pong)  sent x2" in text
    assert "  tests.test_loops.pong_saved -> post_save(testapp.Ping)  sent x2" in text
    assert text.endswith(
        "Cycles:\n  post_save(testapp.Ping) -> tests.test_loops.ping_saved -> post_save(testapp.Pong) -> "
        "tests.test_loops.pong_saved -> post_save(testapp.Ping)\n"
    )
    data = json.loads(graph("--from-trace", str(loop_trace), "--format", "json"))
    assert data["cycles"] == [
        [
            "post_save(testapp.Ping)",
            "tests.test_loops.ping_saved",
            "post_save(testapp.Pong)",
            "tests.test_loops.pong_saved",
            "post_save(testapp.Ping)",
        ]
    ]
    assert {"receiver": "tests.test_loops.pong_saved", "signal": "post_save", "sender": "testapp.Ping",
            "count": 2} in data["observed"]["sends"]  # fmt: skip


def test_mermaid_and_dot(loop_trace: Path, tmp_path: Path) -> None:
    mermaid = graph("--from-trace", str(loop_trace), "--format", "mermaid", "--signal", "post_save")
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart LR"
    nodes = {line.split("(", 1)[0].split("[", 1)[0].strip(): line for line in lines[1:] if "--" not in line}
    ping = next(n for n, line in nodes.items() if '"post_save<br/>testapp.Ping"' in line)
    saved = next(n for n, line in nodes.items() if '"tests.test_loops.ping_saved<br/>' in line)
    assert f'  {ping} -.->|"called x2"| {saved}' in lines
    assert any(line.startswith(f"  {saved} -.->|") for line in lines)
    assert any(" --> " in line for line in lines)  # static only: on_item_saved
    output = tmp_path / "map.dot"
    assert graph("--from-trace", str(loop_trace), "--format", "dot", "-o", str(output)) == ""
    dot = output.read_text()
    assert dot.startswith("digraph signals {\n  rankdir=LR;")
    assert '[label="post_save\\ntestapp.Ping", shape=ellipse];' in dot
    assert '[style=dashed, label="sent x2"];' in dot
    assert dot.rstrip().endswith("}")


def test_labels_are_escaped_in_mermaid_and_dot(receivers: None) -> None:
    from signaltrace.graph.render import _dot_text, _mermaid_text

    assert _mermaid_text('a "b" <c> & d') == "a #quot;b#quot; #lt;c#gt; #amp; d"
    assert _dot_text('a "b" \\ c') == 'a \\"b\\" \\\\ c'


def test_bad_trace_file_is_a_command_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    path.write_text("[1, 2]")
    with pytest.raises(CommandError, match="is not a signaltrace trace"):
        graph("--from-trace", str(path))
    with pytest.raises(CommandError, match="Cannot read the trace"):
        graph("--from-trace", str(tmp_path / "missing.json"))


# ------------------------------------------------------------------ issue 15 nits


class Storage:
    """Connects a bound method per instance, as Django's storages do for setting_changed."""

    def __init__(self) -> None:
        item_viewed.connect(self.clear_cache)

    def clear_cache(self, sender: Any, **kwargs: Any) -> None:
        return None


def test_identical_rows_are_shown_once_with_a_count() -> None:
    storages = [Storage(), Storage(), Storage()]
    try:
        text = graph("--signal", "tests.testapp.signals.item_viewed")
        row = (
            f"    tests.test_graph_command.Storage.clear_cache  {where(Storage.clear_cache)}  connected x3\n"
        )
        assert row in text
        assert text.count("Storage.clear_cache") == 1
        assert text.startswith("Signal map: 1 receivers on 1 signals")
        data = json.loads(graph("--format", "json", "--signal", "tests.testapp.signals.item_viewed"))
        assert [c["count"] for c in data["connections"]] == [3]
        assert '-->|"connected x3"|' in graph("--format", "mermaid", "--signal", "*.item_viewed")
        assert '[style=solid, label="connected x3"];' in graph("--format", "dot", "--signal", "*.item_viewed")
    finally:
        for storage in storages:
            item_viewed.disconnect(storage.clear_cache)


def test_an_unknown_signal_pattern_is_a_command_error(receivers: None) -> None:
    with pytest.raises(CommandError, match=r"No signal matches --signal 'post_sav', 'nope\*'"):
        graph("--signal", "post_save", "--signal", "post_sav", "--signal", "nope*")
    # A known signal with no receivers matched is no error: the map is empty, and says so.
    assert graph("--signal", "pre_delete").startswith("Signal map: 0 receivers on 0 signals")


def test_a_signal_pattern_may_match_a_signal_only_the_trace_has(loop_trace: Path) -> None:
    trace = json.loads(loop_trace.read_text())
    for dispatch in trace["dispatches"]:
        dispatch["signal"] = "gone.signals.renamed"
    loop_trace.write_text(json.dumps(trace))
    text = graph("--from-trace", str(loop_trace), "--signal", "gone.*")
    assert "  gone.signals.renamed(testapp.Ping) -> tests.test_loops.ping_saved  called x2" in text


@pytest.fixture
def outside_package(tmp_path: Path) -> Iterator[Any]:
    """A package imported from a directory that is not on sys.path (as an editable install's is)."""
    package = tmp_path / "src" / "graph_outside_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "receivers.py").write_text("def on_viewed(sender, **kwargs):\n    return None\n")
    sys.path.insert(0, str(tmp_path / "src"))
    try:
        from graph_outside_pkg import receivers as module  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path / "src"))
    item_viewed.connect(module.on_viewed)
    yield module
    item_viewed.disconnect(module.on_viewed)
    for name in ("graph_outside_pkg.receivers", "graph_outside_pkg"):
        sys.modules.pop(name, None)


def test_a_receiver_outside_sys_path_is_shown_relative_to_its_package(outside_package: Any) -> None:
    assert os.path.isabs(where(outside_package.on_viewed))  # what short_path alone gives
    text = graph("--signal", "*.item_viewed")
    assert "    graph_outside_pkg.receivers.on_viewed  graph_outside_pkg/receivers.py:1\n" in text
    assert "/graph_outside_pkg/" not in text


def test_files_in_site_packages_or_the_stdlib_are_shortened_off_sys_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from signaltrace.graph.signal_map import display_path

    monkeypatch.setattr(sys, "path", [])
    for name in ("purelib", "stdlib"):
        file = os.path.join(sysconfig.get_path(name), "graph_test_nowhere", "receivers.py")
        assert display_path(file, "graph_test_nowhere.receivers.on_viewed") == os.path.join(
            "graph_test_nowhere", "receivers.py"
        )
    assert display_path("/nowhere/graph_test/receivers.py") == "/nowhere/graph_test/receivers.py"


# ------------------------------------------------------------------ delete paths


def on_permission_deleted(sender: Any, **kwargs: Any) -> None:
    return None


def test_deletes_draws_receivers_and_cascades(connect) -> None:
    from django.contrib.auth.models import Permission
    from django.db.models.signals import post_delete, pre_delete

    connect(post_delete, on_permission_deleted, sender=Permission)
    connect(pre_delete, on_permission_deleted, sender=Permission)
    text = graph("--deletes", "contenttypes.ContentType")
    lines = text.splitlines()
    assert lines[0].startswith("Delete paths")
    assert "delete contenttypes.ContentType  no delete receivers" in lines
    slow = "slow path: rows loaded, 2 signals per row"
    at = lines.index(f"  -> auth.Permission (CASCADE via Permission.content_type)  {slow}")
    location = f"tests/test_graph_command.py:{on_permission_deleted.__code__.co_firstlineno}"
    assert lines[at + 1 : at + 3] == [
        f"      pre_delete  {__name__}.on_permission_deleted  {location}",
        f"      post_delete  {__name__}.on_permission_deleted  {location}",
    ]
    # Permission's own cascades: the auto-created m2m tables, which send no signals.
    m2m = "auto-created m2m table: no signals"
    assert f"    -> auth.Group_permissions (CASCADE via Group_permissions.permission)  {m2m}" in lines


def test_deletes_without_receivers_and_self_cascades_stop(connect) -> None:
    text = graph("-d", "testapp.Node")
    assert text.splitlines()[2:4] == [
        "delete testapp.Node  no delete receivers",
        "  -> testapp.Node (CASCADE via Node.parent)  (already above)",
    ]


def test_deletes_as_json_and_mermaid(connect) -> None:
    from django.db.models.signals import post_delete

    connect(post_delete, on_permission_deleted, sender=Item)
    data = json.loads(graph("--deletes", "testapp.Item", "--format", "json"))
    (path,) = data["delete_paths"]
    assert path["model"] == "testapp.Item" and path["slow_path"] is True
    assert path["receivers"] == [
        {
            "signal": "post_delete",
            "receiver": f"{__name__}.on_permission_deleted",
            "file": __file__.removesuffix("c"),
            "line": on_permission_deleted.__code__.co_firstlineno,
        }
    ]
    mermaid = graph("-d", "testapp.Item", "-f", "mermaid")
    assert mermaid.startswith("flowchart LR\n")
    assert '[["delete testapp.Item"]]' in mermaid and "-- post_delete -->" in mermaid


def test_deletes_of_an_unknown_model_or_in_dot_is_a_command_error() -> None:
    with pytest.raises(CommandError, match=r"No model 'shop\.Nothing'"):
        graph("--deletes", "shop.Nothing")
    with pytest.raises(CommandError, match="text, json or mermaid"):
        graph("--deletes", "testapp.Item", "--format", "dot")
