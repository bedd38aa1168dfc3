"""Append 1,000 rows to a 1,000,000-row dataset: curata against a raw Lance append.

Four datasets hold the same 1M rows: a plain Lance dataset, a keyless curata ``records``
dataset, a keyed one (``key="id"``) and a second keyless one. Each round appends the same
fresh 1,000 rows to each of them, in a rotating order, and times each append (20 rounds):

* Lance: ``lance.write_dataset(batch, uri, mode="append")``
* curata, keyless: ``ds.append(batch)``, as a user writes it
* curata, keyed: ``ds.append(batch)``; curata also checks that the appended keys are new,
  which means reading the key column of the dataset (work the Lance append does not do)
* curata, keyless with ``author="bench"``: the same append without the author lookup

One warm-up round is not timed. The report gives median times and the ratio of each curata
median to the Lance median; the target is 1.5x. With ``--profile``, 50 more appends to the
keyless and to the keyed dataset run under cProfile, after the timings, and the profiles are
printed.

Run it from the repository root::

    python bench/bench_append.py            # full size (about 10 s)
    python bench/bench_append.py --quick    # 20k rows, 3 rounds: checks the script works
    python bench/bench_append.py --profile  # and where the time of a curata append goes
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable

import harness
import lance
import pyarrow as pa

import curata

TARGET_RATIO = 1.5
WARMUP_ROUNDS = 1
PROFILED_APPENDS = 50


def main() -> None:
    args = harness.parse_args(__doc__)
    rng = harness.start("curata append vs Lance append", args)
    base_rows, batch_rows, rounds = (20_000, 1_000, 3) if args.quick else (1_000_000, 1_000, 20)
    print(f"# {base_rows:,} rows, then {rounds} timed rounds of {batch_rows:,}-row appends")

    with harness.scratch_dir() as root, curata.init(str(root / "project")) as lake:
        base = harness.make_rows(rng, 0, base_rows)
        lance_uri = str(root / "peer.lance")
        lance.write_dataset(base, lance_uri)
        keyless = lake.create_dataset("records", kind="records")
        keyed = lake.create_dataset("records_keyed", kind="records", key="id")
        named = lake.create_dataset("records_named", kind="records")
        for ds in (keyless, keyed, named):
            ds.append(base, author="bench", message="initial rows")

        appends: dict[str, Callable[[pa.Table], object]] = {
            "lance": lambda t: lance.write_dataset(t, lance_uri, mode="append"),
            "keyless": keyless.append,
            "keyed": keyed.append,
            "named": lambda t: named.append(t, author="bench"),
        }
        times: dict[str, list[float]] = {name: [] for name in appends}
        for round_ in range(WARMUP_ROUNDS + rounds):
            batch = harness.make_rows(rng, base_rows + round_ * batch_rows, batch_rows)
            names = list(appends)
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                took = harness.seconds(functools.partial(appends[name], batch))
                if round_ >= WARMUP_ROUNDS:
                    times[name].append(took)

        first_id = base_rows + (WARMUP_ROUNDS + rounds) * batch_rows
        batches = [
            harness.make_rows(rng, first_id + i * batch_rows, batch_rows)
            for i in range(PROFILED_APPENDS if args.profile else 0)
        ]
        for name in ("keyless", "keyed"):
            with harness.profiled(f"{len(batches)} appends, {name}", args.profile):
                for batch in batches:
                    appends[name](batch)

    median = {name: statistics.median(ts) for name, ts in times.items()}
    peer = median["lance"]

    def versus(name: str, label: str, target: float | None) -> harness.Check:
        detail = f"{harness.format_seconds(median[name])} vs {harness.format_seconds(peer)}"
        return harness.Check(label, median[name] / peer, "x", target, detail)

    harness.print_report(
        [
            versus("keyless", "append, keyless records: curata / lance", TARGET_RATIO),
            versus("keyed", "append, keyed records (+ key check): curata / lance", TARGET_RATIO),
            versus("named", "append, keyless, author given: curata / lance", None),
            harness.Check("lance append, median", peer, "s"),
        ]
    )


if __name__ == "__main__":
    main()
