"""Lineage queries: walking runs, usages and version history up and down, and rendering."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pytest

import curata
from curata.lake.lineage import LineageGraph


@dataclass
class Story:
    """Run ids of the scenario built by :func:`story`."""

    ingest: str
    enrich: str
    report: str


def _run(
    lake: curata.Lake, job: str, inputs: list[str], writes: dict[str, pa.Table], **kw: str
) -> str:
    run_id = lake.start_run(
        job, params={}, code_version=None, executor="local", inputs=inputs, **kw
    )
    for name in writes:
        lake.create_dataset(name, exist_ok=True)
    with lake.publish(message=job, run_id=run_id) as pub:
        for name, table in writes.items():
            pub.append(name, table)
    lake.finish_run(run_id, status="succeeded", metrics={}, outputs=[])
    return run_id


def story(lake: curata.Lake) -> Story:
    """src@1 -ingest-> tickets@1; tickets@2 by hand; tickets@2 + labels@1 -enrich-> tickets@3
    and summary@1 (one publish); tickets@3 + noise@1 -report-> report@1; model:ft@1 trained on
    tickets@3, deployment:chat serves summary@1."""
    one = pa.table({"id": [1], "text": ["a"]})
    lake.create_dataset("src").append(one)
    lake.create_dataset("labels").append(pa.table({"id": [1], "label": ["x"]}))
    lake.create_dataset("noise").append(pa.table({"n": [0]}))
    ingest = _run(lake, "ingest", ["src@1"], {"tickets": one})
    lake.dataset("tickets").append(pa.table({"id": [2], "text": ["b"]}), message="by hand")
    enrich = _run(
        lake,
        "enrich",
        ["tickets@2", "labels@1"],
        {"tickets": pa.table({"id": [3], "text": ["c"]}), "summary": pa.table({"n": [3]})},
    )
    report = _run(lake, "report", ["tickets@3", "noise@1"], {"report": pa.table({"n": [1]})})
    lake.record_usage("tickets@3", consumer="model:ft@1", purpose="training")
    lake.record_usage("summary", consumer="deployment:chat", purpose="serving")
    return Story(ingest=ingest, enrich=enrich, report=report)


def ids(graph: LineageGraph) -> set[str]:
    return {n.id for n in graph.nodes}


def edges(graph: LineageGraph) -> set[tuple[str, str, str]]:
    return {(e.source, e.label, e.target) for e in graph.edges}


def test_upstream_includes_how_earlier_versions_were_made(lake: curata.Lake) -> None:
    s = story(lake)
    graph = lake.lineage("tickets@3", direction="up")
    assert graph.root == "tickets@3"
    assert ids(graph) == {
        "tickets@3",
        f"run:{s.enrich}",
        "tickets@2",
        "labels@1",
        "tickets@1",
        f"run:{s.ingest}",
        "src@1",
    }
    assert edges(graph) == {
        (f"run:{s.enrich}", "wrote", "tickets@3"),
        ("tickets@2", "read", f"run:{s.enrich}"),
        ("labels@1", "read", f"run:{s.enrich}"),
        ("tickets@2", "next version", "tickets@3"),
        ("tickets@1", "next version", "tickets@2"),
        (f"run:{s.ingest}", "wrote", "tickets@1"),
        ("src@1", "read", f"run:{s.ingest}"),
    }
    assert graph.node("tickets@1").distance == 2
    assert graph.node("src@1").distance == 4


def test_downstream_reaches_runs_outputs_and_consumers(lake: curata.Lake) -> None:
    s = story(lake)
    graph = lake.lineage("src@1", direction="down")
    assert ids(graph) == {
        "src@1",
        f"run:{s.ingest}",
        "tickets@1",
        "tickets@2",
        "tickets@3",
        f"run:{s.enrich}",
        "summary@1",
        f"run:{s.report}",
        "report@1",
        "consumer:model:ft@1",
        "consumer:deployment:chat",
    }
    assert ("tickets@3", "used by training", "consumer:model:ft@1") in edges(graph)
    assert ("summary@1", "used by serving", "consumer:deployment:chat") in edges(graph)
    # Other inputs of downstream runs are not part of src@1's lineage.
    assert "labels@1" not in ids(graph) and "noise@1" not in ids(graph)


def test_both_directions_leave_out_other_inputs_of_downstream_runs(lake: curata.Lake) -> None:
    s = story(lake)
    graph = lake.lineage("tickets@3", direction="both")
    assert f"run:{s.report}" in ids(graph) and "report@1" in ids(graph)
    assert "labels@1" in ids(graph)  # upstream
    assert "noise@1" not in ids(graph)
    assert ("noise@1", "read", f"run:{s.report}") not in edges(graph)
    assert "summary@1" not in ids(graph)  # a sibling output, neither up nor down


def test_depth_limits_the_walk_in_edges(lake: curata.Lake) -> None:
    s = story(lake)
    assert ids(lake.lineage("tickets@3", direction="up", depth=0)) == {"tickets@3"}
    assert ids(lake.lineage("tickets@3", direction="up", depth=1)) == {
        "tickets@3",
        "tickets@2",
        f"run:{s.enrich}",
    }
    two = lake.lineage("tickets@3", direction="up", depth=2)
    assert {"labels@1", "tickets@1"} <= ids(two) and "src@1" not in ids(two)
    assert max(n.distance for n in two.nodes) == 2


def test_the_root_may_be_a_tag_a_run_or_a_consumer(lake: curata.Lake) -> None:
    s = story(lake)
    lake.dataset("tickets").tag("prod", 3)
    assert lake.lineage("tickets@prod", direction="up").root == "tickets@3"
    assert lake.lineage("tickets", direction="up").root == "tickets@3"
    by_run = lake.lineage(f"run:{s.enrich[:8]}", direction="up", depth=1)
    assert by_run.root == f"run:{s.enrich}"
    assert ids(by_run) == {f"run:{s.enrich}", "tickets@2", "labels@1"}
    by_model = lake.lineage("model:ft@1", direction="up", depth=2)
    assert by_model.root == "consumer:model:ft@1"
    assert ids(by_model) == {"consumer:model:ft@1", "tickets@3", f"run:{s.enrich}", "tickets@2"}
    assert lake.lineage("consumer:deployment:chat", direction="up", depth=1).root == (
        "consumer:deployment:chat"
    )


def test_lineage_errors_name_what_exists(lake: curata.Lake) -> None:
    story(lake)
    lake.create_dataset("empty")
    with pytest.raises(curata.NotFound, match="Did you mean: tickets"):
        lake.lineage("tickts")
    with pytest.raises(curata.NotFound, match="no versions yet"):
        lake.lineage("empty")
    with pytest.raises(curata.NotFound, match="Did you mean: model:ft@1"):
        lake.lineage("model:ft@2")
    with pytest.raises(curata.NotFound, match="No run"):
        lake.lineage("run:0123456789")
    with pytest.raises(curata.InvalidInput, match="up, down or both"):
        lake.lineage("tickets", direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(curata.InvalidInput, match="zero or more"):
        lake.lineage("tickets", depth=-1)


def test_a_version_with_no_history_is_alone(sqlite_lake: curata.Lake) -> None:
    sqlite_lake.create_dataset("solo").append(pa.table({"x": [1]}))
    graph = sqlite_lake.lineage("solo")
    assert ids(graph) == {"solo@1"} and graph.edges == []


def test_commits_of_an_unrecorded_run_still_show_it(sqlite_lake: curata.Lake) -> None:
    sqlite_lake.create_dataset("out")
    with sqlite_lake.publish(message="by a script", run_id="never-started") as pub:
        pub.append("out", pa.table({"x": [1]}))
    graph = sqlite_lake.lineage("out@1", direction="up")
    assert edges(graph) == {("run:never-started", "wrote", "out@1")}
    assert graph.node("run:never-started").attributes["status"] == "unknown"


def test_outside_sources_are_nodes(sqlite_lake: curata.Lake) -> None:
    run_id = _run(sqlite_lake, "import", ["file:///data/raw.csv"], {"raw": pa.table({"x": [1]})})
    graph = sqlite_lake.lineage("raw", direction="up")
    assert graph.node("file:///data/raw.csv").type == "source"
    assert ("file:///data/raw.csv", "read", f"run:{run_id}") in edges(graph)


def test_json_form_has_typed_nodes_with_attributes(lake: curata.Lake) -> None:
    s = story(lake)
    data = lake.lineage("tickets@3", direction="both", depth=1).to_dict()
    assert (data["root"], data["direction"], data["depth"]) == ("tickets@3", "both", 1)
    nodes = {n["id"]: n for n in data["nodes"]}
    assert data["nodes"][0]["id"] == "tickets@3"
    assert nodes["tickets@3"]["type"] == "dataset_version"
    attrs = nodes["tickets@3"]["attributes"]
    assert (attrs["dataset"], attrs["version"], attrs["rows"], attrs["run_id"]) == (
        "tickets",
        3,
        3,
        s.enrich,
    )
    assert attrs["message"] == "enrich" and attrs["operation"] == "append"
    run = nodes[f"run:{s.enrich}"]
    assert run["type"] == "run"
    assert (run["attributes"]["job"], run["attributes"]["status"]) == ("enrich", "succeeded")
    assert nodes["consumer:model:ft@1"]["type"] == "consumer"
    assert nodes["consumer:model:ft@1"]["attributes"] == {
        "kind": "model",
        "name": "ft",
        "version": "1",
    }
    assert {
        "source": "tickets@3",
        "target": "consumer:model:ft@1",
        "type": "used_by",
        "label": "used by training",
    } in data["edges"]
    # One hop each way: made by enrich, next after tickets@2, used by the model, read by report.
    assert {e["type"] for e in data["edges"]} == {"wrote", "next_version", "used_by", "read"}


def test_dot_and_mermaid_show_every_node_and_edge(sqlite_lake: curata.Lake) -> None:
    s = story(sqlite_lake)
    graph = sqlite_lake.lineage("tickets@3", direction="up", depth=1)
    dot = graph.to_dot()
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert f'"run:{s.enrich}" -> "tickets@3" [label="wrote"];' in dot
    assert '"tickets@2" -> "tickets@3" [label="next version", style="dashed"];' in dot
    assert '"tickets@3" [shape="cylinder", label="tickets@3\\n3 rows", penwidth="2"];' in dot
    mermaid = graph.to_mermaid().splitlines()
    assert mermaid[0] == "flowchart LR"
    assert '  n0[("tickets@3<br/>3 rows")]' in mermaid
    assert sum("-->" in line or "-.->" in line for line in mermaid) == len(graph.edges)
    assert '  n2 -.->|"next version"| n0' in mermaid or '  n1 -.->|"next version"| n0' in mermaid
    assert "  class n0 root;" in mermaid


def test_renderers_escape_names_they_cannot_say(sqlite_lake: curata.Lake) -> None:
    run_id = sqlite_lake.start_run(
        'say "hi" <now>', params={}, code_version=None, executor=None, inputs=[]
    )
    sqlite_lake.finish_run(run_id, status="failed", metrics={}, outputs=[], error="boom")
    graph = sqlite_lake.lineage(f"run:{run_id}")
    assert 'label="say \\"hi\\" <now>\\n' in graph.to_dot()
    assert 'color="red"' in graph.to_dot()
    mermaid = graph.to_mermaid()
    assert "say #quot;hi#quot; #lt;now#gt;" in mermaid and '"hi"' not in mermaid
    assert "class n0 failed;" in mermaid
