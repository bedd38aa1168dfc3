"""A crash at any moment leaves the last published version intact, and concurrent writers
lose nothing: real writer processes, killed with SIGKILL, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.util
import itertools
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lance
import pytest

import curata

WRITER_SCRIPT = Path(__file__).parent.parent / "cases" / "lake_writer.py"
KILL_TRIALS = 20


def _load_writer_module() -> Any:
    spec = importlib.util.spec_from_file_location("lake_writer", WRITER_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


writer = _load_writer_module()
_fork_spec = importlib.util.spec_from_file_location(
    "fork_client", WRITER_SCRIPT.parent / "fork_client.py"
)
assert _fork_spec is not None and _fork_spec.loader is not None
_fork_client = importlib.util.module_from_spec(_fork_spec)
_fork_spec.loader.exec_module(_fork_client)
ForkServerClient = _fork_client.ForkServerClient


class WriterServer(ForkServerClient):
    """The fork server of tests/cases/lake_writer.py: starts writer processes in milliseconds."""

    def __init__(self) -> None:
        super().__init__(WRITER_SCRIPT, author="writer-process")


@pytest.fixture(scope="module")
def writer_server() -> Iterator[WriterServer]:
    server = WriterServer()
    yield server
    server.close()


def _by_id(table: Any) -> dict[int, dict[str, Any]]:
    return {row["id"]: row for row in table.to_pylist()}


def _check_published_then_write_next(lake_path: str, rng: random.Random) -> tuple[int, bool]:
    """After a kill: the lake opens, every published version reads back exactly as the script
    wrote it, and the next step publishes exactly its rows (no orphan rows leak into it).

    Returns the head version found and whether Lance held versions nobody published.
    """
    with curata.open(lake_path) as lake:
        ds = lake.dataset(writer.DATASET)
        log = ds.log()
        head = log[0].version if log else 0
        assert [c.version for c in log] == list(range(head, 0, -1))
        expected = writer.expected_rows(head)
        lance_path = Path(lake_path) / "data" / f"{writer.DATASET}.lance"
        latest_lance = lance.dataset(str(lance_path)).version if lance_path.exists() else None
        orphan = latest_lance is not None and (head == 0 or latest_lance > log[0].lance_version)
        if head:
            snap = ds.head
            assert snap.commit.rows == len(expected) == snap.count_rows()
            assert _by_id(snap.to_arrow()) == expected
            older = rng.randint(1, head)
            assert _by_id(ds.at(older).to_arrow()) == writer.expected_rows(older)

        commit = writer.write_step(lake, head + 1, expected)
        after = writer.apply_step(head + 1, expected)
        assert commit.version == head + 1
        assert commit.rows == len(after)
        assert _by_id(ds.head.to_arrow()) == after
    return head, orphan


def _wait_for_head_past(lake: curata.Lake, version: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (lake.dataset(writer.DATASET).info().version or 0) <= version:
        assert time.monotonic() < deadline, f"the writer did not publish past @{version}"
        time.sleep(0.01)


def test_kill_9_at_random_moments_never_loses_the_published_version(
    writer_server: WriterServer, lake: curata.Lake, tmp_path: Path
) -> None:
    lake.create_dataset(writer.DATASET, key=writer.KEY)
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    log_file = tmp_path / "writer.log"
    heads: list[int] = []
    orphans = 0
    for trial in range(KILL_TRIALS):
        before = lake.dataset(writer.DATASET).info().version or 0
        pid = writer_server.ask(cmd="steps", lake=lake.uri, log=str(log_file))["pid"]
        if trial % 2:
            # Every other kill comes once the writer has published (however loaded the
            # machine), at a random moment of what it does next.
            _wait_for_head_past(lake, before)
            time.sleep(rng.uniform(0.0, 0.3))
        else:
            time.sleep(rng.uniform(0.05, 0.6))
        os.kill(pid, signal.SIGKILL)
        status = writer_server.ask(cmd="wait", pid=pid)["status"]
        context = f"trial {trial}, seed {seed}, writer log:\n{log_file.read_text()[-3000:]}"
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, context
        try:
            head, orphan = _check_published_then_write_next(lake.uri, rng)
        except AssertionError as err:
            raise AssertionError(f"{err}\n{context}") from err
        heads.append(head)
        orphans += orphan

    # The kills interrupted real work: in many trials the writer had published versions (the
    # head moved past the version the previous check wrote). Its commits carry its author.
    progressed = sum(head > before + 1 for before, head in itertools.pairwise([-1, *heads]))
    assert progressed >= KILL_TRIALS // 4, heads
    authors = {c.author for c in lake.dataset(writer.DATASET).log()}
    assert authors == {"writer-process", "test-author"}
    print(f"seed {seed}: heads {heads}, {orphans} trial(s) left unpublished Lance versions")


def test_two_processes_appending_at_once_lose_no_row(
    writer_server: WriterServer, lake: curata.Lake, tmp_path: Path
) -> None:
    lake.create_dataset("shared", key="id")
    ranges = [(0, 50), (50, 100)]
    pids = [
        writer_server.ask(
            cmd="appends",
            lake=lake.uri,
            log=str(tmp_path / f"appender{n}.log"),
            dataset="shared",
            ids=list(ids),
        )["pid"]
        for n, ids in enumerate(ranges)
    ]
    statuses = [writer_server.ask(cmd="wait", pid=pid)["status"] for pid in pids]
    logs = "\n".join(p.read_text() for p in sorted(tmp_path.glob("appender*.log")))
    assert statuses == [0, 0], logs

    ds = lake.dataset("shared")
    table = ds.head.to_arrow()
    assert sorted(table.column("id").to_pylist()) == list(range(100))
    for row in table.to_pylist():
        assert row["writer_pid"] == pids[0 if row["id"] < 50 else 1]
    log = ds.log()
    assert [c.version for c in log] == list(range(100, 0, -1))
    assert [c.rows for c in log] == list(range(100, 0, -1))
    assert all(c.changes["rows_added"] == 1 for c in log)
    # Each version holds one row more than its parent.
    for version in (2, 50, 99):
        assert ds.at(version).count_rows() == version
    # The two writers really ran at the same time: their versions interleave.
    writers_in_order = [int(c.message.split()[1]) < 50 for c in reversed(log)]
    switches = sum(a != b for a, b in itertools.pairwise(writers_in_order))
    assert switches >= 2, writers_in_order
