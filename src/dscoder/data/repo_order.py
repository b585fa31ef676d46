"""Repository-level documents: files in dependency order (Algorithm 1, Sec. 2.2), concatenated.

A training sample is a whole repository whose files are ordered so that what a file depends
on comes before it. `build_repo_doc` extracts and resolves the dependency edges
(`dscoder.data.deps`), orders the files with `dependency_order` (Algorithm 1) or by path
(`order="file"`, the file-level ablation), and concatenates them, each preceded by a comment
line with its path in its own comment syntax (`languages.path_header`).

Where each file goes:
- code files (every language not in `languages.NON_CODE`) first, in Algorithm 1 order;
- then the prose and config files (Markdown, reST, text, JSON, YAML, TOML, INI), by path.
  The paper does not say where these go; they have no dependency edges of their own, and
  putting them after the code keeps the code's dependency chain contiguous and means that
  when a long document is cut, prose and configs are what is lost first.
Edges from code to a non-code file (`import data from "./x.json"`) are counted as resolved
but are not ordering edges.

`order="file"` changes only the order of the code files (plain path order), so the ablation
measures the dependency ordering alone (the paper compares repository-level against
file-level data, Sec. 2.2).
"""

from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping, Sequence

from dscoder.data.deps import MODES, repo_deps
from dscoder.data.languages import NON_CODE, path_header

ORDERS = ("dependency", "file")


@dataclass(frozen=True)
class Ordering:
    order: list[str]
    """Every node exactly once: subgraph after subgraph, each in Algorithm 1 order."""
    cycles_broken: int
    """Picks whose in-degree was still > 0 (the node sat on or behind a cycle)."""
    subgraphs: int
    """Weakly connected components of the graph (isolated nodes count as one each)."""


