"""Per-language data metrics for the stage reports (`by_language`), so `dvc metrics diff`
shows how much data of which language moved at which stage.

Each function returns {language: {metric: int}} whose additive metrics sum exactly to the
stage's totals (the tests check it). Conventions:
- A repository document's bytes are split over languages by its files: each file owns its
  block plus any separator up to the next block (dscoder.data.repo_blocks), the document's
  prefix goes to the first file; a document with no file counts under "(none)".
- A repository counts once, under its *primary* language (most bytes; ties: smallest id), in
  `repos_*`; `repos_with_language_*` counts it under every language it has (not additive).
- Pack tokens: segment tokens by language, "(special)" for BOS/EOS/FIM sentinels, "(none)"
  for text outside any file block; only tokens kept in the split file (the tail is cut).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NONE = "(none)"
SPECIAL = "(special)"


def repo_language_bytes(text: str, files: list[Mapping[str, Any]] | None) -> dict[str, int]:
    """UTF-8 bytes of a REPOS document per language (see the module docstring); sums to
    len(text.encode())."""
    files = files or []
    out: Counter = Counter()
    if not files:
        out[NONE] = len(text.encode("utf-8", "replace"))
        return dict(out)
    for i, f in enumerate(files):
        start = 0 if i == 0 else f["start"]
        end = files[i + 1]["start"] if i + 1 < len(files) else len(text)
        out[f.get("language") or NONE] += len(text[start:end].encode("utf-8", "replace"))
    return dict(out)


def primary_language(lang_bytes: Mapping[str, int]) -> str:
    if not lang_bytes:
        return NONE
    return min(lang_bytes, key=lambda k: (-lang_bytes[k], k))


def _sorted(d: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    return {k: dict(sorted(v.items())) for k, v in sorted(d.items())}


def dedup_by_language(rows: Iterable[Mapping[str, Any]], removed_ids: set[str]) -> dict[str, dict[str, int]]:
    """Repository-level dedup: per language, repos and bytes in and removed.
    `rows`: REPOS rows (repo_id, text, files) of the stage input."""
    out: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        lb = repo_language_bytes(row["text"], row.get("files"))
        gone = row["repo_id"] in removed_ids
        prim = primary_language(lb)
        out[prim]["repos_in"] += 1
        out[prim]["repos_removed"] += gone
        for lang, b in lb.items():
            c = out[lang]
            c["bytes_in"] += b
            c["bytes_removed"] += b if gone else 0
            c["repos_with_language_in"] += 1
            c["repos_with_language_removed"] += gone
            c.setdefault("repos_in", 0)
            c.setdefault("repos_removed", 0)
    return _sorted(out)


def dedup_files_by_language(clusters: pa.Table, languages: Mapping[tuple[str, str], str]) -> dict[str, dict[str, int]]:
    """File-level dedup (the ablation): files in and removed per language; `languages` maps
    (repo_id, path) → language."""
    out: dict[str, Counter] = defaultdict(Counter)
    for r, p, kept in zip(clusters["repo_id"].to_pylist(), clusters["path"].to_pylist(), clusters["kept"].to_pylist()):
        c = out[languages.get((r, p), NONE)]
        c["files_in"] += 1
        c["files_removed"] += not kept
    return _sorted(out)


def decontam_by_language(matches: pa.Table | None, files_in: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Per language: files in (input spans), files and bytes removed (one per file, however
    many benchmarks it matched) and hits (match rows: one per file and benchmark)."""
    out: dict[str, Counter] = defaultdict(Counter)
    for lang, n in files_in.items():
        out[lang]["files_in"] += n
    seen: set[tuple[str, str]] = set()
    if matches is not None and matches.num_rows:
        for r in matches.select(["repo_id", "path", "language", "size"]).to_pylist():
            lang = r["language"] or NONE
            c = out[lang]
            c["hits"] += 1
            if (r["repo_id"], r["path"]) not in seen:
                seen.add((r["repo_id"], r["path"]))
                c["files_removed"] += 1
                c["bytes_removed"] += r["size"] or 0
    for c in out.values():
        for k in ("files_in", "files_removed", "bytes_removed", "hits"):
            c.setdefault(k, 0)
    return _sorted(out)


def file_languages(repos: pa.Table) -> dict[str, int]:
    """Files per language of a REPOS table read with the `files` column."""
    flat = pc.list_flatten(repos["files"])
    langs = pc.struct_field(flat, "language").to_pylist() if len(flat) else []
    return dict(Counter(x or NONE for x in langs))


def pack_by_language(segments: pa.Table | Iterable[pa.Table], n_tokens: int) -> dict[str, dict[str, int]]:
    """Tokens and files per language in one split's first `n_tokens` tokens (segments index,
    whole or as a stream of its row groups, in order)."""
    out: dict[str, Counter] = defaultdict(Counter)
    seen: set[int] = set()  # files of the current document (rows come document by document)
    doc, text_tokens = None, 0
    for part in ([segments] if isinstance(segments, pa.Table) else segments):
        ts = np.asarray(part["token_start"].to_numpy(zero_copy_only=False), np.int64)
        te = np.minimum(np.asarray(part["token_end"].to_numpy(zero_copy_only=False), np.int64), n_tokens)
        n = np.clip(te - ts, 0, None)
        text_tokens += int(n.sum())
        langs = [x or NONE for x in part["language"].to_pylist()]
        for lang, k, d, f in zip(langs, n.tolist(), part["doc"].to_pylist(), part["file"].to_pylist()):
            c = out[lang]
            c["tokens"] += k
            if d != doc:
                doc, seen = d, set()
            if f >= 0 and k > 0 and f not in seen:
                seen.add(f)
                c["files"] += 1
    out[SPECIAL]["tokens"] = n_tokens - text_tokens
    for c in out.values():
        c.setdefault("files", 0)
    return _sorted(out)


def totals(by_language: Mapping[str, Mapping[str, int]], key: str) -> int:
    return sum(v.get(key, 0) for v in by_language.values())
