"""The lake: versioned datasets, the catalog that publishes them, change logs and lineage.

Only this package opens Lance datasets or catalog connections; every other layer asks it.
"""

from curata.lake.changes import ChangeLog, RowDiff
from curata.lake.dataset import Dataset
from curata.lake.lake import Lake, init_lake, open_lake
from curata.lake.models import KINDS, Commit, DatasetInfo
from curata.lake.publish import Publication
from curata.lake.refs import Ref, parse_ref
from curata.lake.snapshot import Snapshot

__all__ = [
    "KINDS",
    "ChangeLog",
    "Commit",
    "Dataset",
    "DatasetInfo",
    "Lake",
    "Publication",
    "Ref",
    "RowDiff",
    "Snapshot",
    "init_lake",
    "open_lake",
    "parse_ref",
]
