"""Sources expand to repositories of entries; every unusable entry carries a reason."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dscoder.data.sources import SourceError, archive_entries, check_spec, expand, safe_relpath


def _repos(spec, tmp_path):
    return [(ref, list(entries)) for ref, entries in expand(spec, tmp_path / "cache")]


def _by_path(entries):
    return {e.path: e for e in entries}


def test_safe_relpath_rejects_absolute_and_parent_paths():
    assert safe_relpath("a/./b.py") == "a/b.py"
    assert safe_relpath("/etc/passwd") is None
    assert safe_relpath("../x") is None
    assert safe_relpath("a/../../x") is None
    assert safe_relpath("C:/x") is None


def test_directory_walk_reports_symlinks_and_never_follows_them(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "a.py").write_text("x = 1\n")
    (repo / "__pycache__").mkdir()
    (repo / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    outside = tmp_path / "secret.py"
    outside.write_text("TOKEN = 'x'\n")
    (repo / "escape.py").symlink_to(outside)
    (repo / "inside.py").symlink_to(repo / "pkg" / "a.py")
    (repo / "linkdir").symlink_to(tmp_path)  # a directory link out of the repo
    [(ref, entries)] = _repos({"type": "dir", "path": str(repo)}, tmp_path)
    got = _by_path(entries)
    assert sorted(got) == ["escape.py", "inside.py", "linkdir", "pkg/a.py"]
    assert got["escape.py"].skip == "symlink_escape"
    assert got["linkdir"].skip == "symlink_escape"
    assert got["inside.py"].skip == "symlink"
    assert got["pkg/a.py"].read() == b"x = 1\n"
    assert ref.repo_name == "repo"


def test_repo_id_depends_on_the_spec_not_the_machine(tmp_path):
    (tmp_path / "r").mkdir()
    a = _repos({"type": "dir", "path": str(tmp_path / "r")}, tmp_path)[0][0]
    b = _repos({"type": "dir", "path": str(tmp_path / "r")}, tmp_path)[0][0]
    c = _repos({"type": "dir", "path": str(tmp_path / "r"), "name": "other"}, tmp_path)[0][0]
    assert a.repo_id == b.repo_id != c.repo_id


def _tar(path: Path, members: dict[str, bytes], mode="w:gz", link: tuple[str, str] | None = None):
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        if link:
            ti = tarfile.TarInfo(link[0])
            ti.type = tarfile.SYMTYPE
            ti.linkname = link[1]
            tf.addfile(ti)


def test_tar_archive_unsafe_members_and_links_are_reported(tmp_path):
    arc = tmp_path / "proj-1.0.tar.gz"
    _tar(arc, {"proj-1.0/a.py": b"a = 1\n", "proj-1.0/../../evil.py": b"x", "/abs.py": b"y"},
         link=("proj-1.0/l.py", "/etc/passwd"))
    entries = _by_path(archive_entries(arc))
    assert entries["a.py"].read() == b"a = 1\n"  # the single top-level folder is stripped
    assert entries["proj-1.0/../../evil.py"].skip == "unsafe_path"
    assert entries["/abs.py"].skip == "unsafe_path"
    assert entries["l.py"].skip == "symlink"


def test_zip_archive_with_unsafe_member(tmp_path):
    arc = tmp_path / "p.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("p/x.js", "let x = 1;\n")
        zf.writestr("../up.js", "bad")
    entries = _by_path(archive_entries(arc))
    assert entries["x.js"].read() == b"let x = 1;\n" or entries["p/x.js"].read() == b"let x = 1;\n"
    assert entries["../up.js"].skip == "unsafe_path"


def test_broken_archive_raises_broken_archive(tmp_path):
    arc = tmp_path / "b.tar.gz"
    _tar(arc, {"p/a.py": os.urandom(20000).hex().encode()})
    arc.write_bytes(arc.read_bytes()[:200])  # truncated download
    with pytest.raises(SourceError) as e:
        list(archive_entries(arc))
    assert e.value.reason == "broken_archive"
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SourceError):
        _repos({"type": "archive", "path": str(junk)}, tmp_path)


def test_missing_sources_raise_missing_source(tmp_path):
    for spec in ({"type": "dir", "path": str(tmp_path / "nope")}, {"type": "archive", "path": str(tmp_path / "x.tar")},
                 {"type": "python_dist", "name": "no-such-dist-xyz"}, {"type": "stdlib", "name": "no_such_mod"}):
        with pytest.raises(SourceError) as e:
            _repos(spec, tmp_path)
        assert e.value.reason == "missing_source", spec


def test_git_source_reads_tracked_files_at_a_revision(tmp_path):
    src = tmp_path / "g"
    src.mkdir()
    run = lambda *a: subprocess.run(["git", "-C", str(src), *a], check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (src / "a.py").write_text("v = 1\n")
    run("add", "a.py")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    first = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (src / "a.py").write_text("v = 2\n")
    (src / "untracked.py").write_text("no\n")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two")
    [(ref, entries)] = _repos({"type": "git", "url": str(src), "rev": first}, tmp_path)
    assert [e.path for e in entries] == ["a.py"]
    assert entries[0].read() == b"v = 1\n"
    assert ref.source.endswith(first)


def test_python_dist_reports_record_entries_outside_the_distribution(tmp_path):
    # dvc installs a console script: its RECORD names ../../../bin/dvc
    [(ref, entries)] = _repos({"type": "python_dist", "name": "dvc"}, tmp_path)
    assert ref.source.startswith("python_dist:dvc==")
    unsafe = [e for e in entries if e.skip == "unsafe_path"]
    assert unsafe and all(e.path.startswith("..") for e in unsafe)
    assert any(e.path == "dvc/__init__.py" and e.read for e in entries)


def test_python_dist_subdir_keeps_the_vendored_layout(tmp_path):
    [(ref, entries)] = _repos({"type": "python_dist", "name": "pip", "subdir": "pip/_vendor/idna",
                               "repo_name": "pip-idna"}, tmp_path)
    paths = {e.path for e in entries}
    assert "idna/core.py" in paths and all(p.startswith("idna/") for p in paths)
    assert ref.repo_name == "pip-idna"


def test_stdlib_and_sysconfig_sources(tmp_path):
    [(ref, entries)] = _repos({"type": "stdlib", "name": "json"}, tmp_path)
    assert ref.repo_name == "stdlib/json" and "decoder.py" in {e.path for e in entries}
    [(ref, entries)] = _repos({"type": "sysconfig", "key": "include"}, tmp_path)
    assert "Python.h" in {e.path for e in entries}


def test_stack_parquet_groups_rows_by_repository(tmp_path):
    p = tmp_path / "stack.parquet"
    pq.write_table(pa.table({"max_stars_repo_name": ["o/a", "o/b", "o/a"], "max_stars_repo_path": ["x.py", "y.go", "../z.py"],
                             "content": ["x = 1\n", "package y\n", "bad"]}), p)
    repos = _repos({"type": "stack_parquet", "path": str(p)}, tmp_path)
    assert [r.repo_name for r, _ in repos] == ["o/a", "o/b"]
    a = _by_path(repos[0][1])
    assert a["x.py"].read() == b"x = 1\n" and a["../z.py"].skip == "unsafe_path"


def test_pypi_sdist_via_pip_from_a_local_index(tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    pkg = tmp_path / "tinypkg-1.0"
    (pkg / "tinypkg").mkdir(parents=True)
    (pkg / "tinypkg" / "__init__.py").write_text("VALUE = 1\n")
    (pkg / "pyproject.toml").write_text('[build-system]\nrequires=["setuptools"]\nbuild-backend="setuptools.build_meta"\n'
                                        '[project]\nname="tinypkg"\nversion="1.0"\n')
    (pkg / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n")
    with tarfile.open(links / "tinypkg-1.0.tar.gz", "w:gz") as tf:
        tf.add(pkg, arcname="tinypkg-1.0")
    os.environ["DSCODER_PIP"] = str(Path(shutil.which("pip", path=os.path.dirname(os.sys.executable)) or "pip"))
    [(ref, entries)] = _repos({"type": "pypi_sdist", "spec": "tinypkg==1.0", "find_links": str(links)}, tmp_path)
    assert ref.source == "pypi_sdist:tinypkg==1.0"
    assert _by_path(entries)["tinypkg/__init__.py"].read() == b"VALUE = 1\n"
    # cached: a second expansion needs no index at all
    shutil.rmtree(links)
    [(_, again)] = _repos({"type": "pypi_sdist", "spec": "tinypkg==1.0", "find_links": str(links)}, tmp_path)
    assert [e.path for e in again] == [e.path for e in entries]


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")
def test_npm_pack_of_a_local_package(tmp_path):
    pkg = tmp_path / "tiny-js"
    pkg.mkdir()
    (pkg / "package.json").write_text('{"name": "tiny-js", "version": "1.0.0", "main": "index.js"}\n')
    (pkg / "index.js").write_text("module.exports = 1;\n")
    [(ref, entries)] = _repos({"type": "npm", "spec": str(pkg)}, tmp_path)
    assert _by_path(entries)["index.js"].read() == b"module.exports = 1;\n"


def test_check_spec_names_the_bad_parameter():
    with pytest.raises(ValueError, match=r"ingest.sources\[0\].type: unknown source type"):
        check_spec({"type": "ftp", "path": "x"}, "ingest.sources[0]")
    with pytest.raises(ValueError, match=r"ingest.sources\[1\].name: required"):
        check_spec({"type": "python_dist"}, "ingest.sources[1]")
    with pytest.raises(ValueError, match="mapping with a 'type'"):
        check_spec("requests", "ingest.sources[2]")
