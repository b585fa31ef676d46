"""Ingestion: source specs → one row per usable file (schema `dscoder.schemas.FILES`).

Every entry that is not used is returned as an audit row with a reason, and counted:
unknown_language, too_large, binary, not_utf8, unreadable, symlink, symlink_escape,
unsafe_path, special_file (per file); missing_source, broken_archive, fetch_failed,
empty_repo (per source or repository).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dscoder.config import Settings, check
from dscoder.data.languages import detect_language
from dscoder.data.sources import Entry, RepoRef, SourceError, check_spec, describe, expand


@dataclass(frozen=True, kw_only=True)
class IngestSettings(Settings):
    sources: list[dict[str, Any]] = field(default_factory=list)
    """Source specs, each a mapping with a `type` (dir, dirs, archive, git, python_dist, stdlib,
    sysconfig, pypi_sdist, npm, stack_parquet); see README "Sources"."""
    max_file_bytes: int = 1_000_000
    """Files larger than this are skipped as too_large (before they are read)."""
    binary_sniff_bytes: int = 8192
    """A NUL byte within this many leading bytes marks a file as binary (as git does)."""
    cache_dir: str = ".cache/sources"
    """Where downloaded archives (pypi_sdist, npm) are kept so reruns need no network."""

    def validate(self) -> None:
        check(isinstance(self.sources, list) and self.sources, "ingest.sources", "must be a non-empty list")
        for i, spec in enumerate(self.sources):
            check_spec(spec, f"ingest.sources[{i}]")
        check(self.max_file_bytes > 0, "ingest.max_file_bytes", "must be > 0")
        check(self.binary_sniff_bytes > 0, "ingest.binary_sniff_bytes", "must be > 0")


@dataclass
class IngestResult:
    files: list[dict] = field(default_factory=list)
    audit: list[dict] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)  # reason → n, plus files/bytes/repos
    by_language: Counter = field(default_factory=Counter)  # "files/<lang>", "bytes/<lang>"

    def drop(self, reason: str, repo: RepoRef | None, path: str | None, detail: str | None = None,
             size: int | None = None, language: str | None = None) -> None:
        self.counts[f"dropped/{reason}"] += 1
        self.audit.append({
            "stage": "ingest", "repo_id": repo.repo_id if repo else None,
            "repo_name": repo.repo_name if repo else None, "path": path, "language": language,
            "reason": reason, "detail": detail, "size": size,
        })


def read_entry(entry: Entry, s: IngestSettings) -> tuple[str | None, str | None, str | None, int | None]:
    """(text, language, skip_reason, size) for one entry."""
    if entry.skip:
        return None, None, entry.skip, entry.size
    lang = detect_language(entry.path)
    if lang is None:
        return None, None, "unknown_language", entry.size
    if entry.size is not None and entry.size > s.max_file_bytes:
        return None, lang, "too_large", entry.size
    try:
        data = entry.read()
    except OSError:
        return None, lang, "unreadable", entry.size
    if len(data) > s.max_file_bytes:  # a file that grew since it was listed
        return None, lang, "too_large", len(data)
    if b"\0" in data[: s.binary_sniff_bytes]:
        return None, lang, "binary", len(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, lang, "not_utf8", len(data)
    if lang == "c" and entry.path.endswith(".h"):
        lang = detect_language(entry.path, text)  # C++ headers share the .h extension
    return text, lang, None, len(data)


def ingest_repo(repo: RepoRef, entries, s: IngestSettings, out: IngestResult) -> None:
    kept = 0
    for entry in entries:
        text, lang, reason, size = read_entry(entry, s)
        if reason is not None:
            detail = entry.detail
            out.drop(reason, repo, entry.path, detail, size, lang)
            continue
        raw = text.encode("utf-8")
        out.files.append({
            "repo_id": repo.repo_id, "repo_name": repo.repo_name, "path": entry.path, "language": lang,
            "content": text, "size": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), "source": repo.source,
        })
        out.counts["files"] += 1
        out.counts["bytes"] += len(raw)
        out.by_language[f"files/{lang}"] += 1
        out.by_language[f"bytes/{lang}"] += len(raw)
        kept += 1
    if kept == 0:
        out.drop("empty_repo", repo, None, "no usable file")
    else:
        out.counts["repos"] += 1


def ingest_sources(specs: list[dict], s: IngestSettings) -> IngestResult:
    """Ingest a list of source specs (one shard). Never raises for bad input; counts it."""
    out = IngestResult()
    cache = Path(s.cache_dir)
    for spec in specs:
        try:
            for repo, entries in expand(spec, cache):
                ingest_repo(repo, entries, s, out)
        except SourceError as e:
            out.drop(e.reason, None, None, f"{describe(spec)}: {e.detail}")
    return out
