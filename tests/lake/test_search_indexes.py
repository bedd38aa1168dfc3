"""Search indexes across many small writes: new rows land in index segments of their own,
searches find them, segments are merged before they pile up, and gc leaves one."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

import curata
from curata.lake.search import MAX_INDEX_SEGMENTS


def notes(ids: range) -> pa.Table:
    rng = np.random.default_rng(ids.start)
    vectors = rng.random((len(ids), 8), dtype=np.float32)
    return pa.table(
        {
            "id": pa.array(list(ids), pa.int64()),
            "text": [f"note {i} about topic{i}" for i in ids],
            "vec": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 8),
        }
    )


def segments(lake: curata.Lake, name: str) -> int:
    ds = lake.dataset(name).at().lance_dataset()
    [index] = [i for i in ds.describe_indices() if i.field_names == ["text"]]
    return len(index.segments)


def test_small_writes_add_segments_until_they_are_merged(lake: curata.Lake) -> None:
    lake.create_dataset("notes", key="id")
    with lake.publish(message="first") as pub:
        pub.append("notes", notes(range(0, 50)))
        pub.index_for_search("notes", text="text")
    seen = []
    for n in range(1, MAX_INDEX_SEGMENTS + 2):
        start = 50 + n
        with lake.publish(message=f"note {start}") as pub:
            pub.append("notes", notes(range(start, start + 1)))
            pub.index_for_search("notes", text="text")
        seen.append(segments(lake, "notes"))
        head = lake.dataset("notes").at()
        hits = head.search_text("text", f"topic{start}", k=3).column("id").to_pylist()
        assert hits[0] == start  # the newest row is found through its own segment
        assert head.lance_dataset().stats.index_stats("text_idx")["num_unindexed_rows"] == 0
    # One segment more per write, merged back into one when there would be too many.
    assert seen[: MAX_INDEX_SEGMENTS - 1] == list(range(2, MAX_INDEX_SEGMENTS + 1))
    assert max(seen) == MAX_INDEX_SEGMENTS and seen[MAX_INDEX_SEGMENTS - 1] == 1
    # Old versions keep the segments they were published with.
    assert lake.dataset("notes").at(2).search_text("text", "topic51", k=1)["id"][0].as_py() == 51


def test_gc_merges_the_segments_of_an_index_and_compacts_across_them(lake: curata.Lake) -> None:
    lake.create_dataset("notes")
    with lake.publish(message="first") as pub:
        pub.append("notes", notes(range(0, 50)))
        pub.index_for_search("notes", text="text")
    for start in (60, 70, 80):
        with lake.publish(message=f"more {start}") as pub:
            pub.append("notes", notes(range(start, start + 5)))
            pub.index_for_search("notes", text="text")
    assert segments(lake, "notes") == 4

    lake.gc()

    assert segments(lake, "notes") == 1
    head = lake.dataset("notes").at()
    assert head.count_rows() == 65
    assert len(head.lance_dataset().get_fragments()) == 1  # segments no longer split them
    assert head.search_text("text", "topic84", k=1)["id"][0].as_py() == 84
