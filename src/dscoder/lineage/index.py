"""`Lineage`: one version of the pipeline's stage outputs, read through their Parquet indexes.

Every lookup reads only index columns (never `content` or `text`, except the one repository
document a token trace needs), so a query costs a few column reads, not a pass over the
corpus. A `Reader` maps a path relative to the project root (and the columns wanted) to an
Arrow table, or None when the output does not exist at that version.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from dscoder.paths import Paths

Reader = Callable[[str, "list[str] | None"], "pa.Table | None"]

# The stage outputs lineage reads are entries of params.yaml's `paths` (dscoder.paths.Paths):
# raw_files/raw_audit (ingest), filtered_files/filtered_audit (filter), repo_docs, dedup_repos
# and dedup_clusters, clean_repos/clean_audit/clean_matches (decontam), tokens (pack).

FILE_COLS = ["repo_id", "repo_name", "path", "language", "size"]
AUDIT_COLS = ["stage", "repo_id", "repo_name", "path", "language", "reason", "detail", "size"]
# Where a file can be in the pipeline, in order; `training set` stages hold REPOS rows.
STAGES = ("ingest", "filter", "repo_docs", "dedup", "decontam", "pack")
# `dscoder diff --at`: the output (a `paths` key) that defines "the set" at each level.
SET_AT = {"clean": "clean_repos", "dedup": "dedup_repos", "repos": "repo_docs", "filtered": "filtered_files",
          "raw": "raw_files"}


def dir_reader(root: str | os.PathLike) -> Reader:
    """A Reader over a working tree (the `workspace` revision)."""
    root = Path(root)

    def read(rel: str, columns: list[str] | None = None) -> pa.Table | None:
        p = root / rel
        if not p.is_file():
            return None
        return pq.read_table(p, columns=columns)

    return read


def open_reader(opener: Callable[[str], Any]) -> Reader:
    """A Reader over any `opener(rel) -> binary file` (e.g. DVC's filesystem at a revision);
    the opener raises FileNotFoundError for a missing output."""

    def read(rel: str, columns: list[str] | None = None) -> pa.Table | None:
        try:
            with opener(rel) as f:
                data = f.read()
        except (FileNotFoundError, IsADirectoryError):
            return None
        return pq.read_table(io.BytesIO(data), columns=columns)

    return read


def _rows(t: pa.Table | None) -> list[dict[str, Any]]:
    return [] if t is None else t.to_pylist()


def file_spans(repos: pa.Table | None) -> pa.Table:
    """(repo_id, repo_name, path, language, file, start, end, header_chars) per file span of a
    REPOS table read with columns [repo_id, repo_name, files]."""
    names = ["repo_id", "repo_name", "path", "language", "file", "start", "end", "header_chars"]
    if repos is None or repos.num_rows == 0:
        return pa.table({n: pa.array([], pa.int64() if n in ("file", "start", "end", "header_chars") else pa.string())
                         for n in names})
    lengths = pc.list_value_length(repos["files"]).fill_null(0)
    flat = pc.list_flatten(repos["files"])
    parent = pc.list_parent_indices(repos["files"])
    import numpy as np

    offsets = np.concatenate([[0], np.cumsum(lengths.to_numpy(zero_copy_only=False))])
    idx = np.arange(len(flat)) - np.repeat(offsets[:-1], lengths.to_numpy(zero_copy_only=False))
    return pa.table({
        "repo_id": pc.take(repos["repo_id"], parent), "repo_name": pc.take(repos["repo_name"], parent),
        "path": pc.struct_field(flat, "path"), "language": pc.struct_field(flat, "language"),
        "file": pa.array(idx, pa.int64()), "start": pc.struct_field(flat, "start"),
        "end": pc.struct_field(flat, "end"), "header_chars": pc.struct_field(flat, "header_chars"),
    })


def params_paths(opener: Callable[[str], Any], default: Paths | None = None) -> Paths:
    """The `paths` section of the version's params.yaml, read through `opener(rel) -> binary file`
    (its outputs are where that version's params said); `default` for a version whose params.yaml
    has no `paths` section (one older than it)."""
    with opener("params.yaml") as f:
        params = yaml.safe_load(f.read()) or {}
    if "paths" not in params and default is not None:
        return default
    return Paths.from_params(params)


@dataclass
class Lineage:
    """The stage outputs of one pipeline version (lazily read, cached per output), found
    through that version's `paths` (params.yaml)."""

    read: Reader
    paths: Paths
    label: str = "workspace"
    _cache: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def at(cls, root: str | os.PathLike, paths: Paths | None = None) -> "Lineage":
        """The working tree at `root`; `paths` default to its params.yaml's."""
        root = Path(root)
        return cls(dir_reader(root), paths or params_paths(lambda rel: open(root / rel, "rb")), label=str(root))

    def _get(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # ---- raw indexes ----
    def files(self, rel: str) -> pa.Table | None:
        """FILES index columns (no content) of paths.raw_files or paths.filtered_files."""
        return self._get(rel, lambda: self.read(rel, FILE_COLS))

    def audit(self, rel: str) -> pa.Table | None:
        return self._get(rel, lambda: self.read(rel, AUDIT_COLS))

    def spans(self, rel: str) -> pa.Table:
        """File spans of a REPOS output (repo_docs, dedup, clean)."""
        return self._get(f"spans:{rel}", lambda: file_spans(self.read(rel, ["repo_id", "repo_name", "files"])))

    def clusters(self) -> pa.Table | None:
        return self._get(self.paths.dedup_clusters, lambda: self.read(self.paths.dedup_clusters, None))

    def matches(self) -> pa.Table | None:
        return self._get(self.paths.clean_matches, lambda: self.read(self.paths.clean_matches, None))

    def token_docs(self, split: str) -> pa.Table | None:
        rel = f"{self.paths.tokens}/{split}.docs.parquet"
        return self._get(rel, lambda: self.read(rel, None))

    def token_segments(self, split: str) -> pa.Table | None:
        rel = f"{self.paths.tokens}/{split}.segments.parquet"
        return self._get(rel, lambda: self.read(rel, None))

    def set_files(self, at: str = "clean") -> pa.Table:
        """(repo_id, repo_name, path, language) of every file in the set at level `at`
        (SET_AT: clean = the training set, paths.clean_repos)."""
        if at not in SET_AT:
            raise ValueError(f"at: must be one of {sorted(SET_AT)}, got {at!r}")
        rel = self.paths.get(SET_AT[at])
        t = self.files(rel) if at in ("raw", "filtered") else self.spans(rel)
        if t is None:
            raise FileNotFoundError(f"{rel} does not exist at {self.label}")
        return t.select(["repo_id", "repo_name", "path", "language"])

    # ---- repositories ----
    def repo_names(self) -> dict[str, str]:
        """repo_id → repo_name over every repository any stage saw."""
        def make() -> dict[str, str]:
            out: dict[str, str] = {}
            for rel in (self.paths.raw_files, self.paths.raw_audit):
                t = self.files(rel) if rel == self.paths.raw_files else self.audit(rel)
                if t is not None:
                    for i, n in zip(t["repo_id"].to_pylist(), t["repo_name"].to_pylist()):
                        if i is not None:
                            out.setdefault(i, n)
            return out
        return self._get("repo_names", make)

    def resolve_repo(self, query: str) -> list[str]:
        """Repository ids matching `query` (an id, else an exact name)."""
        names = self.repo_names()
        if query in names:
            return [query]
        return sorted(i for i, n in names.items() if n == query)

    def resolve_path(self, query: str) -> list[tuple[str, str]]:
        """(repo_id, path) pairs whose path equals `query`, else ends with `/query`."""
        found: set[tuple[str, str]] = set()
        for rel in (self.paths.raw_files, self.paths.raw_audit):
            t = self.files(rel) if rel == self.paths.raw_files else self.audit(rel)
            if t is None:
                continue
            for r, p in zip(t["repo_id"].to_pylist(), t["path"].to_pylist()):
                if p == query:
                    found.add((r, p))
        if not found:
            for rel in (self.paths.raw_files, self.paths.raw_audit):
                t = self.files(rel) if rel == self.paths.raw_files else self.audit(rel)
                if t is not None:
                    for r, p in zip(t["repo_id"].to_pylist(), t["path"].to_pylist()):
                        if p and p.endswith("/" + query):
                            found.add((r, p))
        return sorted(found, key=lambda x: (x[0] or "", x[1] or ""))

    def _in(self, t: pa.Table | None, repo_id: str, path: str | None = None) -> pa.Table | None:
        if t is None:
            return None
        mask = pc.equal(t["repo_id"], repo_id)
        if path is not None:
            mask = pc.and_(mask, pc.equal(t["path"], path))
        return t.filter(mask)

    def cluster_of(self, repo_id: str, path: str | None = None) -> dict[str, Any] | None:
        """The dedup clusters row of a repository (repo level) or file (file level)."""
        c = self.clusters()
        if c is None:
            return None
        if "doc_id" in c.column_names:
            if path is None:
                return None
            rows = c.filter(pc.equal(c["doc_id"], f"{repo_id}::{path}")).to_pylist()
        else:
            rows = c.filter(pc.equal(c["repo_id"], repo_id)).to_pylist()
        if not rows:
            return None
        row = dict(rows[0])
        members = c.filter(pc.equal(c["cluster_id"], row["cluster_id"]))
        key = "doc_id" if "doc_id" in c.column_names else "repo_id"
        names = self.repo_names()
        row["members"] = [{"id": m[key], "repo_name": names.get(m["repo_id"]), "kept": m["kept"],
                           "jaccard": round(m["jaccard"], 4)} for m in members.to_pylist()]
        row["level"] = "file" if key == "doc_id" else "repo"
        return row

    # ---- decisions ----
    def file_decision(self, repo_id: str, path: str) -> dict[str, Any]:
        """Where the file (repo_id, path) went: one entry per stage it reached, the last one
        says where it stopped. `kept` is True when it is in the training set."""
        steps: list[dict[str, Any]] = []

        def stop(stage: str, reason: str, detail: Any = None, **extra) -> dict[str, Any]:
            steps.append({"stage": stage, "decision": "dropped", "reason": reason, "detail": detail, **extra})
            return {"repo_id": repo_id, "path": path, "kept": False, "dropped_at": stage, "reason": reason,
                    "detail": detail, "steps": steps}

        raw = self._in(self.files(self.paths.raw_files), repo_id, path)
        lang = None
        if raw is None or raw.num_rows == 0:
            a = _rows(self._in(self.audit(self.paths.raw_audit), repo_id, path))
            if a:
                return stop("ingest", a[0]["reason"], a[0]["detail"], size=a[0]["size"])
            a = _rows(self._in(self.audit(self.paths.raw_audit), repo_id))
            whole = [r for r in a if r["path"] is None]
            if whole:
                return stop("ingest", whole[0]["reason"], whole[0]["detail"])
            return stop("ingest", "not_in_source", None)
        lang = raw["language"][0].as_py()
        steps.append({"stage": "ingest", "decision": "kept", "language": lang, "size": raw["size"][0].as_py()})
        filt = self._in(self.files(self.paths.filtered_files), repo_id, path)
        if filt is None:
            return {"repo_id": repo_id, "path": path, "kept": None, "dropped_at": None, "reason": "filter output missing",
                    "steps": steps}
        if filt.num_rows == 0:
            a = _rows(self._in(self.audit(self.paths.filtered_audit), repo_id, path))
            return stop("filter", a[0]["reason"] if a else "not_passed_on", a[0]["detail"] if a else None)
        steps.append({"stage": "filter", "decision": "kept"})
        sp = self._in(self.spans(self.paths.repo_docs), repo_id, path)
        if sp.num_rows == 0:
            return stop("repo_docs", "not_in_repo_document")
        steps.append({"stage": "repo_docs", "decision": "kept", "file_index": sp["file"][0].as_py()})
        cl = self.cluster_of(repo_id, path)
        if cl is not None and not cl["kept"]:
            kept_name = self.repo_names().get(cl["cluster_id"].split("::")[0])
            return stop("dedup", "near_duplicate", f"cluster {cl['cluster_id']} ({kept_name}) kept instead, "
                        f"estimated Jaccard {cl['jaccard']:.3f}", cluster=cl)
        if self._in(self.spans(self.paths.dedup_repos), repo_id, path).num_rows == 0:
            return stop("dedup", "not_passed_on", None, cluster=cl)
        steps.append({"stage": "dedup", "decision": "kept", "cluster": cl})
        if self._in(self.spans(self.paths.clean_repos), repo_id, path).num_rows == 0:
            a = _rows(self._in(self.audit(self.paths.clean_audit), repo_id, path))
            if a:
                return stop("decontam", a[0]["reason"], a[0]["detail"],
                            matches=[r["detail"] for r in a])
            return stop("decontam", "not_passed_on")
        steps.append({"stage": "decontam", "decision": "kept"})
        spans = self.token_spans(repo_id, path)
        if spans is not None:
            steps.append({"stage": "pack", "decision": "kept" if spans else "no_tokens",
                          "split": spans[0]["split"] if spans else None, "segments": len(spans),
                          "tokens": sum(s["token_end"] - s["token_start"] for s in spans)})
        return {"repo_id": repo_id, "path": path, "language": lang, "kept": True, "dropped_at": None, "reason": None,
                "detail": None, "steps": steps}

    def repo_decision(self, repo_id: str) -> dict[str, Any]:
        """A repository's way through the stages: files in/out per stage (with the rule of each
        dropped file), its dedup cluster, and whether any of it reached the training set."""
        out: dict[str, Any] = {"repo_id": repo_id, "repo_name": self.repo_names().get(repo_id)}
        raw = self._in(self.files(self.paths.raw_files), repo_id)
        raw_audit = _rows(self._in(self.audit(self.paths.raw_audit), repo_id))
        out["ingest"] = {"files": 0 if raw is None else raw.num_rows,
                         "bytes": 0 if raw is None else int(pc.sum(raw["size"]).as_py() or 0),
                         "dropped": [{k: r[k] for k in ("path", "reason", "detail", "size")} for r in raw_audit]}
        filt = self._in(self.files(self.paths.filtered_files), repo_id)
        out["filter"] = {"files": None if filt is None else filt.num_rows,
                         "dropped": [{k: r[k] for k in ("path", "language", "reason", "detail", "size")}
                                     for r in _rows(self._in(self.audit(self.paths.filtered_audit), repo_id))]}
        docs = self._in(self.spans(self.paths.repo_docs), repo_id)
        out["repo_docs"] = {"files": docs.num_rows}
        out["dedup"] = self.cluster_of(repo_id) if self.clusters() is not None and \
            "doc_id" not in self.clusters().column_names else None
        ded = self._in(self.spans(self.paths.dedup_repos), repo_id)
        out["dedup_files"] = ded.num_rows
        clean = self._in(self.spans(self.paths.clean_repos), repo_id)
        out["decontam"] = {"files": clean.num_rows,
                           "dropped": [{k: r[k] for k in ("path", "language", "reason", "detail", "size")}
                                       for r in _rows(self._in(self.audit(self.paths.clean_audit), repo_id))]}
        tok = self.token_spans(repo_id)
        out["pack"] = None if tok is None else {
            "split": tok[0]["split"] if tok else None, "docs": self.token_docs_of(repo_id),
            "segments": len(tok), "tokens": sum(s["token_end"] - s["token_start"] for s in tok)}
        out["kept"] = clean.num_rows > 0
        out["stopped_at"] = None if out["kept"] else next(
            (s for s, n in (("ingest", out["ingest"]["files"]), ("filter", out["filter"]["files"]),
                            ("repo_docs", docs.num_rows), ("dedup", ded.num_rows), ("decontam", clean.num_rows))
             if not n), "decontam")
        return out

    # ---- tokens ----
    def token_docs_of(self, repo_id: str) -> list[dict[str, Any]]:
        out = []
        for split in ("train", "val"):
            d = self.token_docs(split)
            if d is not None:
                for r in d.filter(pc.equal(d["repo_id"], repo_id)).to_pylist():
                    out.append({"split": split, **r})
        return out

    def token_spans(self, repo_id: str, path: str | None = None) -> list[dict[str, Any]] | None:
        """Token runs of a repository (or one file of it) in the packed splits: split, doc,
        path, role, char and token ranges. None when the token index does not exist."""
        docs = self.token_docs_of(repo_id)
        if self.token_docs("train") is None and self.token_docs("val") is None:
            return None
        out = []
        for d in docs:
            seg = self.token_segments(d["split"])
            if seg is None:
                continue
            mask = pc.equal(seg["doc"], d["doc"])
            if path is not None:
                mask = pc.and_(mask, pc.equal(seg["path"], path))
            for s in seg.filter(mask).to_pylist():
                out.append({"split": d["split"], **s})
        return out
