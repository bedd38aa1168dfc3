"""Pipeline steps ``dedup.exact``, ``dedup.near`` and ``dedup.semantic``.

They need the whole input at once (a duplicate may be anywhere in it), so they are not
row-wise: the executor hands them the full table and reruns them on every run.

```yaml
steps:
  - step: dedup.near
    params: {column: body, threshold: 0.85, keep: longest, cluster_column: dup_cluster}
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from curata.errors import InvalidInput
from curata.pipeline.step import Step, register_step
from curata.quality.dedup.find import find_duplicates

if TYPE_CHECKING:
    import pyarrow as pa


class DedupParams(BaseModel):
    """Parameters of the dedup steps."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="the text column compared")
    threshold: float | None = Field(
        None, description="similarity a pair needs (near: Jaccard 0.8, semantic: cosine 0.95)"
    )
    keep: Literal["first", "longest"] = Field(
        "first", description="first (lowest `key`, else first row) or longest text"
    )
    key: str | None = Field(None, description="column whose lowest value `first` keeps")
    cluster_column: str | None = Field(
        None, description="add this column: the cluster id of kept duplicates, null otherwise"
    )


class SemanticParams(DedupParams):
    """Parameters of ``dedup.semantic``."""

    embedder: str = Field("minilm", description="embedder spec (minilm, hash:DIM, openai:...)")


class _DedupStep(Step[Any]):
    method: ClassVar[str] = "exact"
    row_wise = False
    Params: ClassVar[type[BaseModel]] = DedupParams

    def process(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        import pyarrow as pa

        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        p = self.params
        for col in (p.column, p.key):
            if col is not None and col not in table.column_names:
                raise InvalidInput(
                    f"Step {self.id!r}: no column {col!r}.",
                    hint=f"The columns are: {', '.join(table.column_names)}.",
                )
        result = find_duplicates(
            table.column(p.column),
            self.method,
            p.threshold,
            p.keep,
            keys=None if p.key is None else table.column(p.key),
            embedder=p.embedder if isinstance(p, SemanticParams) else "minilm",
        )
        out = table
        if p.cluster_column:
            cluster: list[int | None] = [None] * table.num_rows
            for i, members in enumerate(result.clusters):
                for m in members:
                    cluster[m] = i
            out = out.append_column(p.cluster_column, pa.array(cluster, pa.int64()))
        return out.filter(pa.array(result.keep_mask(table.num_rows)))

    def column_lineage(self, input_columns: list[str]) -> dict[str, list[str]] | None:
        lineage = {c: [c] for c in input_columns}
        if self.params.cluster_column:
            lineage[self.params.cluster_column] = [self.params.column]
        return lineage


@register_step
class ExactDedupStep(_DedupStep):
    """Drop rows whose text equals another's after NFKC, case folding and whitespace
    collapsing."""

    name = "dedup.exact"
    method = "exact"


@register_step
class NearDedupStep(_DedupStep):
    """Drop near-duplicate rows (MinHash LSH over word 5-grams, verified by exact Jaccard)."""

    name = "dedup.near"
    method = "near"


@register_step
class SemanticDedupStep(_DedupStep):
    """Drop rows whose embeddings are within a cosine threshold of another row's."""

    name = "dedup.semantic"
    method = "semantic"
    Params = SemanticParams
