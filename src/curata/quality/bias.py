"""Bias checks: how often groups of terms are mentioned in text, and how labels are spread
across the values of a facet (SageMaker Clarify's pre-training metrics).

>>> r = representation(["She is a doctor.", "He said his name", None])
>>> [(g.group, g.mentions) for g in r.groups], r.ratio
([('female', 1), ('male', 2)], 0.5)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curata.errors import InvalidInput
from curata.textfiles import read_text_file

DEFAULT_GROUPS: dict[str, tuple[str, ...]] = {
    "female": (
        "she", "her", "hers", "herself", "woman", "women", "girl", "girls", "lady", "ladies",
        "female", "females", "mother", "mothers", "mom", "moms", "mum", "mums", "daughter",
        "daughters", "sister", "sisters", "wife", "wives", "aunt", "aunts", "niece", "nieces",
        "grandmother", "grandmothers", "girlfriend", "girlfriends", "queen", "queens",
        "princess", "bride", "mrs", "ms", "madam",
    ),
    "male": (
        "he", "him", "his", "himself", "man", "men", "boy", "boys", "gentleman", "gentlemen",
        "male", "males", "father", "fathers", "dad", "dads", "son", "sons", "brother",
        "brothers", "husband", "husbands", "uncle", "uncles", "nephew", "nephews",
        "grandfather", "grandfathers", "boyfriend", "boyfriends", "king", "kings", "prince",
        "groom", "mr", "sir",
    ),
}  # fmt: skip
"""Gendered English terms, matched as whole words, ignoring case."""


# -- term-group representation ----------------------------------------------------------------


@dataclass(frozen=True)
class GroupRepresentation:
    """How one group of terms is represented.

    Attributes:
        group: the group's name.
        mentions: how many times any of its terms occurs.
        mention_share: its mentions / the mentions of all groups (0 when there are none).
        rows: rows that mention the group at least once.
        row_share: those rows / all rows.
    """

    group: str
    mentions: int
    mention_share: float
    rows: int
    row_share: float


@dataclass(frozen=True)
class RepresentationResult:
    """Representation of every group, and the ratio of the least to the most mentioned.

    Attributes:
        groups: one entry per group, in the order the groups were given.
        rows: rows looked at (NULL rows count and mention nothing).
        ratio: min mention share / max mention share; 1.0 is balanced, 0.0 means some group is
            never mentioned; None when no group is mentioned at all.
    """

    groups: tuple[GroupRepresentation, ...]
    rows: int
    ratio: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {"rows": self.rows, "ratio": self.ratio, "groups": [asdict(g) for g in self.groups]}


def load_groups(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Read term groups from a YAML file shaped ``groups: {name: [term, ...], ...}``.

    Raises:
        NotFound: the file does not exist.
        InvalidInput: the file cannot be read or does not have that shape.
    """
    import yaml

    example = "For example:\ngroups:\n  female: [she, her, woman]\n  male: [he, him, man]"
    text = read_text_file(path, "term groups", example=example)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or err
        raise InvalidInput(f"{where}: not valid YAML: {problem}.") from err
    if not isinstance(data, dict) or "groups" not in data:
        raise InvalidInput(f"{path} must have a 'groups' mapping.", hint=example)
    return check_groups(data["groups"], str(path))


def check_groups(groups: object, where: str = "term groups") -> dict[str, tuple[str, ...]]:
    """Validate a ``{name: [term, ...]}`` mapping (non-empty, text terms).

    Raises:
        InvalidInput: it is not such a mapping.
    """
    if not isinstance(groups, Mapping) or not groups:
        raise InvalidInput(f"{where}: expected a mapping of group names to lists of terms.")
    checked: dict[str, tuple[str, ...]] = {}
    for name, terms in groups.items():
        if isinstance(terms, str) or not isinstance(terms, Sequence) or not terms:
            raise InvalidInput(f"{where}: group {name!r} needs a non-empty list of terms.")
        if not all(isinstance(t, str) and t.strip() for t in terms):
            raise InvalidInput(f"{where}: every term of group {name!r} must be non-empty text.")
        checked[str(name)] = tuple(t.strip() for t in terms)
    return checked


def _pattern(terms: Sequence[str]) -> re.Pattern[str]:
    # Longest first, so "single mother" wins over "mother"; inner spaces match any whitespace.
    parts = sorted((r"\s+".join(map(re.escape, t.split())) for t in terms), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(parts) + r")\b", re.IGNORECASE)


