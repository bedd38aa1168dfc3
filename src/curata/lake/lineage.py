"""Lineage: walking runs, usages and version history up and down from one node.

Nodes are dataset versions (``tickets@5``), runs (``run:ID``), consumers outside curata
(``consumer:model:ft-support@3``) and sources outside the lake that runs read
(``file:///data/tickets.csv``). Edges:

* ``read``          input version (or source) -> run
* ``wrote``         run -> output version
* ``used_by``       version -> consumer ("used by training")
* ``next_version``  parent version -> version, so that a version's upstream includes how its
  earlier versions were made

The graph is built from the whole catalog in one read transaction and walked in memory.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from curata.errors import InvalidInput, NotFound
from curata.lake import history
from curata.lake import schema as t
from curata.lake.models import iso
from curata.lake.refs import parse_ref
from curata.lake.runs import parse_consumer, run_row, shown_status

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from curata.lake.catalog import Catalog

Direction = Literal["up", "down", "both"]
DIRECTIONS = ("up", "down", "both")
NODE_TYPES = ("dataset_version", "run", "consumer", "source")
EDGE_LABELS = {"read": "read", "wrote": "wrote", "next_version": "next version"}


@dataclass(frozen=True)
class LineageNode:
    """A node: its id, type (dataset_version, run, consumer, source), what is known of it, and
    how many edges away from the root it is."""

    id: str
    type: str
    attributes: dict[str, Any]
    distance: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "type": self.type,
            "distance": self.distance,
            "attributes": self.attributes,
        }


@dataclass(frozen=True)
class LineageEdge:
    """A directed edge, always pointing the way the data flowed."""

    source: str
    target: str
    type: str
    label: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source": self.source,
            "target": self.target,
            "type": self.type,
            "label": self.label,
        }


@dataclass(frozen=True)
class LineageGraph:
    """What :meth:`curata.Lake.lineage` found: the root, and nodes and edges within reach."""

    root: str
    direction: str
    depth: int | None
    nodes: list[LineageNode]
    edges: list[LineageEdge]

    def node(self, node_id: str) -> LineageNode:
        """The node with id ``node_id``.

        Raises:
            KeyError: it is not in the graph.
        """
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def to_dict(self) -> dict[str, Any]:
        """``{"root", "direction", "depth", "nodes": [...], "edges": [...]}``."""
        return {
            "root": self.root,
            "direction": self.direction,
            "depth": self.depth,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }

    def to_dot(self) -> str:
        """Graphviz ``dot`` text (``curata lineage REF --format dot | dot -Tsvg``)."""
        lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
        for n in self.nodes:
            attrs = dict(_DOT_STYLE[n.type])
            attrs["label"] = "\n".join(_label_lines(n))
            if n.type == "run" and n.attributes.get("status") == "failed":
                attrs["color"] = "red"
            if n.id == self.root:
                attrs["penwidth"] = "2"
            lines.append(f"  {_dot_quote(n.id)} [{_dot_attrs(attrs)}];")
        for e in self.edges:
            attrs = {"label": e.label}
            if e.type == "next_version":
                attrs["style"] = "dashed"
            edge = f"{_dot_quote(e.source)} -> {_dot_quote(e.target)}"
            lines.append(f"  {edge} [{_dot_attrs(attrs)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        """Mermaid ``flowchart`` text (renders in GitHub and GitLab Markdown)."""
        ids = {n.id: f"n{i}" for i, n in enumerate(self.nodes)}
        lines = ["flowchart LR"]
        for n in self.nodes:
            opening, closing = _MERMAID_SHAPE[n.type]
            label = "<br/>".join(_mermaid_escape(x) for x in _label_lines(n))
            lines.append(f'  {ids[n.id]}{opening}"{label}"{closing}')
        for e in self.edges:
            arrow = "-.->" if e.type == "next_version" else "-->"
            lines.append(f'  {ids[e.source]} {arrow}|"{_mermaid_escape(e.label)}"| {ids[e.target]}')
        lines.append("  classDef root stroke-width:3px;")
        lines.append("  classDef failed stroke:#c00;")
        lines.append(f"  class {ids[self.root]} root;")
        failed = [ids[n.id] for n in self.nodes if n.attributes.get("status") == "failed"]
        if failed:
            lines.append(f"  class {','.join(failed)} failed;")
        return "\n".join(lines) + "\n"


# -- rendering helpers -----------------------------------------------------------------------------

_DOT_STYLE: dict[str, dict[str, str]] = {
    "dataset_version": {"shape": "cylinder"},
    "run": {"shape": "box", "style": "rounded"},
    "consumer": {"shape": "hexagon"},
    "source": {"shape": "note"},
}
_MERMAID_SHAPE = {
    "dataset_version": ("[(", ")]"),
    "run": ("([", "])"),
    "consumer": ("{{", "}}"),
    "source": ("[/", "/]"),
}


def _label_lines(node: LineageNode) -> list[str]:
    a = node.attributes
    if node.type == "run":
        return [str(a.get("job") or node.id), f"{node.id[:16]} {a.get('status', '')}".strip()]
    if node.type == "dataset_version" and "rows" in a:
        return [node.id, f"{a['rows']:,} rows"]
    if node.type == "consumer":
        return [node.id.removeprefix("consumer:")]
    return [node.id]


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _dot_attrs(attrs: dict[str, str]) -> str:
    return ", ".join(f"{k}={_dot_quote(v)}" for k, v in attrs.items())


def _mermaid_escape(text: str) -> str:
    for char, entity in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, entity)
    return text


# -- building the graph ----------------------------------------------------------------------------


@dataclass
class _Catalog:
    """Every node and edge the catalog knows, indexed both ways."""

    nodes: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    edges: dict[tuple[str, str, str], LineageEdge] = field(default_factory=dict)
    succ: dict[str, list[LineageEdge]] = field(default_factory=dict)
    pred: dict[str, list[LineageEdge]] = field(default_factory=dict)

    def add_node(self, node_id: str, type_: str, attributes: dict[str, Any]) -> None:
        self.nodes.setdefault(node_id, (type_, attributes))

    def add_edge(self, source: str, target: str, type_: str, label: str) -> None:
        key = (source, target, label)
        if key in self.edges:
            return
        edge = LineageEdge(source, target, type_, label)
        self.edges[key] = edge
        self.succ.setdefault(source, []).append(edge)
        self.pred.setdefault(target, []).append(edge)


def _version_node(g: _Catalog, ref: str) -> str:
    """Make sure a node for ``ref`` (a ``dataset@version`` or a source URI) exists."""
    if ref in g.nodes:
        return ref
    if "://" in ref:
        g.add_node(ref, "source", {"uri": ref})
        return ref
    name, _, version = ref.rpartition("@")
    # Named by a run but not in the catalog: the run recorded a version that does not exist.
    attrs: dict[str, Any] = {"dataset": name, "version": version, "missing": True}
    if version.isdigit():
        attrs["version"] = int(version)
    g.add_node(ref, "dataset_version", attrs)
    return ref


def _run_node(g: _Catalog, run_id: str) -> str:
    node_id = f"run:{run_id}"
    # A commit stamped with a run id that has no run record (a caller that never started it).
    g.add_node(node_id, "run", {"id": run_id, "status": "unknown"})
    return node_id


def _load(conn: Connection) -> _Catalog:
    g = _Catalog()
    names: dict[int, str] = {
        r.id: r.name for r in conn.execute(sa.select(t.datasets.c.id, t.datasets.c.name))
    }
    tags: dict[tuple[int, int], list[str]] = {}
    tag_q = sa.select(t.refs.c.dataset_id, t.refs.c.name, t.refs.c.version).where(
        t.refs.c.kind == "tag"
    )
    for r in conn.execute(tag_q):
        if r.version is not None:
            tags.setdefault((r.dataset_id, r.version), []).append(r.name)
    c = t.commits.c
    commits = conn.execute(
        sa.select(c.dataset_id, c.version, c.parent_version, c.branch, c.run_id, c.created_at)
        .add_columns(c.row_count, c.operation, c.message, c.author, c.pruned_at)
        .order_by(c.dataset_id, c.version)
    ).all()
    for r in commits:
        name = names[r.dataset_id]
        g.add_node(
            f"{name}@{r.version}",
            "dataset_version",
            {
                "dataset": name,
                "version": r.version,
                "branch": r.branch,
                "operation": r.operation,
                "rows": int(r.row_count),
                "created_at": iso(r.created_at),
                "author": r.author,
                "message": r.message,
                "tags": sorted(tags.get((r.dataset_id, r.version), [])),
                "run_id": r.run_id,
                "pruned": r.pruned_at is not None,
            },
        )
    runs = t.runs.c
    run_rows = conn.execute(
        sa.select(runs.id, runs.job, runs.status, runs.started_at, runs.ended_at)
        .add_columns(runs.executor, runs.code_version, runs.inputs, runs.outputs, runs.error)
        .add_columns(runs.owner)
        .order_by(runs.started_at, runs.id)
    ).all()
    for r in run_rows:
        node = f"run:{r.id}"
        g.add_node(
            node,
            "run",
            {
                "id": r.id,
                "job": r.job,
                "status": shown_status(r.status, r.owner),
                "started_at": iso(r.started_at),
                "ended_at": iso(r.ended_at),
                "executor": r.executor,
                "code_version": r.code_version,
                "error": r.error,
            },
        )
        for ref in r.inputs or []:
            g.add_edge(_version_node(g, ref), node, "read", EDGE_LABELS["read"])
        for ref in r.outputs or []:
            g.add_edge(node, _version_node(g, ref), "wrote", EDGE_LABELS["wrote"])
    for r in commits:
        ref = f"{names[r.dataset_id]}@{r.version}"
        if r.run_id is not None:
            g.add_edge(_run_node(g, r.run_id), ref, "wrote", EDGE_LABELS["wrote"])
        if r.parent_version is not None:
            parent = _version_node(g, f"{names[r.dataset_id]}@{r.parent_version}")
            g.add_edge(parent, ref, "next_version", EDGE_LABELS["next_version"])
    u = t.usages.c
    for r in conn.execute(sa.select(t.usages).order_by(u.recorded_at, u.id)):
        consumer = f"{r.consumer_kind}:{r.consumer_name}" + (
            f"@{r.consumer_version}" if r.consumer_version else ""
        )
        node = f"consumer:{consumer}"
        attrs = {"kind": r.consumer_kind, "name": r.consumer_name, "version": r.consumer_version}
        g.add_node(node, "consumer", attrs)
        source = _version_node(g, f"{names[r.dataset_id]}@{r.version}")
        g.add_edge(source, node, "used_by", f"used by {r.purpose}")
    return g


def _root(conn: Connection, g: _Catalog, text: str) -> str:
    """The node a user's text names: a dataset reference, ``run:ID`` (or a unique prefix of
    the id), or a consumer ``KIND:NAME[@VER]`` (optionally prefixed ``consumer:``)."""
    text = text.strip()
    if text.startswith("run:"):
        return f"run:{run_row(conn, text).id}"
    if text.startswith("consumer:") or ":" in text.partition("@")[0]:
        kind, name, consumer_version = parse_consumer(text.removeprefix("consumer:"))
        node = f"consumer:{kind}:{name}" + (f"@{consumer_version}" if consumer_version else "")
        if node not in g.nodes:
            wanted = node.removeprefix("consumer:")
            known = [
                n.removeprefix("consumer:") for n, (ty, _) in g.nodes.items() if ty == "consumer"
            ]
            close = history.nearest(wanted, known)
            raise NotFound(
                f"No usage by {wanted} is recorded.",
                hint=f"Did you mean: {', '.join(close)}?" if close else "See `curata usage ls`.",
            )
        return node
    ref = parse_ref(text)
    row = history.dataset_row(conn, ref.name)
    version = history.resolve_version(conn, row, ref)
    if version is None:
        raise NotFound(f"Dataset {ref.name!r} has no versions yet.")
    return f"{ref.name}@{version}"


def _walk(g: _Catalog, root: str, upward: bool, depth: int | None) -> dict[str, int]:
    """Breadth-first distances from ``root`` against (up) or along (down) the edges."""
    seen = {root: 0}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        if depth is not None and seen[node] >= depth:
            continue
        for edge in (g.pred if upward else g.succ).get(node, []):
            nxt = edge.source if upward else edge.target
            if nxt not in seen:
                seen[nxt] = seen[node] + 1
                queue.append(nxt)
    return seen


def lineage(
    catalog: Catalog, ref: str, *, direction: Direction = "both", depth: int | None = None
) -> LineageGraph:
    """The lineage graph around ``ref``; see :meth:`curata.Lake.lineage`."""
    if direction not in DIRECTIONS:
        raise InvalidInput(f"Unknown direction {direction!r}.", hint="Use up, down or both.")
    if depth is not None and depth < 0:
        raise InvalidInput("The depth must be zero or more.")
    with catalog.read() as conn:
        g = _load(conn)
        root = _root(conn, g, ref)
    distance: dict[str, int] = {}
    up = _walk(g, root, True, depth) if direction in ("up", "both") else {}
    down = _walk(g, root, False, depth) if direction in ("down", "both") else {}
    for part in (up, down):
        for node, d in part.items():
            distance[node] = min(d, distance.get(node, d))
    # Only edges on the walked paths: with "both", the other inputs of a downstream run are
    # not part of this version's lineage.
    edges = [e for e in g.edges.values() if _walked(e, up, down)]
    nodes = [LineageNode(n, *g.nodes[n], distance=distance[n]) for n in distance]
    nodes.sort(key=lambda n: (n.distance, NODE_TYPES.index(n.type), _natural(n.id)))
    order = {n.id: i for i, n in enumerate(nodes)}
    edges.sort(key=lambda e: (max(order[e.source], order[e.target]), order[e.source]))
    return LineageGraph(root=root, direction=direction, depth=depth, nodes=nodes, edges=edges)


def _walked(edge: LineageEdge, up: dict[str, int], down: dict[str, int]) -> bool:
    """Whether ``edge`` joins two upstream nodes or two downstream nodes (never one of each:
    that would be another input of a downstream run, not this node's lineage)."""
    both_up = edge.source in up and edge.target in up
    return both_up or (edge.source in down and edge.target in down)


def _natural(node_id: str) -> tuple[str, int, str]:
    """Sort key putting ``docs@9`` before ``docs@10``."""
    head, _, tail = node_id.rpartition("@")
    if head and tail.isdigit():
        return head, int(tail), ""
    return node_id, -1, ""
