"""Trace a training token (or a whole training block) back to its source bytes, and a
repository or file path forward through every stage decision.

Byte ranges are in the source file: the packer's `token_source` gives a token's byte range
inside its file block (path-comment header included); the header's UTF-8 length is
subtracted, so `content.encode()[byte_start:byte_end]` is the token's bytes, where `content`
is the file as ingested (data/raw/files.parquet, the file's bytes decoded as UTF-8). A token
that lies in the header (the path comment the packer's document adds) gets `in_header`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds

from dscoder.lineage.index import Lineage
from dscoder.lineage.data_order import DataOrder, block_at
from dscoder.tokens.index import TokenIndex, token_source


class Tracer:
    """Token-level tracing over one working tree (the token files are memory-mapped)."""

    def __init__(self, root: str | os.PathLike, lineage: Lineage | None = None,
                 tokenizer_dir: str | os.PathLike | None = None, tokens_dir: str | os.PathLike | None = None,
                 repos_path: str | os.PathLike | None = None):
        self.root = Path(root)
        self.lineage = lineage or Lineage.at(self.root)
        paths = self.lineage.paths  # the pipeline's outputs, as params.yaml's `paths` names them
        self.tokens_dir = Path(tokens_dir or self.root / paths.tokens)
        self.tokenizer_dir = Path(tokenizer_dir or self.root / paths.tokenizer)
        self.repos_path = Path(repos_path or self.root / paths.clean_repos)
        self._index: dict[str, TokenIndex] = {}
        self._docs: dict[tuple[str, int], dict[str, Any]] = {}

    def index(self, split: str) -> TokenIndex:
        if split not in self._index:
            self._index[split] = TokenIndex(self.tokens_dir, split)
        return self._index[split]

    def doc(self, repo_id: str, part: int = 0) -> dict[str, Any]:
        """The packed REPOS row of a repository document (text, files), read by filter: part
        `part` of the repository's consecutive rows (a large repository has several)."""
        key = (repo_id, part)
        if key not in self._docs:
            t = ds.dataset(str(self.repos_path)).to_table(columns=["repo_id", "text", "files"],
                                                          filter=pc.field("repo_id") == repo_id)
            if t.num_rows <= part:
                raise LookupError(f"{repo_id} has {t.num_rows} rows in {self.repos_path}, no part {part}")
            self._docs[key] = t.slice(part, 1).to_pylist()[0]
        return self._docs[key]

    # ---- one token ----
    def token(self, split: str, offset: int) -> dict[str, Any]:
        """Where token `offset` of `split` came from: repository, file, FIM role, byte range in
        the source file (or the inserted special token)."""
        idx = self.index(split)
        if not 0 <= offset < idx.tokens.size:
            raise IndexError(f"offset: {split}.bin has {idx.tokens.size} tokens, got {offset}")
        loc = idx.locate(offset)
        out: dict[str, Any] = {"split": split, "offset": offset, "token_id": int(idx.tokens[offset]),
                               "repo_id": loc.repo_id, "repo_name": loc.repo_name, "doc": loc.doc,
                               "fim_mode": loc.fim_mode, "special": loc.special, "path": loc.path,
                               "language": loc.language, "role": loc.role, "span": loc.span}
        if loc.segment is None:
            return out
        doc = self.doc(loc.repo_id, loc.part)
        src = token_source(idx, loc, doc, self.tokenizer_dir)
        out.update(char_start=src["char_start"], char_end=src["char_end"])
        if "byte_start" in src:
            out.update(self._file_bytes(doc, loc.file, src["byte_start"], src["byte_end"]))
        return out

    def _file_bytes(self, doc: dict[str, Any], file: int, b0: int, b1: int) -> dict[str, Any]:
        span = doc["files"][file]
        header = len(doc["text"][span["start"]: span["start"] + span["header_chars"]].encode("utf-8"))
        return {"byte_start": max(0, b0 - header), "byte_end": max(0, b1 - header), "in_header": b0 < header,
                "block_byte_start": b0, "block_byte_end": b1}

    # ---- a range of tokens (a training block) ----
    def tokens(self, split: str, start: int, end: int) -> list[dict[str, Any]]:
        """The runs of [start, end) of `split`: one entry per (document, segment) piece, with
        its token range, FIM role, and byte range in the source file; specials are counted
        per document."""
        idx = self.index(split)
        end = min(end, idx.tokens.size)
        seg = idx.segments
        runs: list[dict[str, Any]] = []
        import numpy as np

        ts, te = np.asarray(seg["token_start"]), np.asarray(seg["token_end"])
        hit = np.nonzero((ts < end) & (te > start))[0]
        for s in hit:
            a, b = max(start, int(ts[s])), min(end, int(te[s]))
            first, last = self.token(split, a), self.token(split, b - 1)
            run = {"split": split, "token_start": a, "token_end": b, "repo_id": first["repo_id"],
                   "repo_name": first["repo_name"], "doc": first["doc"], "fim_mode": first["fim_mode"],
                   "path": first["path"], "language": first["language"], "role": first["role"],
                   "span": first["span"], "char_start": first.get("char_start"), "char_end": last.get("char_end")}
            if "byte_start" in first:
                run.update(byte_start=first["byte_start"], byte_end=last["byte_end"],
                           in_header=first["in_header"])
            runs.append(run)
        return runs

    def step(self, step: int, row: int, order: DataOrder) -> dict[str, Any]:
        """The training block at (step, row) and the sources of its tokens."""
        n_blocks = self.index("train").tokens.size // order.seq_len
        where = block_at(step, row, order, n_blocks)
        runs = self.tokens("train", where["token_start"], where["token_end"])
        special = order.seq_len - sum(r["token_end"] - r["token_start"] for r in runs)
        return {**where, "n_blocks": n_blocks, "special_tokens": special, "runs": runs}

    def decisions(self, repo_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {r: self.lineage.repo_decision(r) for r in dict.fromkeys(repo_ids)}


# ---------------------------------------------------------------------------- text output

def _size(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def format_decision(d: dict[str, Any]) -> list[str]:
    """A repository's decisions as indented text lines."""
    lines = [f"repository {d['repo_name']} ({d['repo_id']}): "
             + ("in the training set" if d["kept"] else f"NOT in the training set (stopped at {d['stopped_at']})")]
    ing = d["ingest"]
    lines.append(f"  ingest    {ing['files']} files kept, {len(ing['dropped'])} skipped"
                 + _reasons(ing["dropped"]))
    f = d["filter"]
    if f["files"] is not None:
        lines.append(f"  filter    {f['files']} files kept, {len(f['dropped'])} dropped" + _reasons(f["dropped"]))
        for r in f["dropped"][:20]:
            lines.append(f"              - {r['path']} [{r['language']}]: {r['reason']}"
                         + (f" ({r['detail']})" if r.get("detail") else ""))
        if len(f["dropped"]) > 20:
            lines.append(f"              ... {len(f['dropped']) - 20} more (--json lists all)")
    lines.append(f"  repo_docs {d['repo_docs']['files']} files in the repository document")
    c = d.get("dedup")
    if c is None:
        lines.append(f"  dedup     {d['dedup_files']} files passed on")
    elif len(c["members"]) == 1:
        lines.append("  dedup     kept (no near-duplicate)")
    else:
        others = ", ".join(f"{m['repo_name']}{'*' if m['kept'] else ''} (J={m['jaccard']})"
                           for m in c["members"] if m["id"] != d["repo_id"])
        lines.append(f"  dedup     {'KEPT' if c['kept'] else 'REMOVED'} in cluster {c['cluster_id']} "
                     f"with {others}  (* = kept member)")
    dc = d["decontam"]
    lines.append(f"  decontam  {dc['files']} files kept, {len(dc['dropped'])} removed" + _reasons(dc["dropped"]))
    for r in dc["dropped"]:
        lines.append(f"              - {r['path']}: {r['reason']} ({r['detail']})")
    p = d.get("pack")
    if p is not None:
        if p["split"] is None:
            lines.append("  pack      no tokens")
        else:
            spans = ", ".join(f"{x['split']} doc {x['doc']} tokens [{x['token_start']}, {x['token_end']})"
                              for x in p["docs"])
            lines.append(f"  pack      {p['tokens']:,} tokens in {p['segments']} segments: {spans}")
    return lines


def _reasons(rows: list[dict[str, Any]]) -> str:
    from collections import Counter

    c = Counter(r["reason"] for r in rows)
    return f" ({', '.join(f'{k}: {v}' for k, v in sorted(c.items()))})" if c else ""


def format_file_decision(d: dict[str, Any]) -> list[str]:
    head = f"file {d['path']} in {d.get('repo_name') or d['repo_id']}: "
    if d["kept"]:
        head += "in the training set"
    elif d["kept"] is None:
        head += d["reason"]
    else:
        head += f"DROPPED at {d['dropped_at']}: {d['reason']}" + (f" ({d['detail']})" if d.get("detail") else "")
    lines = [head]
    for s in d["steps"]:
        extra = {k: v for k, v in s.items() if k not in ("stage", "decision", "cluster", "reason", "detail")}
        lines.append(f"  {s['stage']:<9} {s['decision']}" + (f" {s.get('reason')}" if s.get("reason") else "")
                     + ("" if not extra else "  " + " ".join(f"{k}={v}" for k, v in extra.items() if v is not None)))
    return lines


def format_spans(spans: list[dict[str, Any]] | None, limit: int = 12) -> list[str]:
    if not spans:
        return []
    lines = ["  token spans:"]
    for s in spans[:limit]:
        lines.append(f"    {s['split']} [{s['token_start']}, {s['token_end']}) {s['role']}"
                     f"{'' if s['span'] < 0 else ' span ' + str(s['span'])} chars [{s['char_start']}, {s['char_end']})")
    if len(spans) > limit:
        lines.append(f"    ... {len(spans) - limit} more (--json lists all)")
    return lines


def format_token(t: dict[str, Any]) -> list[str]:
    if t.get("special"):
        return [f"{t['split']}[{t['offset']}]: inserted token {t['special']!r} of {t['repo_name']} "
                f"(doc {t['doc']}, FIM {t['fim_mode']})"]
    if t.get("in_header"):
        where = f"path-comment header, block bytes [{t['block_byte_start']}, {t['block_byte_end']})"
    elif "byte_start" in t:
        where = f"bytes [{t['byte_start']}, {t['byte_end']})"
    else:
        where = f"document chars [{t['char_start']}, {t['char_end']})"
    return [f"{t['split']}[{t['offset']}]: {t['repo_name']} {t['path'] or '(outside any file)'} {where}"
            f", role {t['role']}, FIM {t['fim_mode']}, "
            f"language {t['language']}"]


def format_runs(runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in runs:
        where = (f"bytes [{r['byte_start']}, {r['byte_end']})" if "byte_start" in r
                 else f"chars [{r['char_start']}, {r['char_end']})")
        lines.append(f"  tokens [{r['token_start']}, {r['token_end']})  {r['repo_name']}  {r['path'] or '(outside files)'}"
                     f"  {where}  role {r['role']}{'' if r['span'] < 0 else ' ' + str(r['span'])}")
    return lines
