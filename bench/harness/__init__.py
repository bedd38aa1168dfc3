"""What every benchmark script shares: sizes, seeded data, scratch folders, timing, the report.

The scripts in ``bench/`` import this package by name (Python puts the script's folder first
on ``sys.path``); it lives in a folder so that ``make bench``, which runs ``bench/*.py``, does
not run it as a benchmark.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SEED = 20261124
LIBRARIES = ("curata", "pylance", "pyarrow", "duckdb", "sqlalchemy", "numpy")
# Settings a developer may have exported; a benchmark must not depend on them.
CURATA_ENV = ("CURATA_LAKE", "CURATA_CATALOG_URL", "CURATA_AUTHOR")

# Words that ticket texts are drawn from, so that texts vary like real ones and compress alike.
_VOCABULARY = (
    "refund invoice login password shipping delay broken screen battery account upgrade "
    "cancel order missing parcel charge twice discount coupon warranty replace firmware "
    "crash slow sync export import report error timeout token billing address"
)
_WORDS = pa.array(_VOCABULARY.split())
_LABELS = pa.array(["billing", "shipping", "account", "hardware", "software", "other"])
_WORDS_PER_TEXT = 12


def parse_args(doc: str | None) -> argparse.Namespace:
    """The options every script takes: ``--quick``, ``--seed`` and ``--profile``."""
    parser = argparse.ArgumentParser(
        description=(doc or "").strip().splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: checks the script runs, in seconds"
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print a cProfile of the curata calls measured (run apart from the timings)",
    )
    return parser.parse_args()


def start(title: str, args: argparse.Namespace) -> np.random.Generator:
    """Clear curata's environment variables, print the header and return the seeded RNG."""
    for name in CURATA_ENV:
        os.environ.pop(name, None)
    print(f"# {title}{'  (--quick: small sizes, not a measurement)' if args.quick else ''}")
    print(f"# {describe_machine()}")
    print(f"# {describe_libraries()}")
    return np.random.default_rng(args.seed)


def describe_machine() -> str:
    """CPU count, memory, OS and Python, on one line."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages * page_size / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        memory = "RAM unknown"
    return (
        f"{os.cpu_count()} CPUs, {memory}, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}"
    )


def describe_libraries() -> str:
    """Versions of curata and the libraries it is measured against."""
    return ", ".join(f"{name} {version(name)}" for name in LIBRARIES)


def make_rows(rng: np.random.Generator, first_id: int, n: int) -> pa.Table:
    """``n`` support-ticket-like rows with ids ``first_id ..``: id, text, label, score."""
    texts = [_WORDS.take(rng.integers(0, len(_WORDS), n)) for _ in range(_WORDS_PER_TEXT)]
    return pa.table(
        {
            "id": pa.array(np.arange(first_id, first_id + n, dtype=np.int64)),
            "text": pc.binary_join_element_wise(*texts, " "),
            "label": _LABELS.take(rng.integers(0, len(_LABELS), n)),
            "score": pa.array(rng.random(n)),
        }
    )


def make_updates(rng: np.random.Generator, n_rows: int, n_updates: int) -> pa.Table:
    """New ``score`` and ``label`` for ``n_updates`` distinct random ids below ``n_rows``."""
    ids = np.sort(rng.choice(n_rows, n_updates, replace=False)).astype(np.int64)
    return pa.table(
        {
            "id": pa.array(ids),
            "label": _LABELS.take(rng.integers(0, len(_LABELS), n_updates)),
            # Shifted out of [0, 1) so every row really changes.
            "score": pa.array(rng.random(n_updates) + 1.0),
        }
    )


@contextmanager
def profiled(label: str, enabled: bool, top: int = 40) -> Iterator[None]:
    """With ``enabled``, print the ``top`` functions by cumulative time spent in the block."""
    if not enabled:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        print(f"\n# profile: {label}, top {top} by cumulative time")
        pstats.Stats(profiler).strip_dirs().sort_stats("cumulative").print_stats(top)


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="curata-bench-") as path:
        yield Path(path)


def folder_bytes(path: str | Path) -> int:
    """Bytes of all files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def seconds(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of ``repeats`` calls of ``fn``."""
    return statistics.median(seconds(fn) for _ in range(repeats))


def format_seconds(s: float) -> str:
    """``0.0123`` -> ``12.3 ms``; ``1.5`` -> ``1.50 s``."""
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def format_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} GiB"


@dataclass(frozen=True)
class Check:
    """One line of a report: a measured value, and the bound it must stay under, if any.

    ``unit`` is ``"x"`` (a ratio, passing at or under ``target``), ``"%"`` (a fraction shown as
    a percentage, passing at or under ``target``), ``"s"`` (seconds, passing under ``target``)
    or ``"B"`` (bytes, passing under ``target``). Without ``target`` the line is for
    information; without ``value`` it could not be measured (``SKIP``).
    """

    name: str
    value: float | None
    unit: str
    target: float | None = None
    detail: str = ""

    @property
    def status(self) -> str:
        """PASS or FAIL against the target; info without one; SKIP without a value."""
        if self.value is None:
            return "SKIP"
        if self.target is None:
            return "info"
        at_most = self.unit in ("x", "%")
        met = self.value <= self.target if at_most else self.value < self.target
        return "PASS" if met else "FAIL"

    @property
    def bound(self) -> str:
        """The target as shown: ``<= 1.50x``, ``< 1.00 s`` or ``-``."""
        if self.target is None:
            return "-"
        return ("<= " if self.unit in ("x", "%") else "< ") + self.shown(self.target)

    def shown(self, amount: float | None) -> str:
        """``amount`` in this check's unit."""
        if amount is None:
            return "-"
        if self.unit == "x":
            return f"{amount:.2f}x"
        if self.unit == "%":
            return f"{amount * 100:.2f}%"
        return format_bytes(amount) if self.unit == "B" else format_seconds(amount)


def print_report(checks: list[Check]) -> None:
    """The checks as an aligned table: check, measured, target, status, detail."""
    header = ("check", "measured", "target", "result", "detail")
    rows = [(c.name, c.shown(c.value), c.bound, c.status, c.detail) for c in checks]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    print()
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        print(("  ".join(cells) + "  " + row[-1]).rstrip())
    failed = [c.name for c in checks if c.status == "FAIL"]
    skipped = [c.name for c in checks if c.status == "SKIP"]
    print(f"\n{len(failed)} target(s) missed" + (f": {'; '.join(failed)}" if failed else ""))
    if skipped:
        print(f"{len(skipped)} not measured: {'; '.join(skipped)}")