class TermCounter:
    """Counts term-group mentions over texts given in batches (see :func:`representation`)."""

    def __init__(self, groups: Mapping[str, Sequence[str]] | None = None) -> None:
        self.groups = check_groups(DEFAULT_GROUPS if groups is None else groups)
        self._patterns = {name: _pattern(terms) for name, terms in self.groups.items()}
        self._mentions = dict.fromkeys(self.groups, 0)
        self._rows_with = dict.fromkeys(self.groups, 0)
        self._rows = 0

    def update(self, texts: Iterable[str | None]) -> None:
        """Count the mentions in more texts (None counts as a row without mentions)."""
        for text in texts:
            self._rows += 1
            if not text:
                continue
            for name, pattern in self._patterns.items():
                found = len(pattern.findall(text))
                if found:
                    self._mentions[name] += found
                    self._rows_with[name] += 1

    def result(self) -> RepresentationResult:
        """The representation of every group so far."""
        total = sum(self._mentions.values())
        shares = {g: (m / total if total else 0.0) for g, m in self._mentions.items()}
        groups = tuple(
            GroupRepresentation(
                g,
                self._mentions[g],
                shares[g],
                self._rows_with[g],
                self._rows_with[g] / self._rows if self._rows else 0.0,
            )
            for g in self.groups
        )
        ratio = min(shares.values()) / max(shares.values()) if total else None
        return RepresentationResult(groups, self._rows, ratio)


