"""Ingestion: source specs → one row per usable file (schema `dscoder.schemas.FILES`).

Every entry that is not used is returned as an audit row with a reason, and counted:
unknown_language, too_large, binary, not_utf8, unreadable, symlink, symlink_escape,
unsafe_path, special_file (per file); missing_source, broken_archive, fetch_failed,
empty_repo (per source or repository).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata as md
import os
import stat
import sysconfig
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable

from dscoder.config import Settings, check
from dscoder.data.languages import detect_language
from dscoder.data.sources import (IGNORED_DIRS, Entry, RepoRef, SourceError, check_spec, describe, dirs_repos,
                                  dirs_strays, expand, name_problem, printable_name, stack_repos)
from dscoder.data.step import StepContext


@dataclass(frozen=True, kw_only=True)
class IngestSettings(Settings):
    section: ClassVar[str] = "ingest"

    sources: list[dict[str, Any]] = field(default_factory=list)
    """Source specs, each a mapping with a `type` (dir, dirs, archive, git, python_dist, stdlib,
    sysconfig, pypi_sdist, npm, stack_parquet); see README "Sources"."""
    max_file_bytes: int = 1_000_000
    """Files larger than this are skipped as too_large (before they are read)."""
    binary_sniff_bytes: int = 8192
    """A NUL byte within this many leading bytes marks a file as binary (as git does)."""
    cache_dir: str = ".cache/sources"
    """Where downloaded archives (pypi_sdist, npm) are kept so reruns need no network."""
    allow_hardlinks: bool = False
    """A file with more than one hard link may be the same bytes as a file outside the
    repository (a link to /etc/passwd, say): skipped as `hardlink` unless this is true."""

    def validate(self) -> None:
        check(isinstance(self.sources, list) and self.sources, "ingest.sources", "must be a non-empty list")
        for i, spec in enumerate(self.sources):
            check_spec(spec, f"ingest.sources[{i}]")
        check(self.max_file_bytes > 0, "ingest.max_file_bytes", "must be > 0")
        check(self.binary_sniff_bytes > 0, "ingest.binary_sniff_bytes", "must be > 0")


def read_entry(entry: Entry, s: IngestSettings) -> tuple[str | None, str | None, str | None, int | None]:
    """(text, language, skip_reason, size) for one entry. Reads at most max_file_bytes + 1."""
    if entry.skip:
        return None, None, entry.skip, entry.size
    lang = detect_language(entry.path)
    if lang is None:
        return None, None, "unknown_language", entry.size
    if entry.size is not None and entry.size > s.max_file_bytes:
        return None, lang, "too_large", entry.size
    if entry.links > 1 and not s.allow_hardlinks:
        return None, lang, "hardlink", entry.size
    try:
        data = entry.read(s.max_file_bytes)
    except OSError:
        return None, lang, "unreadable", entry.size
    if len(data) > s.max_file_bytes:  # a file that grew since it was listed
        return None, lang, "too_large", max(len(data), entry.size or 0)
    text = decode_text(data, s.binary_sniff_bytes)
    if not isinstance(text, str):
        return None, lang, text[0], len(data)
    if lang == "c" and entry.path.endswith(".h"):
        lang = detect_language(entry.path, text)  # C++ headers share the .h extension
    return text, lang, None, len(data)


def decode_text(data: bytes, sniff_bytes: int) -> str | tuple[str]:
    """The text of a file, or (reason,) when it is not text.

    UTF-16 with a byte-order mark is decoded; a UTF-8 byte-order mark is removed (it is not
    part of the code: Python, for one, would not compile the text with it). A NUL byte in the
    first `sniff_bytes` marks a file as binary (as git does); one anywhere else in a text
    that decodes is binary too (it would otherwise reach the corpus)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            return ("not_utf8",)
        return ("binary",) if "\0" in text else text.removeprefix("\ufeff")
    if b"\0" in data[:sniff_bytes]:
        return ("binary",)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ("not_utf8",)
    if "\0" in text:
        return ("binary",)
    return text.removeprefix("\ufeff")


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class RepoTask:
    """One unit of ingest work: a source, or one repository of a many-repository source."""

    spec: dict[str, Any]
    nbytes: int
    """Estimated input bytes (for planning only: it never changes the output)."""
    only: str | None = None
    """`dirs`: the repository folder; `stack_parquet`: the repository name."""
    rows: tuple[int, ...] | None = None
    """`stack_parquet`: the rows of that repository."""
    error: tuple[str, str, str | None] | None = None
    """(reason, detail, path) when the source, or this entry of it, failed while planned."""


#: Planning estimate for sources whose size is known only once fetched (git, pypi, npm).
UNKNOWN_SOURCE_BYTES = 1 << 20


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in IGNORED_DIRS]
        for name in filenames:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


def _source_bytes(spec: dict[str, Any]) -> int:
    kind = spec["type"]
    if kind == "dir":
        return _tree_bytes(Path(spec["path"]).expanduser())
    if kind == "archive":
        p = Path(spec["path"]).expanduser()
        return 3 * p.stat().st_size if p.is_file() else 0
    if kind == "python_dist":
        try:
            dist = md.distribution(spec["name"])
        except md.PackageNotFoundError:
            return 0
        sub = (spec.get("subdir") or "").rstrip("/")
        return sum(f.size or 0 for f in dist.files or [] if not sub or str(f).startswith(sub + "/"))
    if kind == "stdlib":
        p = Path(sysconfig.get_paths()["stdlib"]) / spec["name"]
        return _tree_bytes(p) if p.is_dir() else UNKNOWN_SOURCE_BYTES
    if kind == "sysconfig":
        p = sysconfig.get_paths().get(spec["key"])
        return _tree_bytes(Path(p)) if p else 0
    return UNKNOWN_SOURCE_BYTES


