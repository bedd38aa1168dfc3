"""The HTML report of a dedup run: key figures, cluster sizes, the largest clusters."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from curata.quality.html import Bars, Summary, Table, Text, write_html

if TYPE_CHECKING:
    from curata.quality.dedup.run import DedupReport

#: clusters listed in the table
LARGEST = 20


def write_dedup_html(report: DedupReport, path: str | Path) -> Path:
    """Write ``report`` as a self-contained HTML page; returns the path.

    Raises:
        InvalidInput: the file cannot be written.
    """
    sizes = Counter(len(c) for c in report.clusters)
    status = "DRY RUN" if report.dry_run else ("PASS" if not report.clusters else "WARN")
    blocks: list[Summary | Bars | Table | Text] = [
        Summary(
            [
                ("rows in", f"{report.rows_in:,}"),
                ("rows out", f"{report.rows_out:,}"),
                ("duplicates removed", f"{report.removed:,}"),
                ("clusters", f"{len(report.clusters):,}"),
                ("new version", report.version or "none"),
            ],
            status=status,
        ),
        Text(
            f"Method {report.method}, threshold {report.threshold:g}, keep {report.keep}; "
            f"read {report.input}."
            + (
                f" MinHash signatures: {report.signatures_computed:,} computed, "
                f"{report.signatures_reused:,} reused."
                if report.method == "near"
                else ""
            )
        ),
        Bars(
            "Clusters by size (rows per cluster)",
            [f"{size} rows" for size in sorted(sizes)],
            [float(sizes[size]) for size in sorted(sizes)],
        ),
    ]
    order = sorted(range(len(report.clusters)), key=lambda i: -len(report.clusters[i]))[:LARGEST]
    label = report.key or "row"
    rows = [
        [
            i,
            len(report.clusters[i]),
            str(report.canonical[i]),
            ", ".join(str(m) for m in report.clusters[i] if m != report.canonical[i])[:300],
            min(report.similarity[i]) if report.similarity[i] else None,
        ]
        for i in order
    ]
    blocks.append(
        Table(
            f"Largest clusters (at most {LARGEST})",
            ["cluster", "rows", f"kept ({label})", f"removed ({label})", "lowest similarity"],
            rows,
        )
    )
    return write_html(path, f"Dedup of {report.input}", blocks, subtitle=report.method)
