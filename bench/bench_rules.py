"""Quality rules: 10 DQDL rules over a 10M-row dataset, against one DuckDB query per rule.

A lake gets a dataset of 10,000,000 generated rows (ten appends of 1M): ``id`` (int64,
unique), ``text`` (12 words, 0.1% NULL), ``lang`` (five codes, 0.05% ``xx``), ``score``
(uniform in [0, 1)) and ``created_at`` (a timestamp in the two years before the check's
``now``). Then, alternating, 3 times each (median):

* curata: ``check_dataset(lake, "events", RULES)``, the whole command as ``curata check``
  runs it: the rules evaluated over the version's Lance files in place (the aggregate rules
  in one query, IsUnique in a GROUPING SETS query), and the outcomes stored as a report
  version by a recorded run. Target: under 10 s.
* baseline: the same 10 checks written as 10 DuckDB queries, one per rule, over the same
  Lance dataset (what a hand-written script or a rule-per-query tool does). For information:
  the ratio of the rules alone (``store=False``) to it, the cost or saving of curata's one
  shared aggregate query. Both read only the columns they need.

Wall time is the target; CPU seconds (all threads of the process) are printed too, with the
load average, because on a shared machine wall time swings with the other work.

The rules are the typical ones of a text dataset (no Python-side rules: PiiCount and
Language run at 10^4-10^5 rows/s per core and are measured by ``bench_pii.py``).

Run it from the repository root::

    python bench/bench_rules.py            # full size (a few minutes, mostly writing)
    python bench/bench_rules.py --quick    # 200k rows: checks the script runs
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import datetime, timedelta

os.environ.setdefault("LANCE_LOG", "error")

import harness
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import curata
from curata.quality.checks import check_dataset
from curata.quality.rules import parse_rules

TARGET_SECONDS = 10.0
REPEATS = 3
CHUNK_ROWS = 1_000_000
NOW = datetime(2026, 11, 25)
LANGS = pa.array(["en", "de", "fr", "es", "it"])

RULES = """Rules = [
    RowCount > 0,
    IsComplete "id",
    IsUnique "id",
    Completeness "text" > 0.99,
    ColumnValues "lang" in ["en", "de", "fr", "es", "it"] with threshold > 0.99,
    ColumnValues "score" between 0 and 1,
    ColumnLength "text" between 1 and 500 with threshold > 0.99,
    Mean "score" between 0.45 and 0.55,
    DistinctValuesCount "lang" <= 10,
    DataFreshness "created_at" <= 365 days with threshold > 0.4
]"""

# The same checks, one query each (the table is registered as "events").
_SINCE = (NOW - timedelta(days=365)).isoformat(sep=" ")
BASELINE = (
    "SELECT count(*) FROM events",
    "SELECT count(*) - count(id) FROM events",
    "SELECT count(*) FROM (SELECT id FROM events GROUP BY id HAVING count(*) > 1)",
    "SELECT count(text) / count(*) FROM events",
    "SELECT count(*) FILTER (WHERE lang IN ('en', 'de', 'fr', 'es', 'it')) / count(*) FROM events",
    "SELECT count(*) FILTER (WHERE score BETWEEN 0 AND 1) FROM events",
    "SELECT count(*) FILTER (WHERE length(coalesce(text, '')) BETWEEN 1 AND 500) / count(*) "
    "FROM events",
    "SELECT avg(score) FROM events",
    "SELECT count(DISTINCT lang) FROM events",
    f"SELECT count(*) FILTER (WHERE created_at >= TIMESTAMP '{_SINCE}') / count(*) FROM events",
)


def make_events(rng: np.random.Generator, first_id: int, n: int) -> pa.Table:
    """``n`` rows with ids ``first_id ..``: id, text, lang, score, created_at."""
    base = harness.make_rows(rng, first_id, n)
    text = base.column("text").combine_chunks()
    text_nulls = rng.random(n) < 0.001
    lang = LANGS.take(rng.integers(0, len(LANGS), n)).to_numpy(zero_copy_only=False)
    lang[rng.random(n) < 0.0005] = "xx"
    seconds_back = rng.integers(0, 2 * 365 * 86400, n)
    created = np.datetime64(NOW, "s") - seconds_back.astype("timedelta64[s]")
    return pa.table(
        {
            "id": base.column("id"),
            "text": pc.if_else(pa.array(text_nulls), pa.scalar(None, pa.string()), text),
            "lang": pa.array(lang, pa.string()),
            "score": base.column("score"),
            "created_at": pa.array(created, pa.timestamp("s")),
        }
    )


def main() -> None:
    args = harness.parse_args(__doc__)
    rng = harness.start("10 DQDL rules: curata check_dataset vs one DuckDB query per rule", args)
    rows = 200_000 if args.quick else 10_000_000
    chunk = min(rows, CHUNK_ROWS)
    print(f"# {rows:,} rows; {len(parse_rules(RULES))} rules; {REPEATS} timed runs each")

    import duckdb

    with harness.scratch_dir() as root, curata.init(str(root / "project")) as lake:
        ds = lake.create_dataset("events", kind="records")
        for first in range(0, rows, chunk):
            ds.append(make_events(rng, first, chunk), author="bench", message="generated")
        size = harness.folder_bytes(root / "project")
        print(f"# dataset: {harness.format_bytes(size)} on disk")
        snapshot = lake.ref("events")

        def curata_check(store: bool = True) -> None:
            result = check_dataset(lake, "events", RULES, now=NOW, store=store)
            last_outcomes.clear()
            last_outcomes.extend(o.status for o in result.rules.outcomes)

        def baseline() -> None:
            con = duckdb.connect()
            con.register("events", snapshot.lance_dataset())
            for sql in BASELINE:
                con.execute(sql).fetchall()
            con.close()

        last_outcomes: list[str] = []
        runs = {
            "curata": curata_check,
            "unstored": lambda: curata_check(store=False),
            "baseline": baseline,
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for round_ in range(REPEATS):
            names = list(runs)
            for name in names[round_:] + names[:round_]:
                began = time.process_time()
                times[name].append(harness.seconds(runs[name]))
                cpu[name].append(time.process_time() - began)
        with harness.profiled("check_dataset", args.profile):
            curata_check()

    print(f"# outcomes: {', '.join(last_outcomes)}")
    median = {name: statistics.median(ts) for name, ts in times.items()}
    cpu_median = {name: statistics.median(ts) for name, ts in cpu.items()}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"# load average after the runs: {load} (CPU seconds: all threads of this process)")
    detail = ", ".join(harness.format_seconds(t) for t in times["curata"])
    harness.print_report(
        [
            harness.Check(
                f"check_dataset, 10 rules over {rows:,} rows",
                median["curata"],
                "s",
                TARGET_SECONDS,
                f"{rows / median['curata']:,.0f} rows/s, CPU {cpu_median['curata']:.2f} s "
                f"(runs: {detail})",
            ),
            harness.Check(
                "check_dataset, store=False (the rules alone)",
                median["unstored"],
                "s",
                None,
                f"{rows / median['unstored']:,.0f} rows/s, CPU {cpu_median['unstored']:.2f} s",
            ),
            harness.Check(
                "one DuckDB query per rule",
                median["baseline"],
                "s",
                None,
                f"{rows / median['baseline']:,.0f} rows/s, CPU {cpu_median['baseline']:.2f} s",
            ),
            harness.Check(
                "curata (store=False) / one query per rule",
                median["unstored"] / median["baseline"],
                "x",
                None,
                "below 1: the shared scan is faster",
            ),
        ]
    )


if __name__ == "__main__":
    main()
