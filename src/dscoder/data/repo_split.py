"""repo_docs as a streaming step, and the split of a repository too large for one document.

The step reads schemas.FILES rows in byte-bounded batches of whole repositories
(`dscoder.data.stream`), builds each repository's document (`repo_order.build_repo_doc`) and
writes it as soon as it is complete. A repository larger than `batch_bytes` arrives in pieces;
its files are gathered (it is the one unit that must be seen whole to be ordered) and then
written as several documents of at most `max_doc_bytes` each, cut at file boundaries along
the dependency order: each part is a run of consecutive blocks of the ordered document, so
a file's dependencies are in its own part or an earlier one, and connected files stay
together as far as the size allows. Every part keeps the document's prefix (the repository
line of the starcoder2 / qwen2.5 formats) and its own spans; the parts share the
repository's `repo_id` and are numbered by `part`. Repository-level statistics (edges,
cycles) are carried by part 0 so that sums over documents stay repository totals.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import pyarrow as pa

from dscoder.data.repo_order import LanguageStats, RepoDocsSettings, build_repo_doc
from dscoder.data.step import Step, StepContext
from dscoder.data.stream import Batch, iter_groups
from dscoder.schemas import REPOS

_COLUMNS = ("repo_id", "repo_name", "source", "path", "language", "content")


def split_document(row: dict[str, Any], max_doc_bytes: int) -> list[dict[str, Any]]:
    """A REPOS row cut into rows of at most `max_doc_bytes` UTF-8 bytes (a single file
    larger than that is a part by itself), at file-block boundaries, in order."""
    text, spans = row["text"], row["files"]
    if len(text.encode("utf-8")) <= max_doc_bytes or len(spans) <= 1:
        return [{**row, "part": 0}]
    prefix = text[: spans[0]["start"]]
    ends = [s["start"] for s in spans[1:]] + [len(text)]
    groups: list[list[int]] = [[]]
    size = len(prefix.encode("utf-8"))
    base = size
    for i, s in enumerate(spans):
        block = len(text[s["start"]:ends[i]].encode("utf-8"))
        if groups[-1] and size + block > max_doc_bytes:
            groups.append([])
            size = base
        groups[-1].append(i)
        size += block
    parts = []
    for k, idx in enumerate(groups):
        lo, hi = spans[idx[0]]["start"], ends[idx[-1]]
        shift = len(prefix) - lo
        part_spans = [{**spans[i], "start": spans[i]["start"] + shift, "end": spans[i]["end"] + shift} for i in idx]
        first = k == 0
        parts.append({
            **row, "text": prefix + text[lo:hi], "files": part_spans,
            "languages": sorted({s["language"] for s in part_spans}), "n_files": len(part_spans),
            "edges_found": row["edges_found"] if first else 0, "edges_resolved": row["edges_resolved"] if first else 0,
            "cycles_broken": row["cycles_broken"] if first else 0, "part": k,
        })
    return parts


@dataclass(frozen=True)
class RepoDocsStep(Step):
    """FILES rows in, one REPOS row per repository (several for a giant one) out."""

    settings: RepoDocsSettings
    stage: ClassVar[str] = "repo_docs"
    schema: ClassVar[pa.Schema] = REPOS
    columns: ClassVar[Sequence[str]] = _COLUMNS

    def begin(self, ctx: StepContext) -> None:
        ctx.state["pieces"] = []
        ctx.extra["languages"] = defaultdict(LanguageStats)

    def process(self, batch: Batch, ctx: StepContext) -> None:
        for group, first, last in iter_groups([batch]):
            if first and last:
                self._emit(group.to_pylist(), ctx)
                continue
            ctx.state["pieces"].append(group)  # a repository larger than a batch: gather it
            if last:
                pieces, ctx.state["pieces"] = ctx.state["pieces"], []
                ctx.count(("repos_gathered",))
                self._emit(pa.concat_tables(pieces).to_pylist(), ctx)

    def _emit(self, files: list[dict], ctx: StepContext) -> None:
        s = self.settings
        name, source, rid = files[0]["repo_name"], files[0]["source"], files[0]["repo_id"]
        doc = build_repo_doc(files, mode=s.mode, order=s.order, algorithm=s.algorithm, doc_format=s.doc_format,
                             repo_name=name)
        for lang, st in doc.per_language.items():
            ctx.extra["languages"][lang].add(st)
        parts = split_document(doc.as_row(repo_id=rid, repo_name=name, source=source), s.max_doc_bytes)
        ctx.write(parts)
        ctx.count(("repos",))
        ctx.count(("documents",), len(parts))
        ctx.count(("files",), doc.n_files)
        ctx.count(("cycles_broken",), doc.cycles_broken)
        if len(parts) > 1:
            ctx.count(("repos_split",))
            ctx.audit("split", repo_id=rid, repo_name=name, size=len(doc.text.encode("utf-8")),
                      detail=f"{len(parts)} documents of at most {s.max_doc_bytes} bytes")
        for path, lang, reason in doc.problems:
            ctx.count(("problems", reason))

    def end(self, ctx: StepContext) -> None:
        ctx.extra["languages"] = dict(ctx.extra["languages"])
