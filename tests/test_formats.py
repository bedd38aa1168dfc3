"""Tabular import and export: real files in a temporary folder, read back with real readers."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import curata
from curata.errors import InvalidInput, MissingDependency, NotFound
from curata.formats import EXPORT_FORMATS, FORMATS, detect_format, read_table, write_table

TICKETS = pa.table(
    {
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "text": ["plain", "with, comma", 'a "quoted" word\nand a second line', None],
        "score": [0.5, None, -1.25, 3.0],
        "ok": [True, False, None, True],
        "note": ["", "é ünïcode ✓", None, "x"],
    }
)


def _write_source(path: Path, table: pa.Table) -> None:
    """A source file as a user would have it, written by a tool other than curata."""
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    elif path.suffix == ".csv":
        path.write_text(
            "id,text,score,ok,note\n"
            '1,plain,0.5,true,""\n'
            '2,"with, comma",,false,é ünïcode ✓\n'
            '3,"a ""quoted"" word\nand a second line",-1.25,,\n'
            "4,,3.0,true,x\n",
            encoding="utf-8",
        )
    else:
        with path.open("w", encoding="utf-8") as out:
            for row in table.to_pylist():
                out.write(json.dumps(row, ensure_ascii=False) + "\n")


# -- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.parquet", "parquet"),
        ("a.PQ", "parquet"),
        ("a.csv", "csv"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.json", "jsonl"),
    ],
)
def test_detect_format_from_extension(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_unknown_extension_asks_for_format(tmp_path: Path) -> None:
    path = tmp_path / "tickets.xlsx"
    path.write_text("x")
    with pytest.raises(InvalidInput) as err:
        read_table(path)
    assert "tickets.xlsx" in str(err.value)
    assert "--format" in str(err.value)
    assert all(fmt in str(err.value) for fmt in FORMATS)


def test_explicit_format_overrides_extension(tmp_path: Path) -> None:
    path = tmp_path / "tickets.txt"
    path.write_text('{"a": 1}\n{"a": 2}\n')
    assert read_table(path, format="jsonl").column("a").to_pylist() == [1, 2]
    with pytest.raises(InvalidInput, match="Unknown format 'xml'"):
        read_table(path, format="xml")


def test_import_does_not_load_pyarrow() -> None:
    code = "import sys, curata.formats; print('pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- round trips through a lake ---------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_import_export_round_trip(sqlite_lake: curata.Lake, tmp_path: Path, suffix: str) -> None:
    source = tmp_path / f"source{suffix}"
    _write_source(source, TICKETS)
    imported = read_table(source)
    assert imported.to_pylist() == TICKETS.to_pylist()

    ds = sqlite_lake.create_dataset("tickets", key="id")
    ds.append(imported, message="import")
    exported = tmp_path / "out" / f"tickets{suffix}"
    assert ds.export(exported) == 4

    again = read_table(exported)
    assert again.to_pylist() == imported.to_pylist()
    assert again.schema.names == imported.schema.names


def test_parquet_round_trip_keeps_types(tmp_path: Path) -> None:
    table = pa.table(
        {
            "at": pa.array([dt.datetime(2024, 5, 1, 9, 30, 0, 123456)], pa.timestamp("us", "UTC")),
            "blob": pa.array([b"\x00\xff"], pa.binary()),
            "tags": pa.array([["a", "b"]], pa.list_(pa.string())),
            "embedding": pa.array([[0.1, 0.2]], pa.list_(pa.float32(), 2)),
        }
    )
    path = tmp_path / "typed.parquet"
    assert write_table(table, path) == 1
    assert read_table(path).equals(table)


def test_jsonl_export_writes_plain_json(tmp_path: Path) -> None:
    table = pa.table(
        {
            "at": pa.array([dt.datetime(2024, 5, 1, 9, 30, 0, 123456)], pa.timestamp("us")),
            "day": pa.array([dt.date(2024, 5, 1)], pa.date32()),
            "blob": pa.array([b"\x00\xff"], pa.binary()),
            "nan": [float("nan")],
            "meta": [{"k": [1, 2]}],
        }
    )
    path = tmp_path / "rows.jsonl"
    write_table(table, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {
        "at": "2024-05-01T09:30:00.123456",
        "day": "2024-05-01",
        "blob": base64.b64encode(b"\x00\xff").decode(),
        "nan": None,
        "meta": {"k": [1, 2]},
    }


def test_csv_export_base64_encodes_bytes(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    write_table(pa.table({"id": [1], "blob": pa.array([b"\x00\xff"])}), path)
    assert read_table(path).column("blob").to_pylist() == [base64.b64encode(b"\x00\xff").decode()]


def test_csv_export_refuses_nested_columns(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    with pytest.raises(InvalidInput, match=r"tags \(list<item: string>\)") as err:
        write_table(pa.table({"id": [1], "tags": [["a"]]}), path)
    assert "Parquet or JSON Lines" in str(err.value)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_export_of_no_batches_keeps_the_columns(tmp_path: Path, fmt: str) -> None:
    schema = pa.schema([("id", pa.int64()), ("text", pa.string())])
    path = tmp_path / f"empty.{fmt}"
    assert write_table(iter([]), path, schema=schema) == 0
    if fmt == "parquet":
        assert pq.read_schema(path).names == ["id", "text"]
    elif fmt == "csv":
        assert path.read_text() == '"id","text"\n'
    else:
        assert path.read_text() == ""


def test_long_rows_read_past_arrow_block_size(tmp_path: Path) -> None:
    long_text = "x" * 3_000_000
    csv_path, jsonl_path = tmp_path / "long.csv", tmp_path / "long.jsonl"
    csv_path.write_text(f'id,text\n1,short\n2,"{long_text}"\n')
    jsonl_path.write_text(json.dumps({"id": 1}) + "\n" + json.dumps({"id": 2, "t": long_text}))
    assert read_table(csv_path).column("text").to_pylist() == ["short", long_text]
    assert read_table(jsonl_path).num_rows == 2


# -- hugging face -----------------------------------------------------------------------------


def test_hf_export_loads_with_datasets(sqlite_lake: curata.Lake, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    ds = sqlite_lake.create_dataset("tickets", key="id")
    ds.append(TICKETS)
    folder = tmp_path / "hf" / "tickets"
    assert ds.export(folder, format="hf") == 4

    loaded = datasets.load_from_disk(str(folder))
    assert len(loaded) == 4
    assert sorted(loaded.to_list(), key=lambda r: r["id"]) == TICKETS.to_pylist()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_hf_export_replaces_only_a_dataset_folder(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "hf"
    write_table(pa.table({"a": [1, 2]}), folder, "hf")
    with pytest.raises(InvalidInput, match="exists"):
        write_table(pa.table({"a": [3]}), folder, "hf")
    assert write_table(pa.table({"a": [3]}), folder, "hf", overwrite=True) == 1
    assert datasets.load_from_disk(str(folder))["a"] == [3]

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="does not hold a Hugging Face dataset"):
        write_table(pa.table({"a": [3]}), notes, "hf", overwrite=True)
    assert (notes / "keep.txt").read_text() == "mine"


def test_hf_export_without_datasets_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # how Python marks a module absent
    with pytest.raises(MissingDependency) as err:
        write_table(pa.table({"a": [1]}), tmp_path / "hf", "hf")
    assert 'pip install "curata[hf]"' in str(err.value)
    assert "hf" in EXPORT_FORMATS


# -- exports from a lake ----------------------------------------------------------------------


def test_export_at_an_older_version(sqlite_lake: curata.Lake, tmp_path: Path) -> None:
    ds = sqlite_lake.create_dataset("tickets", key="id")
    ds.append(TICKETS.slice(0, 2))
    ds.append(TICKETS.slice(2, 2))
    old, new = tmp_path / "v1.parquet", tmp_path / "head.parquet"
    assert ds.export(old, ref=1) == 2
    assert ds.export(new) == 4
    assert sorted(read_table(old).column("id").to_pylist()) == [1, 2]
    assert sorted(read_table(new).column("id").to_pylist()) == [1, 2, 3, 4]


def test_export_refuses_to_overwrite(sqlite_lake: curata.Lake, tmp_path: Path) -> None:
    ds = sqlite_lake.create_dataset("tickets", key="id")
    ds.append(TICKETS)
    path = tmp_path / "tickets.csv"
    path.write_text("precious\n")
    with pytest.raises(InvalidInput) as err:
        ds.export(path)
    assert str(path) in str(err.value)
    assert "overwrite" in str(err.value)
    assert path.read_text() == "precious\n"

    assert ds.export(path, overwrite=True) == 4
    assert read_table(path).num_rows == 4
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["tickets.csv"]


def test_export_of_an_unknown_ref(sqlite_lake: curata.Lake, tmp_path: Path) -> None:
    ds = sqlite_lake.create_dataset("tickets", key="id")
    ds.append(TICKETS)
    with pytest.raises(NotFound):
        ds.export(tmp_path / "x.parquet", ref="no-such-tag")
    assert not (tmp_path / "x.parquet").exists()


# -- bad input --------------------------------------------------------------------------------


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    with pytest.raises(NotFound) as err:
        read_table(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.touch()
    with pytest.raises(InvalidInput, match="is empty"):
        read_table(path)


def test_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text("id,text\n1,a\n")
    with pytest.raises(InvalidInput, match="not a readable Parquet file"):
        read_table(path)


def test_csv_bad_rows_name_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text(
        "id,text,score\n"  # line 1
        '1,"spans\ntwo lines",0.5\n'  # lines 2-3: a row number would be off by one after it
        "2,short\n"  # line 4: too few
        "\n"  # line 5: empty, skipped
        "3,ok,1.0\n"  # line 6
        "4,a,b,c\n"  # line 7: too many
        '5,"x\n\ny",0.1\n'  # lines 8-10
        "6\n"  # line 11
    )
    with pytest.raises(InvalidInput) as err:
        read_table(path)
    assert err.value.message == (
        f"{path}: 3 rows do not parse (line 4: expected 3 fields, found 2; "
        "line 7: expected 3 fields, found 4; line 11: expected 3 fields, found 1)."
    )


def test_csv_lists_at_most_ten_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text("a,b\n" + "1\n" * 12)
    with pytest.raises(InvalidInput) as err:
        read_table(path)
    message = err.value.message
    assert message.startswith(f"{path}: 12 rows do not parse (line 2: expected 2 fields")
    assert "line 11:" in message and "line 12:" not in message
    assert message.endswith("; and 2 more).")


def test_csv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("id,name\n1,ok\n2,caf\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match=r"latin.csv is not UTF-8 text \(line 3\)"):
        read_table(path)


def test_csv_header_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("id,caf\xe9\n1,2\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match=r"not UTF-8 text \(line 1\)"):
        read_table(path)


def test_jsonl_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3,}\n{"a": 4}\n')
    with pytest.raises(InvalidInput, match=r"rows.jsonl: line 4 is not valid JSON"):
        read_table(path)


def test_jsonl_bad_line_beyond_the_first_block(tmp_path: Path) -> None:
    # Arrow numbers rows from the start of each 1 MiB block; the line must still be right.
    lines = [json.dumps({"a": i, "pad": "p" * 40}) for i in range(40_000)]
    lines.insert(30_000, '{"a": 1,,}')
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 2**20
    with pytest.raises(InvalidInput, match="line 30001 is not valid JSON"):
        read_table(path)


def test_jsonl_type_change_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": {"b": 1}}\n{"a": {"b": 2}}\n{"a": {"b": "two"}}\n')
    with pytest.raises(InvalidInput, match=r"line 3 gives field 'a\.b' a string"):
        read_table(path)


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text('[{"a": 1}, {"a": 2}]\n')
    with pytest.raises(InvalidInput, match="line 1 holds a JSON array, not an object"):
        read_table(path)


def test_jsonl_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes('{"a": "x"}\n{"a": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(InvalidInput, match="line 2 is not UTF-8"):
        read_table(path)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl", "hf"])
def test_failed_export_leaves_nothing_behind(tmp_path: Path, fmt: str) -> None:
    if fmt == "hf":
        pytest.importorskip("datasets")

    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch({"a": [1, 2]})
        raise InvalidInput("the source broke")

    with pytest.raises(InvalidInput, match="the source broke"):
        write_table(batches(), tmp_path / "out", fmt)
    assert list(tmp_path.iterdir()) == []
