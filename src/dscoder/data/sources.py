"""Where repositories come from: each source spec expands to repositories of raw entries.

A source spec is a mapping with a `type` key (see `SOURCE_TYPES`). Each source yields
`(RepoRef, entries)` pairs; an entry is one path inside the repository with a way to read
its bytes, or the reason it cannot be read (unsafe path, symlink, broken archive ...).
Sources never decide what is code: `dscoder.data.ingest` does.

Repository ids are derived from the spec as the user wrote it (not from machine paths or
resolved versions), so the same params name the same repositories on every machine.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import posixpath
import shutil
import stat
import subprocess
import sysconfig
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from dscoder.config import ConfigError

#: Directories that are never repository content (VCS internals and byte-code caches).
IGNORED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".dvc", ".mypy_cache", ".pytest_cache"})


class SourceError(Exception):
    """A whole source could not be used; `reason` is a short rule id for the audit."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class RepoRef:
    repo_id: str
    repo_name: str
    source: str  # canonical description of where it came from (with resolved versions)


@dataclass
class Entry:
    """One path in a repository. `read(limit)` returns the bytes (at most `limit + 1` of them
    when a limit is given, so a caller can tell "too large" without reading the rest);
    `skip` says why it can't be used."""

    path: str
    size: int | None = None
    read: Callable[..., bytes] | None = None
    skip: str | None = None
    detail: str | None = None
    links: int = 1
    """Hard links to the file (st_nlink): above 1 the same bytes may live outside the repository."""


def read_file(path: Path, limit: int | None = None) -> bytes:
    """A file's bytes, or its first `limit + 1` bytes: never more than the cap needs."""
    with open(path, "rb") as f:
        return f.read() if limit is None else f.read(limit + 1)


def _bytes_reader(data: bytes) -> Callable[..., bytes]:
    return lambda limit=None: data if limit is None else data[: limit + 1]


def spec_key(spec: dict[str, Any]) -> str:
    """A canonical string for a spec: sorted JSON of its keys."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def repo_id_for(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def safe_relpath(name: str) -> str | None:
    """Normalise an archive/RECORD member name; None if it is absolute or escapes upward."""
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../") or norm.startswith("/"):
        return None
    return norm


# --------------------------------------------------------------------------- directories


def name_problem(name: str) -> str | None:
    """Why a path cannot be a file name in the corpus, or None: bytes that are not UTF-8 (they
    reach Python as lone surrogates) or control characters (a newline would split the path
    header line of a repository document)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "control character"
    return None


def printable_name(name: str) -> str:
    """A name as the audit shows it: undecodable bytes as \\xNN, control characters escaped."""
    raw = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if 32 <= ord(c) != 127 else c.encode("unicode_escape").decode("ascii") for c in raw)


def bad_name_entry(rel: str) -> Entry | None:
    problem = name_problem(rel)
    return None if problem is None else Entry(printable_name(rel), skip="bad_name", detail=problem)


def walk_directory(root: Path) -> Iterator[Entry]:
    """Every file under `root`, sorted; symlinks are reported, never followed; names that are
    not UTF-8 or hold control characters are reported (`bad_name`) and not read."""
    root = root.resolve()
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=errors.append):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        base = Path(dirpath)
        links = [d for d in dirnames if _is_symlink(base / d)]
        for d in links:  # os.walk lists symlinked dirs but (followlinks=False) won't enter them
            dirnames.remove(d)
        for name in sorted(filenames + links):
            full = base / name
            rel = full.relative_to(root).as_posix()
            yield bad_name_entry(rel) or _fs_entry(full, rel, root)
        yield from _walk_errors(errors, root)
    yield from _walk_errors(errors, root)


def _walk_errors(errors: list[OSError], root: Path) -> Iterator[Entry]:
    """Folders that could not be listed (permissions, a path longer than PATH_MAX)."""
    for e in errors:
        rel = os.path.relpath(e.filename, root) if e.filename else "."
        yield Entry(printable_name(rel), skip="unreadable", detail=f"{type(e).__name__}: {e.strerror}")
    errors.clear()


def _is_symlink(p: Path) -> bool:
    try:
        return p.is_symlink()
    except OSError:
        return False