def dependency_order(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> Ordering:
    """Algorithm 1 of the paper (Sec. 2.2) over `nodes`; an edge (a, b) means a depends on b.

    Adjacency list `graph[b] = [a, ...]` and in-degree map as in lines 1-16 (repeated
    edges count once: the paper tests HASDEPENDENCY per pair; self-edges and edges to
    unknown nodes are ignored). Disconnected subgraphs (weakly connected components, line
    18) come one after another, ordered by their smallest node. Within one, the node with
    the *minimal* in-degree among those not yet placed is taken (line 23: not necessarily
    zero, so cycles never block), ties broken by the smaller node (path order), and its
    successors' in-degrees are decremented (lines 24-26). A lazy heap makes each pick
    O(log n) instead of the paper's linear argmin; in-degrees only fall, so an entry whose
    in-degree is out of date is skipped when popped.
    """
    nodes = sorted(set(nodes))
    graph: dict[str, list[str]] = {n: [] for n in nodes}
    in_degree = dict.fromkeys(nodes, 0)
    parent = {n: n for n in nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in sorted(set(edges)):
        if a == b or a not in graph or b not in graph:
            continue
        graph[b].append(a)
        in_degree[a] += 1
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    components: dict[str, list[str]] = {}
    for n in nodes:  # sorted, so each component is sorted and keyed by its smallest node
        components.setdefault(find(n), []).append(n)

    order: list[str] = []
    broken = 0
    for comp in sorted(components.values()):
        heap = [(in_degree[n], n) for n in comp]
        heapq.heapify(heap)
        placed: set[str] = set()
        while heap:
            d, n = heapq.heappop(heap)
            if n in placed or d != in_degree[n]:
                continue
            broken += d > 0
            placed.add(n)
            order.append(n)
            for m in graph[n]:
                in_degree[m] -= 1
                if m not in placed:
                    heapq.heappush(heap, (in_degree[m], m))
    return Ordering(order, broken, len(components))


@dataclass
class LanguageStats:
    """Dependency statistics of the files of one language (the *source* file's language)."""

    files: int = 0
    edges_found: int = 0
    """Distinct import references found."""
    edges_resolved: int = 0
    """References resolved to at least one other file of the repository."""
    edges_unresolved: int = 0
    """References to no file of the repository (standard library, third party, missing)."""
    self_imports: int = 0
    """References that resolved only to the importing file itself (not edges)."""
    graph_edges: int = 0
    """Distinct (file, file it depends on) pairs between code files: the ordering edges."""
    edges_in_order: int = 0
    """Ordering edges whose target comes before their source in the document."""
    cycles_broken: int = 0
    """Algorithm 1 picks of a file of this language whose in-degree was > 0."""
    parse_errors: int = 0
    """Files where tree-sitter was not (fully) used or a resolver failed (see deps.extract)."""

    @property
    def order_quality(self) -> float | None:
        """Share of ordering edges whose target precedes its source (1.0 on any DAG)."""
        return self.edges_in_order / self.graph_edges if self.graph_edges else None

    def add(self, other: "LanguageStats") -> "LanguageStats":
        for k in asdict(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        return self

    def as_dict(self) -> dict[str, float | int | None]:
        return {**asdict(self), "order_quality": self.order_quality}


@dataclass
class RepoDoc:
    text: str
    """The repository document: file blocks in order (schemas.REPOS `text`)."""
    files: list[dict]
    """One schemas.FILE_SPAN dict per file, in document order."""
    languages: list[str]
    """Distinct languages, sorted."""
    n_files: int
    edges_found: int
    edges_resolved: int
    cycles_broken: int
    graph_edges: int
    """Distinct ordering edges (code file → code file it depends on)."""
    edges_in_order: int
    subgraphs: int
    """Weakly connected components among the code files."""
    per_language: dict[str, LanguageStats]
    edges: list[tuple[str, str]]
    """Every resolved (file, file it depends on) pair, sorted (non-code targets included)."""
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    """(path, language, reason) for files handled with a fallback or dropped (audit rows):
    parse_error / parse_failed / no_grammar / resolve_failed / duplicate_path."""

    @property
    def order_quality(self) -> float | None:
        return self.edges_in_order / self.graph_edges if self.graph_edges else None

    def as_row(self, *, repo_id: str, repo_name: str, source: str) -> dict:
        """This document as one row of schemas.REPOS."""
        return {
            "repo_id": repo_id, "repo_name": repo_name, "source": source, "text": self.text,
            "files": self.files, "languages": self.languages, "n_files": self.n_files,
            "edges_found": self.edges_found, "edges_resolved": self.edges_resolved,
            "cycles_broken": self.cycles_broken,
        }


def build_repo_doc(
    files: Sequence[Mapping[str, str]], *, mode: str = "tree-sitter", order: str = "dependency"
) -> RepoDoc:
    """One repository's document from its files (dicts with `path`, `language`, `content`).

    `mode`: how dependencies are extracted, "tree-sitter" or "regex" (the paper's method).
    `order`: "dependency" (Algorithm 1) or "file" (code files in path order, the ablation;
    no Algorithm 1 picks, so cycles_broken is 0 and order_quality shows what path order
    gets right). Every file appears exactly once, except a repeated path: its later copies are dropped
    and reported in `problems` as duplicate_path.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    problems: list[tuple[str, str, str]] = []
    unique: dict[str, Mapping[str, str]] = {}
    for f in files:
        if f["path"] in unique:
            problems.append((f["path"], f["language"], "duplicate_path"))
        else:
            unique[f["path"]] = f
    rows = [unique[p] for p in sorted(unique)]
    deps = repo_deps(rows, mode)

    lang_of = {f["path"]: f["language"] for f in rows}
    is_code = {p: lang not in NON_CODE for p, lang in lang_of.items()}
    stats: dict[str, LanguageStats] = {}
    edges: list[tuple[str, str]] = []
    for d in deps:
        s = stats.setdefault(d.language, LanguageStats())
        s.files += 1
        s.edges_found += d.found
        s.edges_resolved += d.resolved
        s.edges_unresolved += d.unresolved
        s.self_imports += d.self_refs
        if d.problem:
            s.parse_errors += 1
            problems.append((d.path, d.language, d.problem))
        edges.extend((d.path, t) for t in d.targets)
    graph = [(a, b) for a, b in edges if is_code[a] and is_code[b]]

    code = [p for p in lang_of if is_code[p]]
    if order == "dependency":
        ordering = dependency_order(code, graph)
    else:
        ordering = Ordering(sorted(code), 0, dependency_order(code, graph).subgraphs)
    doc_order = ordering.order + sorted(p for p in lang_of if not is_code[p])

    position = {p: i for i, p in enumerate(doc_order)}
    for a, b in graph:
        s = stats[lang_of[a]]
        s.graph_edges += 1
        s.edges_in_order += position[b] < position[a]
    if order == "dependency":
        _count_cycles_broken(ordering.order, graph, lang_of, stats)

    text, spans = assemble(doc_order, unique)
    return RepoDoc(
        text=text,
        files=spans,
        languages=sorted(set(lang_of.values())),
        n_files=len(doc_order),
        edges_found=sum(s.edges_found for s in stats.values()),
        edges_resolved=sum(s.edges_resolved for s in stats.values()),
        cycles_broken=ordering.cycles_broken,
        graph_edges=len(graph),
        edges_in_order=sum(s.edges_in_order for s in stats.values()),
        subgraphs=ordering.subgraphs,
        per_language=dict(sorted(stats.items())),
        edges=sorted(edges),
        problems=problems,
    )


def _count_cycles_broken(order: list[str], graph: list[tuple[str, str]], lang_of, stats) -> None:
    """Attribute each cycle-breaking pick to its file's language: a file was picked with
    in-degree > 0 exactly when some file it depends on comes after it."""
    position = {p: i for i, p in enumerate(order)}
    late = {a for a, b in graph if position[b] > position[a]}
    for p in late:
        stats[lang_of[p]].cycles_broken += 1


def assemble(order: Sequence[str], files: Mapping[str, Mapping[str, str]]) -> tuple[str, list[dict]]:
    """Concatenate files in `order`, each block a path header then the content.

    `text[start:end]` is a block and `text[start + header_chars:end]` its exact content
    (schemas.FILE_SPAN). A file not ending in a newline is followed by one, outside its span
    (it belongs to the gap before the next block, as repo_blocks.py expects).
    """
    pieces: list[str] = []
    spans: list[dict] = []
    pos = 0
    for path in order:
        f = files[path]
        header = path_header(path, f["language"])
        content = f["content"]
        spans.append(
            {"path": path, "language": f["language"], "start": pos,
             "end": pos + len(header) + len(content), "header_chars": len(header)}
        )
        pieces += (header, content)
        pos += len(header) + len(content)
        if content and not content.endswith("\n"):
            pieces.append("\n")
            pos += 1
    return "".join(pieces), spans
