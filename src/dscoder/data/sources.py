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
import subprocess
import sysconfig
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

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
    """One path in a repository. `read` returns the bytes; `skip` says why it can't be used."""

    path: str
    size: int | None = None
    read: Callable[[], bytes] | None = None
    skip: str | None = None
    detail: str | None = None


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


def walk_directory(root: Path) -> Iterator[Entry]:
    """Every file under `root`, sorted; symlinks are reported, never followed."""
    root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        base = Path(dirpath)
        links = [d for d in dirnames if (base / d).is_symlink()]
        for d in links:  # os.walk lists symlinked dirs but (followlinks=False) won't enter them
            dirnames.remove(d)
        for name in sorted(filenames + links):
            full = base / name
            rel = full.relative_to(root).as_posix()
            yield _fs_entry(full, rel, root)


def _fs_entry(full: Path, rel: str, root: Path) -> Entry:
    if full.is_symlink():
        target = Path(os.path.realpath(full))
        inside = target == root or root in target.parents
        return Entry(rel, skip="symlink" if inside else "symlink_escape", detail=os.readlink(full))
    try:
        st = full.stat()
    except OSError as e:
        return Entry(rel, skip="unreadable", detail=str(e))
    if not full.is_file():
        return Entry(rel, skip="special_file")
    return Entry(rel, size=st.st_size, read=lambda p=full: p.read_bytes())


def _dir_repo(root: Path, key: str, name: str, source: str) -> tuple[RepoRef, Iterator[Entry]]:
    if not root.is_dir():
        raise SourceError("missing_source", f"no such directory: {root}")
    return RepoRef(repo_id_for(key), name, source), walk_directory(root)


def expand_dir(spec: dict) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: dir, path, name?}`: one local directory is one repository."""
    root = Path(spec["path"]).expanduser()
    yield _dir_repo(root, spec_key(spec), spec.get("name") or root.resolve().name, f"dir:{spec['path']}")


def expand_dirs(spec: dict) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: dirs, path}`: every immediate subdirectory of `path` is a repository."""
    root = Path(spec["path"]).expanduser()
    if not root.is_dir():
        raise SourceError("missing_source", f"no such directory: {root}")
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        key = spec_key({**spec, "repo": sub.name})
        yield _dir_repo(sub, key, sub.name, f"dirs:{spec['path']}/{sub.name}")


# --------------------------------------------------------------------------- archives


def archive_entries(data_path: Path, strip_root: bool = True) -> Iterator[Entry]:
    """Members of a tar (any compression) or zip archive, sorted by path.

    Unsafe member names, links and special files are reported. A broken archive raises
    SourceError("broken_archive") before anything is yielded, so a repository is never
    half-read.
    """
    try:
        if zipfile.is_zipfile(data_path):
            members = list(_zip_members(data_path))
        else:
            members = list(_tar_members(data_path))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
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


def _tar_members(path: Path) -> Iterator[Entry]:
    with tarfile.open(path, "r:*") as tf:
        for ti in tf:  # iterating reads the whole stream: truncation raises here
            rel = safe_relpath(ti.name)
            if rel is None:
                yield Entry(ti.name, skip="unsafe_path", detail="absolute or '..' member name")
            elif ti.issym() or ti.islnk():
                yield Entry(rel, skip="symlink", detail=ti.linkname)
            elif ti.isdir():
                continue
            elif not ti.isfile():
                yield Entry(rel, skip="special_file")
            elif ti.size > 0:
                f = tf.extractfile(ti)
                data = f.read() if f is not None else b""
                if len(data) != ti.size:
                    raise EOFError(f"truncated member {ti.name}")
                yield Entry(rel, size=ti.size, read=lambda d=data: d)
            else:
                yield Entry(rel, size=0, read=lambda: b"")


def _zip_members(path: Path) -> Iterator[Entry]:
    with zipfile.ZipFile(path) as zf:
        for zi in zf.infolist():
            rel = safe_relpath(zi.filename)
            if zi.is_dir():
                continue
            if rel is None:
                yield Entry(zi.filename, skip="unsafe_path", detail="absolute or '..' member name")
                continue
            mode = (zi.external_attr >> 16) & 0o170000
            if mode == 0o120000:
                yield Entry(rel, skip="symlink")
                continue
            data = zf.read(zi)  # checks the CRC: corruption raises BadZipFile
            yield Entry(rel, size=zi.file_size, read=lambda d=data: d)


def expand_archive(spec: dict) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: archive, path, name?}`: a tar/zip file is one repository."""
    path = Path(spec["path"]).expanduser()
    if not path.is_file():
        raise SourceError("missing_source", f"no such archive: {path}")
    name = spec.get("name") or path.name.split(".")[0]
    entries = list(archive_entries(path, spec.get("strip_root", True)))
    yield RepoRef(repo_id_for(spec_key(spec)), name, f"archive:{spec['path']}"), iter(entries)


# --------------------------------------------------------------------------- git