def _fs_entry(full: Path, rel: str, root: Path) -> Entry:
    try:
        if full.is_symlink():
            target = Path(os.path.realpath(full))
            inside = target == root or root in target.parents
            return Entry(rel, skip="symlink" if inside else "symlink_escape", detail=printable_name(os.readlink(full)))
        st = full.stat()
    except OSError as e:  # e.g. a path longer than PATH_MAX
        return Entry(rel, skip="unreadable", detail=f"{type(e).__name__}: {e.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return Entry(rel, skip="special_file")
    if st.st_nlink > 1:
        # a hard link: the same bytes as a file that may live outside the repository
        return Entry(rel, size=st.st_size, read=lambda limit=None, p=full: read_file(p, limit),
                     links=st.st_nlink)
    return Entry(rel, size=st.st_size, read=lambda limit=None, p=full: read_file(p, limit))


def _dir_repo(root: Path, key: str, name: str, source: str) -> tuple[RepoRef, Iterator[Entry]]:
    if not root.is_dir():
        raise SourceError("missing_source", f"no such directory: {root}")
    return RepoRef(repo_id_for(key), name, source), walk_directory(root)


def expand_dir(spec: dict) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: dir, path, name?}`: one local directory is one repository."""
    root = Path(spec["path"]).expanduser()
    yield _dir_repo(root, spec_key(spec), spec.get("name") or root.resolve().name, f"dir:{spec['path']}")


def dirs_repos(spec: dict) -> list[str]:
    """The repository folders of a `dirs` source, sorted."""
    root = Path(spec["path"]).expanduser()
    if not root.is_dir():
        raise SourceError("missing_source", f"no such directory: {root}")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink())


def dirs_strays(spec: dict) -> list[tuple[str, str, str]]:
    """(name, reason, detail) of what a `dirs` source holds besides repository folders: a
    symlinked folder is never followed, a top-level file belongs to no repository."""
    root = Path(spec["path"]).expanduser()
    out = []
    for p in sorted(root.iterdir()):
        if p.is_symlink():
            out.append((printable_name(p.name), "symlink", "a symlink at the top of a dirs source is not followed"))
        elif not p.is_dir():
            out.append((printable_name(p.name), "not_a_repository", "a file at the top of a dirs source"))
    return out


def expand_dirs(spec: dict, only: str | None = None) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: dirs, path}`: every immediate subdirectory of `path` is a repository (`only`:
    just that one, so one source's repositories can spread over many workers)."""
    root = Path(spec["path"]).expanduser()
    for name in [only] if only is not None else dirs_repos(spec):
        key = spec_key({**spec, "repo": name})
        yield _dir_repo(root / name, key, name, f"dirs:{spec['path']}/{name}")


# --------------------------------------------------------------------------- archives


#: Bytes copied at a time while extracting an archive member.
_CHUNK = 1 << 20


def archive_entries(data_path: Path, strip_root: bool = True, max_member_bytes: int | None = None) -> Iterator[Entry]:
    """Members of a tar (any compression) or zip archive, sorted by path.

    The archive is extracted first, member by member, into a scratch folder; each member is
    copied in chunks and abandoned as `too_large` as soon as it passes `max_member_bytes`
    (never decompressed whole: a zip bomb costs one chunk of memory). Unsafe member names,
    links and special files are reported. A broken archive raises
    SourceError("broken_archive") before anything is yielded, so a repository is never
    half-read. The scratch folder lives as long as an entry that reads from it.
    """
    scratch = tempfile.TemporaryDirectory(prefix="dscoder-archive-")  # removed when the last entry is dropped
    try:
        if zipfile.is_zipfile(data_path):
            members = _zip_extract(data_path, scratch, max_member_bytes)
        else:
            members = _tar_extract(data_path, scratch, max_member_bytes)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as e:
        scratch.cleanup()
        raise SourceError("broken_archive", f"{data_path.name}: {type(e).__name__}: {e}") from e
    names = [m.path for m in members if m.skip is None]
    prefix = _common_root(names) if strip_root else ""
    for m in sorted(members, key=lambda m: m.path):
        if prefix and m.skip != "unsafe_path" and m.path.startswith(prefix):
            m.path = m.path[len(prefix):]
        yield m


def _common_root(names: list[str]) -> str:
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1 and all("/" in n for n in names):
        return tops.pop() + "/"
    return ""


def _copy_capped(src, dest: Path, limit: int | None) -> int | None:
    """Copy a stream to `dest` in chunks; None (and nothing kept) once it passes `limit`."""
    n = 0
    with open(dest, "wb") as out:
        while chunk := src.read(_CHUNK):
            n += len(chunk)
            if limit is not None and n > limit:
                break
            out.write(chunk)
    if limit is not None and n > limit:
        dest.unlink()
        return None
    return n


def _extracted(rel: str, scratch: tempfile.TemporaryDirectory, index: int, src, limit: int | None,
               declared: int) -> Entry:
    dest = Path(scratch.name) / f"{index:08d}"
    n = _copy_capped(src, dest, limit)
    if n is None:
        return Entry(rel, size=max(declared, (limit or 0) + 1), skip="too_large",
                     detail=f"more than {limit} bytes when decompressed")
    return Entry(rel, size=n, read=lambda lim=None, p=dest, keep=scratch: read_file(p, lim))


def _tar_extract(path: Path, scratch: tempfile.TemporaryDirectory, limit: int | None) -> list[Entry]:
    out: list[Entry] = []
    with tarfile.open(path, "r:*") as tf:
        for i, ti in enumerate(tf):  # iterating reads the whole stream: truncation raises here
            rel = safe_relpath(ti.name)
            if rel is None:
                out.append(Entry(printable_name(ti.name), skip="unsafe_path", detail="absolute or '..' member name"))
            elif bad_name_entry(rel) is not None:
                out.append(bad_name_entry(rel))
            elif ti.issym() or ti.islnk():
                out.append(Entry(rel, skip="symlink", detail=ti.linkname))
            elif ti.isdir():
                continue
            elif not ti.isfile():
                out.append(Entry(rel, skip="special_file"))
            elif limit is not None and ti.size > limit:
                out.append(Entry(rel, size=ti.size, skip="too_large"))  # the stream skips its bytes unread
            else:
                f = tf.extractfile(ti)
                e = _extracted(rel, scratch, i, f, limit, ti.size)
                if e.skip is None and e.size != ti.size:
                    raise EOFError(f"truncated member {ti.name}")
                out.append(e)
    return out


def _zip_extract(path: Path, scratch: tempfile.TemporaryDirectory, limit: int | None) -> list[Entry]:
    out: list[Entry] = []
    with zipfile.ZipFile(path) as zf:
        for i, zi in enumerate(zf.infolist()):
            rel = safe_relpath(zi.filename)
            if zi.is_dir():
                continue
            if rel is None:
                out.append(Entry(printable_name(zi.filename), skip="unsafe_path", detail="absolute or '..' member name"))
                continue
            if bad_name_entry(rel) is not None:
                out.append(bad_name_entry(rel))
                continue
            mode = (zi.external_attr >> 16) & 0o170000
            if mode == 0o120000:
                out.append(Entry(rel, skip="symlink"))
            elif limit is not None and zi.file_size > limit:
                out.append(Entry(rel, size=zi.file_size, skip="too_large"))
            else:
                with zf.open(zi) as f:  # reading to the end checks the CRC: corruption raises BadZipFile
                    out.append(_extracted(rel, scratch, i, f, limit, zi.file_size))
    return out


def expand_archive(spec: dict, limit: int | None = None) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: archive, path, name?}`: a tar/zip file is one repository."""
    path = Path(spec["path"]).expanduser()
    if not path.is_file():
        raise SourceError("missing_source", f"no such archive: {path}")
    name = spec.get("name") or path.name.split(".")[0]
    yield RepoRef(repo_id_for(spec_key(spec)), name, f"archive:{spec['path']}"), \
        _checked(archive_entries(path, spec.get("strip_root", True), limit))


def _checked(entries: Iterator[Entry]) -> Iterator[Entry]:
    """Extract (and check) the whole archive before the repository is used, then stream it."""
    first = next(entries, None)
    return _chain(first, entries)


def _chain(first: Entry | None, rest: Iterator[Entry]) -> Iterator[Entry]:
    if first is not None:
        yield first
        yield from rest


# --------------------------------------------------------------------------- git


def expand_git(spec: dict) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: git, url, rev?, name?}`: clone (local path or URL), check out `rev`, read tracked files.

    Files are read lazily from the clone, which is removed once no entry refers to it."""
    url, rev = spec["url"], spec.get("rev")
    clone = tempfile.TemporaryDirectory(prefix="dscoder-git-")
    try:
        cmd = ["git", "clone", "--quiet", "--no-hardlinks"]
        if rev is None:
            cmd += ["--depth", "1"]
        repo = Path(clone.name) / "repo"
        _run(cmd + [url, str(repo)], "git clone")
        if rev is not None:
            _run(["git", "-C", str(repo), "checkout", "--quiet", rev], "git checkout")
        sha = _run(["git", "-C", str(repo), "rev-parse", "HEAD"], "git rev-parse").strip()
        listed = _run(["git", "-C", str(repo), "ls-files", "-z"], "git ls-files").split("\0")
    except BaseException:
        clone.cleanup()
        raise
    entries = [_fs_entry(repo / rel, rel, repo.resolve()) for rel in sorted(p for p in listed if p)]
    for e in entries:
        if e.read is not None:
            e.read = lambda limit=None, r=e.read, keep=clone: r(limit)
    name = spec.get("name") or url.rstrip("/").split("/")[-1].removesuffix(".git")
    yield RepoRef(repo_id_for(spec_key(spec)), name, f"git:{url}@{sha}"), iter(entries)


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SourceError("fetch_failed", f"{what}: {e}") from e
    if out.returncode != 0:
        raise SourceError("fetch_failed", f"{what}: {out.stderr.strip()[-500:]}")
    return out.stdout


# --------------------------------------------------------------------------- Python


def expand_python_dist(spec: dict) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: python_dist, name, subdir?, repo_name?}`: an installed distribution's files.

    Files come from the distribution's RECORD. With `subdir` (e.g. `pip/_vendor/rich`), only
    files under it are taken and paths are made relative to its parent, so a vendored copy
    keeps the layout of the library it copies.
    """
    try:
        dist = md.distribution(spec["name"])
    except md.PackageNotFoundError as e:
        raise SourceError("missing_source", f"python distribution not installed: {spec['name']}") from e
    subdir = spec.get("subdir")
    base = posixpath.dirname(subdir.rstrip("/")) + "/" if subdir and "/" in subdir else ""
    entries: list[Entry] = []
    for f in sorted(dist.files or [], key=str):
        name = str(f).replace("\\", "/")
        rel = safe_relpath(name)
        if subdir and not (rel or name).startswith(subdir.rstrip("/") + "/"):
            continue
        if rel is None:
            entries.append(Entry(name, skip="unsafe_path", detail="RECORD entry outside the distribution"))
            continue
        if any(part in IGNORED_DIRS for part in rel.split("/")):
            continue
        full = Path(dist.locate_file(f))
        root = Path(dist.locate_file("")).resolve()
        entries.append(_fs_entry(full, rel[len(base):] if base else rel, root))
    if subdir and not entries:
        raise SourceError("missing_source", f"{spec['name']} has no files under {subdir}")
    name = spec.get("repo_name") or (f"{dist.metadata['Name']}:{subdir}" if subdir else dist.metadata["Name"])
    source = f"python_dist:{dist.metadata['Name']}=={dist.version}" + (f"/{subdir}" if subdir else "")
    yield RepoRef(repo_id_for(spec_key(spec)), name, source), iter(entries)


