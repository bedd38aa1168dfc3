"""Clusters from similar pairs (union-find, vectorised), and the canonical row of each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from curata.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

    Array = np.ndarray[Any, Any]

Keep = Literal["first", "longest"]
KEEP_CHOICES = ("first", "longest")


def components(a: Array, b: Array) -> tuple[Array, Array]:
    """Connected components of the graph whose edges are ``(a[i], b[i])``.

    Returns:
        ``(nodes, labels)``: the distinct nodes of the edges, and for each the smallest node of
        its component. Labels propagate along edges and jump to their label's label until
        nothing changes: a few passes over the edges, each a numpy operation.

    >>> import numpy as np
    >>> nodes, labels = components(np.array([1, 2, 7]), np.array([2, 3, 8]))
    >>> nodes.tolist(), labels.tolist()
    ([1, 2, 3, 7, 8], [1, 1, 1, 7, 7])
    """
    import numpy as np

    nodes, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    ea, eb = inverse[: len(a)], inverse[len(a) :]
    label = np.arange(len(nodes))
    while True:
        low = np.minimum(label[ea], label[eb])
        nxt = label.copy()
        np.minimum.at(nxt, ea, low)
        np.minimum.at(nxt, eb, low)
        nxt = nxt[nxt]
        if np.array_equal(nxt, label):
            return nodes, nodes[label]
        label = nxt


def group_members(nodes: Array, labels: Array) -> list[Array]:
    """Nodes grouped by label, each group sorted, groups in the order of their smallest node."""
    import numpy as np

    if len(nodes) == 0:
        return []
    order = np.lexsort((nodes, labels))
    nodes, labels = nodes[order], labels[order]
    cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    return [g for g in np.split(nodes, cuts) if len(g) > 1]


def pick_canonical(members: Array, keep: str, rank: Array, lengths: Array | None) -> int:
    """The member to keep: the lowest ``rank`` (``first``), or the longest text, ties going
    to the lowest rank (``longest``)."""
    import numpy as np

    if keep == "first" or lengths is None:
        return int(members[np.argmin(rank[members])])
    if keep != "longest":
        raise InvalidInput(f"keep must be one of {', '.join(KEEP_CHOICES)}, not {keep!r}.")
    order = np.lexsort((rank[members], -lengths[members]))
    return int(members[order[0]])


def check_keep(keep: str) -> None:
    """Refuse an unknown ``keep`` strategy."""
    if keep not in KEEP_CHOICES:
        raise InvalidInput(f"keep must be one of {', '.join(KEEP_CHOICES)}, not {keep!r}.")
