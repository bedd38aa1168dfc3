"""Deduplication: exact, near (MinHash LSH) and semantic (embedding cosine).

Over a list of texts::

    from curata.quality.dedup import find_duplicates

    result = find_duplicates(texts, method="near", threshold=0.8, keep="longest")
    result.clusters     # [[0, 7, 9], ...] row positions
    result.canonical    # [7, ...] the row kept from each cluster
    result.duplicates   # the rows to drop

Over a dataset in the lake, publishing the deduplicated version, the clusters
(``NAME.dedup_clusters``) and the MinHash signatures (``NAME.minhash``) together::

    from curata.quality.dedup import dedup_dataset

    report = dedup_dataset(lake, "tickets", "body", "near")
    report.version      # 'tickets@4', or None when nothing was removed

See ``docs/quality.md`` (Deduplication) for the methods and what is stored.
"""

from curata.quality.dedup.find import METHODS, DedupResult, find_duplicates
from curata.quality.dedup.lsh import optimal_bands
from curata.quality.dedup.minhash import MinHashParams, signatures
from curata.quality.dedup.normalise import normalise_texts
from curata.quality.dedup.report import write_dedup_html
from curata.quality.dedup.run import (
    DedupReport,
    clusters_dataset,
    dedup_dataset,
    signatures_dataset,
)

__all__ = [
    "METHODS",
    "DedupReport",
    "DedupResult",
    "MinHashParams",
    "clusters_dataset",
    "dedup_dataset",
    "find_duplicates",
    "normalise_texts",
    "optimal_bands",
    "signatures",
    "signatures_dataset",
    "write_dedup_html",
]