def expand_stdlib(spec: dict) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: stdlib, name}`: a standard-library package or module of the running Python."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    name = spec["name"]
    version = sysconfig.get_python_version()
    key = spec_key(spec)
    if (stdlib / name).is_dir():
        yield RepoRef(repo_id_for(key), f"stdlib/{name}", f"stdlib:{name}@{version}"), walk_directory(stdlib / name)
    elif (stdlib / f"{name}.py").is_file():
        f = stdlib / f"{name}.py"
        yield RepoRef(repo_id_for(key), f"stdlib/{name}", f"stdlib:{name}@{version}"), iter([_fs_entry(f, f.name, stdlib)])
    else:
        raise SourceError("missing_source", f"no standard-library module {name!r}")


def expand_sysconfig(spec: dict) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: sysconfig, key, name?}`: a directory of the running Python, e.g. `include`."""
    paths = sysconfig.get_paths()
    if spec["key"] not in paths:
        raise SourceError("missing_source", f"sysconfig has no path {spec['key']!r}")
    version = sysconfig.get_python_version()
    name = spec.get("name") or f"python{version}-{spec['key']}"
    yield _dir_repo(Path(paths[spec["key"]]), spec_key(spec), name, f"sysconfig:{spec['key']}@{version}")


# --------------------------------------------------------------------------- package registries


def _cached_download(spec: dict, cache_dir: Path, fetch: Callable[[Path], None]) -> Path:
    """Download once into `cache_dir/<key hash>/` (atomically); later runs read the cache."""
    dest = cache_dir / repo_id_for(spec_key(spec))
    if not dest.is_dir():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".dl-", dir=cache_dir))
        try:
            fetch(tmp)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    files = sorted(p for p in dest.iterdir() if p.is_file())
    if len(files) != 1:
        raise SourceError("fetch_failed", f"expected one archive in {dest}, found {len(files)}")
    return files[0]


def expand_pypi_sdist(spec: dict, cache_dir: Path, limit: int | None = None) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: pypi_sdist, spec: "name==version", index_url?, find_links?}`: a source distribution via pip."""
    req = spec["spec"]
    if "==" not in req:
        raise SourceError("bad_source", f"pypi_sdist needs an exact 'name==version', got {req!r}")

    def fetch(tmp: Path) -> None:
        cmd = [os.environ.get("DSCODER_PIP", "pip"), "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               "--no-build-isolation", "--dest", str(tmp)]
        if spec.get("find_links"):
            cmd += ["--no-index", "--find-links", spec["find_links"]]
        elif spec.get("index_url"):
            cmd += ["--index-url", spec["index_url"]]
        _run(cmd + [req], "pip download")

    archive = _cached_download(spec, cache_dir, fetch)
    entries = _checked(archive_entries(archive, max_member_bytes=limit))
    yield RepoRef(repo_id_for(spec_key(spec)), req.split("==")[0], f"pypi_sdist:{req}"), entries


def expand_npm(spec: dict, cache_dir: Path, limit: int | None = None) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: npm, spec: "name@version"}`: a package tarball via `npm pack`."""
    req = spec["spec"]
    if shutil.which("npm") is None:
        raise SourceError("fetch_failed", "npm is not installed")

    def fetch(tmp: Path) -> None:
        _run(["npm", "pack", "--silent", "--pack-destination", str(tmp), req], "npm pack", cwd=tmp)

    archive = _cached_download(spec, cache_dir, fetch)
    entries = _checked(archive_entries(archive, max_member_bytes=limit))
    name = req.rsplit("@", 1)[0] if req.rfind("@") > 0 else req
    yield RepoRef(repo_id_for(spec_key(spec)), name, f"npm:{req}"), entries


def _stack_columns(spec: dict) -> tuple[str, str, str]:
    return (spec.get("repo_column", "max_stars_repo_name"), spec.get("path_column", "max_stars_repo_path"),
            spec.get("content_column", "content"))


def _stack_file(spec: dict):
    import pyarrow.parquet as pq

    path = Path(spec["path"]).expanduser()
    if not path.is_file():
        raise SourceError("missing_source", f"no such Parquet file: {path}")
    try:
        pf = pq.ParquetFile(path)
        missing = [c for c in _stack_columns(spec) if c not in pf.schema_arrow.names]
    except Exception as e:  # pyarrow raises several types for bad files
        raise SourceError("broken_archive", f"{path.name}: {e}") from e
    if missing:
        raise SourceError("broken_archive", f"{path.name}: no column {missing[0]!r}")
    return pf


def stack_repos(spec: dict) -> list[tuple[str, tuple[int, ...], int]]:
    """(repository, its rows, its content bytes) of a The Stack-layout Parquet file, by name,
    streaming over the repository and content columns one row group at a time."""
    import pyarrow.compute as pc

    pf = _stack_file(spec)
    repo_col, _, content_col = _stack_columns(spec)
    rows: dict[str, list[int]] = {}
    nbytes: dict[str, int] = {}
    first = 0
    try:
        for i in range(pf.metadata.num_row_groups):
            t = pf.read_row_group(i, columns=[repo_col, content_col])
            sizes = pc.fill_null(pc.binary_length(t.column(content_col)), 0).to_pylist()
            for j, (repo, n) in enumerate(zip(t.column(repo_col).to_pylist(), sizes)):
                rows.setdefault(repo, []).append(first + j)  # None: no repository (ingest audits it)
                nbytes[repo] = nbytes.get(repo, 0) + n
            first += t.num_rows
    except Exception as e:
        raise SourceError("broken_archive", f"{Path(spec['path']).name}: {e}") from e
    return [(r, tuple(rows[r]), nbytes[r]) for r in sorted(rows, key=lambda r: (r is not None, r or ""))]


def expand_stack_parquet(spec: dict, only: str | None = None,
                         rows: tuple[int, ...] | None = None) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: stack_parquet, path, repo_column?, path_column?, content_column?}`: The Stack layout.

    Defaults follow The Stack v1 (`max_stars_repo_name`, `max_stars_repo_path`, `content`);
    every distinct repository name becomes one repository. With `only`/`rows` (from
    `stack_repos`), just that repository, reading only the row groups that hold its rows.
    """
    if only is None:
        for name, name_rows, _ in stack_repos(spec):
            yield from expand_stack_parquet(spec, name, name_rows)
        return
    pf = _stack_file(spec)
    cols = _stack_columns(spec)
    starts, first = [], 0
    for i in range(pf.metadata.num_row_groups):
        starts.append(first)
        first += pf.metadata.row_group(i).num_rows
    entries: list[Entry] = []
    wanted = sorted(rows or ())
    k = 0
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else first
        local = []
        while k < len(wanted) and wanted[k] < stop:
            local.append(wanted[k] - start)
            k += 1
        if not local:
            continue
        t = pf.read_row_group(i, columns=list(cols)).take(local)
        for rel, content in zip(t.column(cols[1]).to_pylist(), t.column(cols[2]).to_pylist()):
            if rel is None:
                entries.append(Entry("", skip="unsafe_path", detail="null path"))
                continue
            safe = safe_relpath(rel)
            data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else (content or b"")
            if safe is None:
                entries.append(Entry(printable_name(rel), skip="unsafe_path"))
            else:
                entries.append(bad_name_entry(safe) or Entry(safe, size=len(data), read=_bytes_reader(data)))
    key = spec_key({**spec, "repo": only})
    yield RepoRef(repo_id_for(key), only, f"stack_parquet:{spec['path']}#{only}"), iter(sorted(entries, key=lambda e: e.path))


SOURCE_TYPES: dict[str, Callable[..., Iterator[tuple[RepoRef, Iterator[Entry]]]]] = {
    "dir": expand_dir,
    "dirs": expand_dirs,
    "archive": expand_archive,
    "git": expand_git,
    "python_dist": expand_python_dist,
    "stdlib": expand_stdlib,
    "sysconfig": expand_sysconfig,
    "pypi_sdist": expand_pypi_sdist,
    "npm": expand_npm,
    "stack_parquet": expand_stack_parquet,
}
_REQUIRED = {"dir": "path", "dirs": "path", "archive": "path", "git": "url", "python_dist": "name", "stdlib": "name",
             "sysconfig": "key", "pypi_sdist": "spec", "npm": "spec", "stack_parquet": "path"}


def check_spec(spec: Any, where: str) -> None:
    """Fail fast on a malformed source spec, naming the parameter."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConfigError(f"{where}: a source must be a mapping with a 'type' key, got {spec!r}")
    kind = spec["type"]
    if kind not in SOURCE_TYPES:
        raise ConfigError(f"{where}.type: unknown source type {kind!r}; expected one of {sorted(SOURCE_TYPES)}")
    need = _REQUIRED[kind]
    if not isinstance(spec.get(need), str) or not spec[need]:
        raise ConfigError(f"{where}.{need}: required for a {kind!r} source")
    for key, value in spec.items():
        if isinstance(value, str) and name_problem(value) == "not valid UTF-8":
            raise ConfigError(f"{where}.{key}: not valid UTF-8 ({printable_name(value)}); name the path in UTF-8")


def expand(spec: dict, cache_dir: Path, *, limit: int | None = None, only: str | None = None,
           rows: tuple[int, ...] | None = None) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """Expand one spec into repositories. Raises SourceError when the source is unusable.

    `limit`: archive members are abandoned as too_large once they pass it while being
    decompressed. `only` (and `rows`): one repository of a `dirs` / `stack_parquet` source."""
    kind = spec["type"]
    fn = SOURCE_TYPES[kind]
    if kind in ("pypi_sdist", "npm"):
        return fn(spec, cache_dir, limit)
    if kind == "archive":
        return fn(spec, limit)
    if kind == "dirs":
        return fn(spec, only)
    if kind == "stack_parquet":
        return fn(spec, only, rows)
    return fn(spec)


def describe(spec: dict) -> str:
    """A short human label for a spec, for audits of sources that failed before expanding."""
    return f"{spec.get('type')}:" + str(spec.get(_REQUIRED.get(spec.get("type"), "path"), "?"))


