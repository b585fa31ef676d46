"""Every kind of bad input, through every data stage: each is skipped with its reason, counted
and audited, no stage crashes, and nothing from outside a repository reaches any output.

`CASES` is the single list of kinds: the test builds each one, and docs/bad-input.md is
rendered from it (`python -m tests.integration.test_bad_input` rewrites it; a test fails when
the page and the list disagree), so the documented table cannot drift from what is tested.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dscoder.config import ConfigError
from dscoder.data.ingest import IngestSettings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "bad-input.md"
SECRET = "TOP-SECRET-OUTSIDE-THE-REPOSITORY-7f3a"
MAX_FILE_BYTES = 50_000


@dataclass(frozen=True)
class Case:
    kind: str
    """What the input is."""
    reason: str
    """The audit reason it gets ('kept' when it is kept, after the fix described)."""
    outcome: str
    """What happens, in a few words."""
    build: Callable[[Path, Path], None]
    """build(repos_dir, outside_dir): put the input under repos_dir (one repository per case)."""
    stage: str = "ingest"


def _w(p: Path, data: bytes | str) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)


def _repo(name: str, files: dict[str, bytes | str]) -> Callable[[Path, Path], None]:
    def build(repos: Path, outside: Path) -> None:
        _w(repos / name / "ok.py", f"def {name.replace('-', '_')}_ok():\n    return 1\n")
        for rel, data in files.items():
            _w(repos / name / rel, data)
    return build


def _bytes_name(repos: Path, _: Path) -> None:
    d = repos / "bytes-name"
    _w(d / "ok.py", "X = 1\n")
    with open(os.fsencode(d) + b"/bad\xff.py", "wb") as f:
        f.write(b"Y = 2\n")


def _bytes_repo(repos: Path, _: Path) -> None:
    d = os.fsencode(repos) + b"/repo\xfe"
    os.makedirs(d)
    with open(d + b"/a.py", "wb") as f:
        f.write(b"Z = 3\n")


def _hardlink(repos: Path, outside: Path) -> None:
    _w(repos / "hardlink" / "ok.py", "A = 1\n")
    target = outside / "passwd.py"
    _w(target, f"SECRET = {SECRET!r}\n")
    os.link(target, repos / "hardlink" / "passwd.py")


def _symlink_out(repos: Path, outside: Path) -> None:
    _w(repos / "symlink-out" / "ok.py", "B = 1\n")
    _w(outside / "s.py", f"S = {SECRET!r}\n")
    os.symlink(outside / "s.py", repos / "symlink-out" / "s.py")


def _symlink_in(repos: Path, _: Path) -> None:
    _w(repos / "symlink-in" / "ok.py", "C = 1\n")
    os.symlink("ok.py", repos / "symlink-in" / "again.py")


def _fifo(repos: Path, _: Path) -> None:
    _w(repos / "fifo" / "ok.py", "D = 1\n")
    os.mkfifo(repos / "fifo" / "pipe.py")


def _long_path(repos: Path, _: Path) -> None:
    """A file whose path is longer than PATH_MAX (4096): built one folder at a time."""
    _w(repos / "long-path" / "ok.py", "E = 1\n")
    fd = os.open(repos / "long-path", os.O_RDONLY)
    try:
        for _ in range(24):
            os.mkdir("d" * 200, dir_fd=fd)
            nfd = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        f = os.open("deep.py", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(f, b"DEEP = 1\n")
        os.close(f)
    finally:
        os.close(fd)


def _stray(repos: Path, outside: Path) -> None:
    _w(repos / "stray.py", f"STRAY = {SECRET!r}\n")  # a file at the top of a dirs source


def _top_symlink(repos: Path, outside: Path) -> None:
    (outside / "elsewhere").mkdir(exist_ok=True)
    _w(outside / "elsewhere" / "e.py", f"ELSE = {SECRET!r}\n")
    os.symlink(outside / "elsewhere", repos / "linked-repo")


def _archive(repos: Path, outside: Path) -> None:
    """Archives are sources of their own: built beside the repositories (see _sources)."""


CASES: list[Case] = [
    Case("file name with bytes that are not UTF-8", "bad_name", "skipped, shown escaped (`bad\\xff.py`)", _bytes_name),
    Case("file name with a newline", "bad_name", "skipped (it would split the path header line)",
         _repo("newline-name", {"new\nline.py": "N = 1\n"})),
    Case("repository folder name that is not UTF-8", "bad_name", "repository skipped, shown escaped", _bytes_repo),
    Case("path longer than PATH_MAX", "unreadable", "skipped with the OS error", _long_path),
    Case("hard link (to a file outside the repository)", "hardlink",
         "skipped unless `ingest.allow_hardlinks`", _hardlink),
    Case("symlink leaving the repository", "symlink_escape", "skipped, never followed", _symlink_out),
    Case("symlink inside the repository", "symlink", "skipped, never followed", _symlink_in),
    Case("FIFO or other special file", "special_file", "skipped, never opened", _fifo),
    Case("NUL byte in the first 8 kB", "binary", "skipped", _repo("nul-early", {"b.c": b"int x;\0\0"})),
    Case("NUL byte after the first 8 kB", "binary", "skipped",
         _repo("nul-late", {"late.js": "var a = 1;\n" * 1000 + "\0\n"})),
    Case("not UTF-8 (Latin-1)", "not_utf8", "skipped", _repo("latin1", {"l.py": "s = 'caf\xe9'\n".encode("latin-1")})),
    Case("UTF-16 with a byte-order mark", "kept", "decoded, stored as UTF-8",
         _repo("utf16", {"w.py": "W16 = 'wide'\n".encode("utf-16")})),
    Case("UTF-8 with a byte-order mark", "kept", "the mark removed, so Python compiles it",
         _repo("utf8-bom", {"bom.py": b"\xef\xbb\xbfBOM = 1\n"})),
    Case("file over `ingest.max_file_bytes`", "too_large", "skipped before it is read",
         _repo("huge", {"big.py": "x = 1\n" * (MAX_FILE_BYTES // 6 + 10)})),
    Case("unknown language", "unknown_language", "skipped", _repo("unknown", {"image.png": b"\x89PNG"})),
    Case("repository with no usable file", "empty_repo", "repository skipped",
         lambda repos, _: _w(repos / "empty" / "only.bin", b"\0\1")),
    Case("file at the top of a `dirs` source", "not_a_repository", "skipped (it belongs to no repository)", _stray),
    Case("symlinked folder at the top of a `dirs` source", "symlink", "skipped, never followed", _top_symlink),
    Case("tar member with an absolute or `..` name", "unsafe_path", "skipped, never extracted", _archive),
    Case("tar member whose name is not UTF-8", "bad_name", "skipped", _archive),
    Case("zip member that expands past `max_file_bytes` (a bomb)", "too_large",
         "abandoned while decompressing, one chunk of memory", _archive),
    Case("truncated archive", "broken_archive", "the archive skipped whole, nothing half-read", _archive),
    Case("The Stack Parquet row with a null path", "unsafe_path", "skipped", _archive),
    Case("The Stack Parquet rows with a null repository", "no_repository", "skipped, counted in one audit row",
         _archive),
    Case("source path that does not exist", "missing_source", "the source skipped; an empty corpus flows through "
         "every data stage as empty valid outputs", _archive),
    Case("source path that is not valid UTF-8", "ConfigError", "fails fast naming `ingest.sources[i].path`",
         _archive, stage="configuration"),
]


def _tar(members: list[tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT, errors="surrogateescape") as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _sources(root: Path, outside: Path) -> list[dict]:
    arch = root / "archives"
    arch.mkdir()
    (arch / "unsafe.tar").write_bytes(_tar([("proj/ok.py", b"T = 1\n"), ("proj/../../evil.py", f"E = {SECRET!r}\n".encode()),
                                            ("/abs.py", b"A = 1\n"), ("proj/bad\udcff.py", b"B = 1\n")]))
    with zipfile.ZipFile(arch / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok.py", "Z = 1\n")
        zf.writestr("bomb.py", "0" * (20 * MAX_FILE_BYTES))
    whole = _tar([("t/x.py", b"TRUNC = 1\n" * 5000)], "w:gz")
    (arch / "truncated.tar.gz").write_bytes(whole[: len(whole) // 2])
    stack = pa.table({"max_stars_repo_name": ["org/a", "org/a", None, ""],
                      "max_stars_repo_path": ["a.py", None, "n.py", "e.py"],
                      "content": ["A = 1\n", "B = 2\n", f"N = {SECRET!r}\n", f"E = {SECRET!r}\n"]})
    pq.write_table(stack, arch / "stack.parquet")
    return [{"type": "dirs", "path": str(root / "repos")},
            {"type": "archive", "path": str(arch / "unsafe.tar"), "name": "unsafe"},
            {"type": "archive", "path": str(arch / "bomb.zip"), "name": "bomb"},
            {"type": "archive", "path": str(arch / "truncated.tar.gz"), "name": "truncated"},
            {"type": "stack_parquet", "path": str(arch / "stack.parquet")},
            {"type": "dir", "path": str(root / "does-not-exist")}]


@pytest.fixture(scope="module")
def bad_corpus(tmp_path_factory, prefect_harness):
    from tests.integration.test_data_flows import run_data_stages
    from stages.common import RunnerSettings

    root = tmp_path_factory.mktemp("bad")
    outside = root / "outside"
    outside.mkdir()
    (root / "repos").mkdir()
    for case in CASES:
        case.build(root / "repos", outside)
    sources = _sources(root, outside)
    work = run_data_stages(None, root / "work", RunnerSettings(kind="thread", workers=2, shards=3),
                           sources=sources, max_file_bytes=MAX_FILE_BYTES)
    return work


def _audit(work: Path, stage: str) -> list[dict]:
    return pq.read_table(work / f"data/{stage}/audit.parquet").to_pylist()


def test_every_kind_is_audited_with_its_reason(bad_corpus):
    audit = _audit(bad_corpus, "raw")
    reasons = {a["reason"] for a in audit}
    for case in CASES:
        if case.stage == "ingest" and case.reason != "kept":
            assert case.reason in reasons, case.kind
    by_path = {(a["repo_name"], a["path"]): a["reason"] for a in audit}
    assert by_path[("bytes-name", "bad\\xff.py")] == "bad_name"
    assert by_path[("newline-name", "new\\nline.py")] == "bad_name"
    assert by_path[("hardlink", "passwd.py")] == "hardlink"
    assert by_path[("nul-late", "late.js")] == "binary"
    assert by_path[("bomb", "bomb.py")] == "too_large"
    assert by_path[(None, "stray.py")] == "not_a_repository"
    assert by_path[(None, "linked-repo")] == "symlink"
    assert by_path[(None, "repo\\xfe")] == "bad_name"
    assert any(a["reason"] == "unreadable" and a["repo_name"] == "long-path" for a in audit)
    report = json.loads((bad_corpus / "reports/ingest.json").read_text())
    assert report["dropped_total"] == len(audit)  # every audit row is counted


def test_decoded_kinds_are_kept_and_clean(bad_corpus):
    files = {(r["repo_name"], r["path"]): r for r in pq.read_table(bad_corpus / "data/raw/files.parquet").to_pylist()}
    assert files[("utf16", "w.py")]["content"] == "W16 = 'wide'\n"
    assert files[("utf8-bom", "bom.py")]["content"] == "BOM = 1\n"
    kept = {(r["repo_name"], r["path"]) for r in pq.read_table(bad_corpus / "data/filtered/files.parquet").to_pylist()}
    assert ("utf8-bom", "bom.py") in kept  # compiles once the mark is gone
    assert ("org/a", "a.py") in files and ("truncated", "x.py") not in files
    assert all("\n" not in p and "\0" not in c for (_, p), c in ((k, v["content"]) for k, v in files.items()))


def test_nothing_from_outside_reaches_any_output(bad_corpus):
    for p in (bad_corpus / "data").rglob("*.parquet"):
        if p.name == "audit.parquet":
            continue
        assert SECRET.encode() not in p.read_bytes(), p  # zstd pages: check decoded too
        t = pq.read_table(p)
        for col in t.column_names:
            if pa.types.is_string(t.schema.field(col).type):
                assert not any(SECRET in (v or "") for v in t.column(col).to_pylist()), (p, col)


def test_bad_source_path_fails_fast_naming_the_parameter(tmp_path):
    with pytest.raises(ConfigError, match=r"ingest\.sources\[0\]\.path: not valid UTF-8"):
        IngestSettings.from_dict({"sources": [{"type": "dir", "path": "/tmp/x\udcff"}]}, "ingest")


def render_table() -> str:
    lines = ["# Bad input: what happens to each kind", "",
             "Generated from `CASES` in tests/integration/test_bad_input.py, which builds every kind below and",
             "runs it through ingest, filter, repo_docs, dedup and decontam (`python -m tests.integration.test_bad_input`",
             "rewrites this page; a test fails when the two disagree). Every skipped item is counted in",
             "`reports/ingest.json` (`dropped`) and listed with its reason in `data/raw/audit.parquet`; nothing",
             "from outside a repository reaches any output.", "",
             "| input | audit reason | what happens |", "|---|---|---|"]
    for c in CASES:
        reason = "— (kept)" if c.reason == "kept" else f"`{c.reason}`"
        lines.append(f"| {c.kind} | {reason} | {c.outcome} |")
    return "\n".join(lines) + "\n"


def test_documented_table_matches_the_cases():
    assert DOC.read_text() == render_table(), "run: python -m tests.integration.test_bad_input"


if __name__ == "__main__":
    DOC.write_text(render_table())
    print(f"wrote {DOC}", file=sys.stderr)