def plan_sources(specs: list[dict[str, Any]]) -> list[RepoTask]:
    """Expand the sources into units of work, in source order: one per repository for `dirs`
    and `stack_parquet` sources (so a source of many repositories spreads over every worker),
    one per source otherwise. Reads metadata only (names and sizes), never file contents."""
    tasks: list[RepoTask] = []
    for spec in specs:
        try:
            if spec["type"] == "dirs":
                tasks += _plan_dirs(spec)
            elif spec["type"] == "stack_parquet":
                for name, rows, n in stack_repos(spec):
                    if not name:
                        tasks.append(RepoTask(spec, 0, error=("no_repository", f"{describe(spec)}: {len(rows)} "
                                                              "files with a null or empty repository name", None)))
                    else:
                        tasks.append(RepoTask(spec, n, only=name, rows=rows))
            else:
                tasks.append(RepoTask(spec, _source_bytes(spec)))
        except SourceError as e:
            tasks.append(RepoTask(spec, 0, error=(e.reason, f"{describe(spec)}: {e.detail}", None)))
    return tasks


def _plan_dirs(spec: dict[str, Any]) -> list[RepoTask]:
    root = Path(spec["path"]).expanduser()
    names = dirs_repos(spec)
    tasks = [RepoTask(spec, 0, error=(reason, detail, name)) for name, reason, detail in dirs_strays(spec)]
    for name in names:
        problem = name_problem(name)
        if problem is not None:
            tasks.append(RepoTask(spec, 0, error=("bad_name", f"repository folder name: {problem}",
                                                  printable_name(name))))
        else:
            tasks.append(RepoTask(spec, _tree_bytes(root / name), only=name))
    return tasks


# --------------------------------------------------------------------------- ingesting


def _file_row(repo: RepoRef, path: str, lang: str, text: str) -> dict[str, Any]:
    raw = text.encode("utf-8")
    return {"repo_id": repo.repo_id, "repo_name": repo.repo_name, "path": path, "language": lang,
            "content": text, "size": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), "source": repo.source}


def ingest_repo(repo: RepoRef, entries: Iterable[Entry], s: IngestSettings, ctx: StepContext,
                batch_bytes: int) -> None:
    """Read one repository's entries, writing usable files in batches of about `batch_bytes`."""
    kept = 0
    rows: list[dict[str, Any]] = []
    held = 0
    for entry in entries:
        text, lang, reason, size = read_entry(entry, s)
        if reason is not None:
            ctx.count(("dropped", reason))
            ctx.audit(reason, repo_id=repo.repo_id, repo_name=repo.repo_name, path=entry.path, language=lang,
                      detail=entry.detail, size=size)
            continue
        row = _file_row(repo, entry.path, lang, text)
        rows.append(row)
        held += row["size"]
        ctx.count(("files",))
        ctx.count(("bytes",), row["size"])
        ctx.count(("language_files", lang))
        ctx.count(("language_bytes", lang), row["size"])
        kept += 1
        if held >= batch_bytes:
            ctx.write(rows)
            rows, held = [], 0
    ctx.write(rows)
    if kept == 0:
        ctx.count(("dropped", "empty_repo"))
        ctx.audit("empty_repo", repo_id=repo.repo_id, repo_name=repo.repo_name, detail="no usable file")
    else:
        ctx.count(("repos",))


def ingest_tasks(tasks: Iterable[RepoTask], s: IngestSettings, ctx: StepContext, batch_bytes: int) -> None:
    """Ingest units of work (one shard). Never raises for bad input; counts and audits it."""
    cache = Path(s.cache_dir)
    for t in tasks:
        if t.error is not None:
            ctx.count(("dropped", t.error[0]))
            ctx.audit(t.error[0], detail=t.error[1], path=t.error[2])
            continue
        try:
            for repo, entries in expand(t.spec, cache, limit=s.max_file_bytes, only=t.only, rows=t.rows):
                ingest_repo(repo, entries, s, ctx, batch_bytes)
        except SourceError as e:
            ctx.count(("dropped", e.reason))
            ctx.audit(e.reason, detail=f"{describe(t.spec)}: {e.detail}")


def ingest_shard(shard, tasks: list[RepoTask], s: IngestSettings, work: str, batch_bytes: int):
    """One shard of ingest's units of work, written as a part file under `work`; the
    `ShardResult` (part, audit part, counts) for the stage to join."""
    from dscoder.data.step import open_shard
    from dscoder.schemas import FILES

    sh = open_shard("ingest", FILES, work, shard)
    with sh as ctx:
        ingest_tasks(tasks, s, ctx, batch_bytes)
    return sh.result


@dataclass
class IngestResult:
    """Everything of a small ingest in memory (tests, benchmarks): files, audit rows, counts."""

    files: list[dict] = field(default_factory=list)
    audit: list[dict] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)


def ingest_sources(specs: list[dict], s: IngestSettings) -> IngestResult:
    """Ingest `specs` in this process and return everything in memory (for small inputs)."""
    import pyarrow.parquet as pq

    from dscoder.data.stream import Shard

    with tempfile.TemporaryDirectory(prefix="dscoder-ingest-") as work:
        r = ingest_shard(Shard(0, 0, 0, 0, 0), plan_sources(specs), s, work, 1 << 24)
        return IngestResult(pq.read_table(r.part).to_pylist(), pq.read_table(r.audit).to_pylist(), r.counts)