def representation(
    texts: Iterable[str | None] | pa.Array | pa.ChunkedArray,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> RepresentationResult:
    """How often each group of terms is mentioned (whole words, ignoring case).

    Args:
        texts: the texts (None is a row without mentions).
        groups: ``{name: [term, ...]}``; :data:`DEFAULT_GROUPS` (female / male) when None.

    Returns:
        Per group: mentions, share of mentions, rows mentioning it and their share; and the
        representation ratio (least / most mentioned share).

    Raises:
        InvalidInput: ``groups`` is not a mapping of names to non-empty term lists.
    """
    counter = TermCounter(groups)
    if isinstance(texts, pa.Array | pa.ChunkedArray):
        texts = texts.to_pylist()
    counter.update(texts)
    return counter.result()


# -- label bias (SageMaker Clarify pre-training metrics) --------------------------------------


def class_imbalance(n_a: int, n_d: int) -> float:
    """Clarify's class imbalance CI = (n_a - n_d) / (n_a + n_d), in [-1, 1].

    ``n_d`` counts the facet value looked at, ``n_a`` all other rows: a positive CI means the
    facet value is under-represented.
    """
    return (n_a - n_d) / (n_a + n_d)


@dataclass(frozen=True)
class FacetBias:
    """Clarify's pre-training metrics for one facet value d against all other rows a.

    Attributes:
        value: the facet value d.
        n_d / n_a: rows with value d / with any other value.
        ci: class imbalance (n_a - n_d) / (n_a + n_d).
        q_d / q_a: the share of positive labels in d / in a.
        dpl: difference in proportions of labels q_a - q_d (positive: d gets fewer positives).
        kl: Kullback-Leibler divergence KL(P_a || P_d) of the label distributions (natural log;
            infinite when a label occurs in a but never in d).
        js: Jensen-Shannon divergence 1/2 [KL(P_a || P) + KL(P_d || P)], P = (P_a + P_d) / 2.
        lp: L2 norm of P_a - P_d.
        tvd: total variation distance, half the L1 norm of P_a - P_d.
        ks: Kolmogorov-Smirnov distance, the largest |P_a - P_d|.
        message: why metrics are missing (an empty facet), else empty.
    """

    value: Any
    n_d: int
    n_a: int
    ci: float | None = None
    q_d: float | None = None
    q_a: float | None = None
    dpl: float | None = None
    kl: float | None = None
    js: float | None = None
    lp: float | None = None
    tvd: float | None = None
    ks: float | None = None
    message: str = ""


@dataclass(frozen=True)
class LabelBiasResult:
    """Label bias metrics for every facet value.

    Attributes:
        facet / label: the columns.
        positive: the label values counted as positive.
        rows: rows used (facet and label both present).
        dropped_rows: rows left out because the facet or the label is NULL.
        facets: one entry per facet value, most frequent first.
    """

    facet: str
    label: str
    positive: tuple[Any, ...]
    rows: int
    dropped_rows: int
    facets: tuple[FacetBias, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (an infinite divergence becomes None; see its message)."""
        facets = []
        for f in self.facets:
            entry = asdict(f)
            for key, value in entry.items():
                if isinstance(value, float) and not math.isfinite(value):
                    entry[key] = None
            facets.append(entry)
        return {
            "facet": self.facet,
            "label": self.label,
            "positive": list(self.positive),
            "rows": self.rows,
            "dropped_rows": self.dropped_rows,
            "facets": facets,
        }


def _kl(p: Sequence[float], q: Sequence[float]) -> float:
    total = 0.0
    for pi, qi in zip(p, q, strict=True):
        if pi == 0:
            continue  # 0 * log(0 / q) = 0
        if qi == 0:
            return math.inf
        total += pi * math.log(pi / qi)
    return total


def facet_metrics(value: Any, n_a: int, n_d: int, pos_a: int, pos_d: int) -> FacetBias:
    """Clarify's CI, DPL, KL, JS, LP, TVD and KS for one facet value (binary labels)."""
    if n_d == 0:
        return FacetBias(value, n_d, n_a, message=f"No row has the facet value {value!r}.")
    if n_a == 0:
        return FacetBias(
            value, n_d, n_a, message=f"Every row has the facet value {value!r}: nothing to compare."
        )
    q_a, q_d = pos_a / n_a, pos_d / n_d
    p_a, p_d = (q_a, 1 - q_a), (q_d, 1 - q_d)
    mid = tuple((a + d) / 2 for a, d in zip(p_a, p_d, strict=True))
    diffs = [abs(a - d) for a, d in zip(p_a, p_d, strict=True)]
    kl = _kl(p_a, p_d)
    message = "" if math.isfinite(kl) else "KL is infinite: a label occurs in a but never in d."
    return FacetBias(
        value,
        n_d,
        n_a,
        ci=class_imbalance(n_a, n_d),
        q_d=q_d,
        q_a=q_a,
        dpl=q_a - q_d,
        kl=kl,
        js=0.5 * (_kl(p_a, mid) + _kl(p_d, mid)),
        lp=math.sqrt(sum(d * d for d in diffs)),
        tvd=0.5 * sum(diffs),
        ks=max(diffs),
        message=message,
    )


def _two_columns(data: Any, facet: str, label: str) -> pa.Table:
    names = [facet, label]
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatchReader):
        table = pa.Table.from_batches(list(data))
    elif hasattr(data, "to_arrow_table"):  # a DuckDB relation
        table = data.to_arrow_table()
    else:
        raise InvalidInput(f"Cannot read labels from {type(data).__name__}; pass an Arrow table.")
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise InvalidInput(
            f"Column '{missing[0]}' does not exist; the columns are: "
            f"{', '.join(table.column_names)}."
        )
    return table.select(names)


def label_bias(
    table: Any,
    facet: str,
    label: str,
    positive: Any,
    *,
    values: Sequence[Any] | None = None,
) -> LabelBiasResult:
    """SageMaker Clarify's pre-training bias metrics for every value of a facet.

    Each facet value d is compared with all other rows a. Labels are made binary: a label in
    ``positive`` is positive, any other is negative. Rows with a NULL facet or label are left
    out (and counted in ``dropped_rows``).

    Args:
        table: an Arrow table, record batch reader or DuckDB relation.
        facet: the column of the sensitive attribute (gender, language, source, ...).
        label: the column of labels.
        positive: the positive label value, or a list of them.
        values: facet values to report (default: every value present, most frequent first).

    Returns:
        Per facet value: n_d, n_a, CI, q_d, q_a, DPL, KL, JS, LP, TVD, KS.

    Raises:
        InvalidInput: a column is missing, or the positive values do not fit the label's type.
    """
    data = _two_columns(table, facet, label)
    positives = tuple(positive) if isinstance(positive, list | tuple | set) else (positive,)
    facet_col, label_col = data.column(0), data.column(1)
    keep = pc.and_(pc.is_valid(facet_col), pc.is_valid(label_col))
    try:
        value_set = pa.array(positives).cast(label_col.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
        raise InvalidInput(
            f"The positive label {positives!r} does not fit column {label}: {err}"
        ) from err
    flags = pc.cast(pc.is_in(label_col, value_set=value_set), pa.int64())
    grouped = (
        pa.table({"facet": facet_col, "pos": flags})
        .filter(keep)
        .group_by("facet")
        .aggregate([("pos", "sum"), ("pos", "count")])
        .to_pylist()
    )
    counts = {row["facet"]: (int(row["pos_count"]), int(row["pos_sum"] or 0)) for row in grouped}
    rows = sum(n for n, _ in counts.values())
    positives_total = sum(p for _, p in counts.values())
    order = list(values) if values is not None else sorted(counts, key=lambda v: -counts[v][0])
    facets = []
    for value in order:
        n_d, pos_d = counts.get(value, (0, 0))
        facets.append(facet_metrics(value, rows - n_d, n_d, positives_total - pos_d, pos_d))
    return LabelBiasResult(facet, label, positives, rows, data.num_rows - rows, tuple(facets))
