"""OpenLineage export: RunEvents written to a file, posted to a real HTTP server on loopback,
or printed, the way Marquez or DataHub would receive them."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import curata
from curata.lineage import export_openlineage
from curata.lineage.openlineage import lake_namespace, run_uuid


def _run(
    lake: curata.Lake,
    job: str,
    inputs: list[str],
    writes: dict[str, pa.Table],
    *,
    status: str = "succeeded",
    metrics: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> str:
    rid = lake.start_run(
        job,
        params={"lower": True, "n": 3},
        code_version="fp-1",
        executor="local",
        inputs=inputs,
        run_id=run_id,
    )
    for name in writes:
        lake.create_dataset(name, exist_ok=True)
    if writes:
        with lake.publish(message=job, run_id=rid) as pub:
            for name, table in writes.items():
                pub.append(name, table)
    error = "quality gate failed" if status == "failed" else None
    lake.finish_run(rid, status=status, metrics=metrics or {}, outputs=[], error=error)  # type: ignore[arg-type]
    return rid


def scenario(lake: curata.Lake) -> dict[str, str]:
    """raw@1 -clean-> tickets@1 (with column lineage); tickets@1 -gate-> FAIL; a run still
    running that reads tickets@1."""
    lake.create_dataset("raw").append(
        pa.table({"id": [1, 2, 3], "text": ["A", "B", "C"], "lang": ["en", "de", "en"]})
    )
    clean = _run(
        lake,
        "clean",
        ["raw@1"],
        {"tickets": pa.table({"id": [1, 3], "text": ["a", "c"]})},
        metrics={
            "rows": 2,
            "column_lineage": {
                "tickets": {"id": [["raw", "id"]], "text": [["raw@1", "text"], ["raw", "lang"]]}
            },
        },
    )
    gate = _run(lake, "gate", ["tickets@1"], {}, status="failed")
    running = lake.start_run(
        "slow", params={}, code_version=None, executor="ray", inputs=["tickets"]
    )
    return {"clean": clean, "gate": gate, "running": running}


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_type(events: list[dict[str, Any]], run_id: str) -> dict[str, dict[str, Any]]:
    return {e["eventType"]: e for e in events if e["run"]["runId"] == run_uuid(run_id)}


def test_each_run_becomes_start_and_complete_or_fail(lake: curata.Lake, tmp_path: Path) -> None:
    ids = scenario(lake)
    out = tmp_path / "events.jsonl"
    summary = export_openlineage(lake, str(out))
    events = read_events(out)
    assert (summary.runs, summary.events) == (3, 5) == (3, len(events))
    assert [e["eventTime"] for e in events] == sorted(e["eventTime"] for e in events)
    assert set(by_type(events, ids["clean"])) == {"START", "COMPLETE"}
    assert set(by_type(events, ids["gate"])) == {"START", "FAIL"}
    assert set(by_type(events, ids["running"])) == {"START"}
    ns = lake_namespace(lake.uri)
    assert ns == Path(lake.uri).resolve().as_uri() and ns.startswith("file:///")
    for e in events:
        assert e["job"]["namespace"] == ns
        assert e["producer"].startswith("urn:curata:")
        assert e["schemaURL"].endswith("#/$defs/RunEvent")
        uuid.UUID(e["run"]["runId"])
    fail = by_type(events, ids["gate"])["FAIL"]
    assert fail["run"]["facets"]["errorMessage"]["message"] == "quality gate failed"
    assert fail["outputs"] == []
    assert fail["job"]["name"] == "gate"


def test_datasets_carry_schema_source_version_statistics_and_column_lineage(
    lake: curata.Lake, tmp_path: Path
) -> None:
    ids = scenario(lake)
    out = tmp_path / "events.jsonl"
    export_openlineage(lake, str(out))
    ns = lake_namespace(lake.uri)
    start, complete = (by_type(read_events(out), ids["clean"])[k] for k in ("START", "COMPLETE"))
    assert start["run"]["runId"] == str(uuid.UUID(hex=ids["clean"]))
    assert start["outputs"] == []
    [raw] = complete["inputs"]
    assert (raw["namespace"], raw["name"]) == (ns, "raw")
    assert raw["facets"]["version"]["datasetVersion"] == "1"
    assert raw["facets"]["dataSource"]["uri"] == ns
    assert [(f["name"], f["type"]) for f in raw["facets"]["schema"]["fields"]] == [
        ("id", "int64"),
        ("text", "string"),
        ("lang", "string"),
    ]
    assert start["inputs"] == complete["inputs"]
    [tickets] = complete["outputs"]
    assert (tickets["namespace"], tickets["name"]) == (ns, "tickets")
    assert tickets["facets"]["version"]["datasetVersion"] == "1"
    assert tickets["outputFacets"]["outputStatistics"]["rowCount"] == 2
    assert [f["name"] for f in tickets["facets"]["schema"]["fields"]] == ["id", "text"]
    fields = tickets["facets"]["columnLineage"]["fields"]
    assert fields["id"]["inputFields"] == [
        {"namespace": ns, "name": "raw", "field": "id", "transformations": []}
    ]
    assert [(f["name"], f["field"]) for f in fields["text"]["inputFields"]] == [
        ("raw", "text"),
        ("raw", "lang"),
    ]
    params = {
        p["key"]: p["value"] for p in complete["run"]["facets"]["executionParameters"]["parameters"]
    }
    assert params == {
        "lower": "true",
        "n": "3",
        "curata.run_id": ids["clean"],
        "curata.executor": "local",
        "curata.code_version": "fp-1",
    }
    engine = complete["run"]["facets"]["processing_engine"]
    assert (engine["name"], engine["version"]) == ("curata", curata.__version__)
    assert complete["job"]["facets"]["jobType"]["processingType"] == "BATCH"


def test_since_sends_only_later_events(sqlite_lake: curata.Lake, tmp_path: Path) -> None:
    early = _run(sqlite_lake, "early", [], {})
    rid = sqlite_lake.start_run("spans", params={}, code_version=None, executor=None, inputs=[])
    time.sleep(0.01)
    middle = datetime.now(UTC)
    time.sleep(0.01)
    sqlite_lake.finish_run(rid, status="succeeded", metrics={}, outputs=[])
    out = tmp_path / "since.jsonl"
    summary = export_openlineage(sqlite_lake, str(out), since=middle)
    events = read_events(out)
    # The run that started before `since` and ended after it sends only its end.
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [("spans", "COMPLETE")]
    assert (summary.runs, summary.events) == (1, 1)
    assert not by_type(events, early)
    # A naive time is UTC; the file is appended to, not replaced.
    export_openlineage(sqlite_lake, str(out), since=middle.replace(tzinfo=None))
    assert len(read_events(out)) == 2


def test_non_uuid_run_ids_get_a_stable_uuid(sqlite_lake: curata.Lake, tmp_path: Path) -> None:
    _run(sqlite_lake, "named", [], {}, run_id="nightly-2025-06-01")
    out = tmp_path / "e.jsonl"
    export_openlineage(sqlite_lake, str(out))
    ids = {e["run"]["runId"] for e in read_events(out)}
    assert ids == {run_uuid("nightly-2025-06-01")}
    assert run_uuid("nightly-2025-06-01") == run_uuid("nightly-2025-06-01")
    assert run_uuid("nightly-2025-06-01") != run_uuid("nightly-2025-06-02")


def test_outside_sources_are_named_by_their_uri(sqlite_lake: curata.Lake, tmp_path: Path) -> None:
    _run(sqlite_lake, "import", ["file:///data/raw.csv", "s3://bucket/logs/a.jsonl"], {})
    out = tmp_path / "e.jsonl"
    export_openlineage(sqlite_lake, str(out))
    inputs = read_events(out)[0]["inputs"]
    assert [(i["namespace"], i["name"]) for i in inputs] == [
        ("file", "/data/raw.csv"),
        ("s3://bucket", "logs/a.jsonl"),
    ]


# -- HTTP --------------------------------------------------------------------------------------


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, Any]]]
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Collector]]]:
    """A lineage endpoint on loopback that keeps what it receives."""
    handler = type("Collector", (_Collector,), {"received": [], "status": 200})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def test_http_posts_every_event_to_the_marquez_endpoint(
    lake: curata.Lake, server: tuple[str, type[_Collector]]
) -> None:
    url, handler = server
    ids = scenario(lake)
    summary = export_openlineage(lake, url)
    assert summary.events == len(handler.received) == 5
    assert {(path, ctype) for path, ctype, _ in handler.received} == {
        ("/api/v1/lineage", "application/json")
    }
    events = [body for _, _, body in handler.received]
    complete = by_type(events, ids["clean"])["COMPLETE"]
    assert [(o["namespace"], o["name"]) for o in complete["outputs"]] == [
        (lake_namespace(lake.uri), "tickets")
    ]
    assert {"schema", "dataSource", "version", "columnLineage"} <= set(
        complete["outputs"][0]["facets"]
    )
    assert "outputStatistics" in complete["outputs"][0]["outputFacets"]
    assert [(i["namespace"], i["name"]) for i in complete["inputs"]] == [
        (lake_namespace(lake.uri), "raw")
    ]
    assert by_type(events, ids["gate"])["FAIL"]["eventType"] == "FAIL"


def test_http_url_with_a_path_posts_there(
    sqlite_lake: curata.Lake, server: tuple[str, type[_Collector]]
) -> None:
    url, handler = server
    _run(sqlite_lake, "one", [], {})
    export_openlineage(sqlite_lake, f"{url}/openapi/lineage?tenant=a")
    assert {path for path, _, _ in handler.received} == {"/openapi/lineage?tenant=a"}


def test_http_errors_say_how_far_the_export_got(
    sqlite_lake: curata.Lake, server: tuple[str, type[_Collector]]
) -> None:
    url, handler = server
    handler.status = 400
    _run(sqlite_lake, "one", [], {})
    with pytest.raises(curata.CurataError, match="failed after 0 of 2 events") as err:
        export_openlineage(sqlite_lake, url)
    assert "400" in str(err.value)
    assert len(handler.received) == 1


# -- console, targets, dependency -----------------------------------------------------------------


def test_dash_prints_one_event_per_line(
    sqlite_lake: curata.Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    rid = _run(sqlite_lake, "one", [], {})
    capsys.readouterr()
    export_openlineage(sqlite_lake, "-")
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["eventType"] for line in lines] == ["START", "COMPLETE"]
    assert json.loads(lines[0])["run"]["runId"] == run_uuid(rid)


def test_bad_targets_are_refused(sqlite_lake: curata.Lake, tmp_path: Path) -> None:
    with pytest.raises(curata.InvalidInput, match="does not exist"):
        export_openlineage(sqlite_lake, str(tmp_path / "no" / "such" / "e.jsonl"))
    with pytest.raises(curata.InvalidInput, match="is a folder"):
        export_openlineage(sqlite_lake, str(tmp_path))
    with pytest.raises(curata.InvalidInput, match="file path, an http"):
        export_openlineage(sqlite_lake, "kafka://broker/topic")
    out = tmp_path / "uri.jsonl"
    _run(sqlite_lake, "one", [], {})
    assert export_openlineage(sqlite_lake, out.as_uri()).events == 2
    assert len(read_events(out)) == 2


def test_missing_client_names_the_extra(
    sqlite_lake: curata.Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openlineage.client.event_v2", None)
    with pytest.raises(curata.MissingDependency, match="openlineage-python") as err:
        export_openlineage(sqlite_lake, str(tmp_path / "e.jsonl"))
    assert 'pip install "curata[lineage]"' in str(err.value)
    assert err.value.exit_code == 2