def expand_git(spec: dict) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: git, url, rev?, name?}`: clone (local path or URL), check out `rev`, read tracked files."""
    url, rev = spec["url"], spec.get("rev")
    tmp = Path(tempfile.mkdtemp(prefix="dscoder-git-"))
    try:
        cmd = ["git", "clone", "--quiet", "--no-hardlinks"]
        if rev is None:
            cmd += ["--depth", "1"]
        _run(cmd + [url, str(tmp / "repo")], "git clone")
        repo = tmp / "repo"
        if rev is not None:
            _run(["git", "-C", str(repo), "checkout", "--quiet", rev], "git checkout")
        sha = _run(["git", "-C", str(repo), "rev-parse", "HEAD"], "git rev-parse").strip()
        listed = _run(["git", "-C", str(repo), "ls-files", "-z"], "git ls-files").split("\0")
        entries = []
        for rel in sorted(p for p in listed if p):
            e = _fs_entry(repo / rel, rel, repo.resolve())
            if e.read is not None:
                data = e.read()  # read now: the clone is deleted when we return
                e.read = lambda d=data: d
            entries.append(e)
        name = spec.get("name") or url.rstrip("/").split("/")[-1].removesuffix(".git")
        yield RepoRef(repo_id_for(spec_key(spec)), name, f"git:{url}@{sha}"), iter(entries)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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


def expand_pypi_sdist(spec: dict, cache_dir: Path) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
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
    entries = list(archive_entries(archive))
    yield RepoRef(repo_id_for(spec_key(spec)), req.split("==")[0], f"pypi_sdist:{req}"), iter(entries)


def expand_npm(spec: dict, cache_dir: Path) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: npm, spec: "name@version"}`: a package tarball via `npm pack`."""
    req = spec["spec"]
    if shutil.which("npm") is None:
        raise SourceError("fetch_failed", "npm is not installed")

    def fetch(tmp: Path) -> None:
        _run(["npm", "pack", "--silent", "--pack-destination", str(tmp), req], "npm pack", cwd=tmp)

    archive = _cached_download(spec, cache_dir, fetch)
    entries = list(archive_entries(archive))
    name = req.rsplit("@", 1)[0] if req.rfind("@") > 0 else req
    yield RepoRef(repo_id_for(spec_key(spec)), name, f"npm:{req}"), iter(entries)


def expand_stack_parquet(spec: dict) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """`{type: stack_parquet, path, repo_column?, path_column?, content_column?}`: The Stack layout.

    Defaults follow The Stack v1 (`max_stars_repo_name`, `max_stars_repo_path`, `content`);
    every distinct repository name becomes one repository.
    """
    import pyarrow.parquet as pq

    path = Path(spec["path"]).expanduser()
    if not path.is_file():
        raise SourceError("missing_source", f"no such Parquet file: {path}")
    cols = (spec.get("repo_column", "max_stars_repo_name"), spec.get("path_column", "max_stars_repo_path"),
            spec.get("content_column", "content"))
    try:
        table = pq.read_table(path, columns=list(cols))
    except Exception as e:  # pyarrow raises several types for bad files and missing columns
        raise SourceError("broken_archive", f"{path.name}: {e}") from e
    by_repo: dict[str, list[Entry]] = {}
    for repo, rel, content in zip(*(table.column(c).to_pylist() for c in cols)):
        safe = safe_relpath(rel or "")
        data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else (content or b"")
        e = Entry(rel, skip="unsafe_path") if safe is None else Entry(safe, size=len(data), read=lambda d=data: d)
        by_repo.setdefault(repo or "", []).append(e)
    for repo in sorted(by_repo):
        key = spec_key({**spec, "repo": repo})
        yield RepoRef(repo_id_for(key), repo, f"stack_parquet:{spec['path']}#{repo}"), iter(sorted(by_repo[repo], key=lambda e: e.path))


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
        raise ValueError(f"{where}: a source must be a mapping with a 'type' key, got {spec!r}")
    kind = spec["type"]
    if kind not in SOURCE_TYPES:
        raise ValueError(f"{where}.type: unknown source type {kind!r}; expected one of {sorted(SOURCE_TYPES)}")
    need = _REQUIRED[kind]
    if not isinstance(spec.get(need), str) or not spec[need]:
        raise ValueError(f"{where}.{need}: required for a {kind!r} source")


def expand(spec: dict, cache_dir: Path) -> Iterator[tuple[RepoRef, Iterator[Entry]]]:
    """Expand one spec into repositories. Raises SourceError when the source is unusable."""
    fn = SOURCE_TYPES[spec["type"]]
    if spec["type"] in ("pypi_sdist", "npm"):
        return fn(spec, cache_dir)
    return fn(spec)


def describe(spec: dict) -> str:
    """A short human label for a spec, for audits of sources that failed before expanding."""
    return f"{spec.get('type')}:" + str(spec.get(_REQUIRED.get(spec.get("type"), "path"), "?"))


