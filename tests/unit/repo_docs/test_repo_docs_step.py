"""The repo_docs step's per-repository state: a repository spooled to disk (larger than a
batch) comes out byte for byte as it would from one batch, CR and CRLF line ends included;
and what the step holds while it assembles a large repository stays small: slotted spooled
files sharing their language strings, edges holding the repository's own path strings, and
no edge list kept by the step (memory figures: step.py, edges.py, document.py docstrings)."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dscoder.data.repo_docs.step as step_mod
from dscoder.data.repo_docs import file_deps
from dscoder.data.repo_docs.document import RepoDocsSettings, build_repo_doc
from dscoder.data.repo_docs.resolve import RepoIndex
from dscoder.data.repo_docs.step import RepoDocsStep, Spool, SpooledFile
from dscoder.data.step import run_shard
from dscoder.data.stream import plan_shards
from dscoder.schemas import FILES

FILES_OF_REPO = [
    ("pkg/__init__.py", "python", "from .a import A\r\n"),
    ("pkg/a.py", "python", "from pkg.b import B\r\nclass A(B):\r\n    pass\r\n"),
    ("pkg/b.py", "python", "class B:\r    old_mac = True\r"),
    ("pkg/c.py", "python", "import pkg.a\nprint('\\r stays')\n"),
    ("README.md", "markdown", "# demo\r\n\r\nlines\r\n"),
]


def _files_table(repos: int = 2) -> pa.Table:
    rows = []
    for r in range(repos):
        for path, lang, content in FILES_OF_REPO:
            data = content.encode()
            rows.append({"repo_id": f"r{r}", "repo_name": f"repo{r}", "path": path, "language": lang,
                         "content": content, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                         "source": "test"})
    return pa.Table.from_pylist(rows, schema=FILES)


def _run(tmp_path, batch_bytes: int, name: str) -> tuple[bytes, dict]:
    src = tmp_path / "files.parquet"
    if not src.exists():
        pq.write_table(_files_table(), src)
    work = tmp_path / name
    work.mkdir()
    step = RepoDocsStep(RepoDocsSettings())
    (shard,) = plan_shards(src, shards=1, shard_bytes=1 << 30, size_columns=["content"])
    res = run_shard(step, src, shard, work, batch_bytes)
    return (work / f"part-{shard.index:05d}.parquet").read_bytes(), dict(res.counts)


def test_spooled_repository_is_byte_identical_crlf_included(tmp_path):
    whole, counts_whole = _run(tmp_path, 1 << 20, "whole")
    spooled, counts_spooled = _run(tmp_path, 40, "spooled")  # every repository in pieces
    assert counts_spooled.get(("repos_spooled",)) == 2 and ("repos_spooled",) not in counts_whole
    assert spooled == whole
    texts = pq.read_table(tmp_path / "spooled" / "part-00000.parquet").column("text").to_pylist()
    assert all("class B:\r    old_mac = True\r" in t and "from .a import A\r\n" in t for t in texts)


def test_spooled_files_are_slotted_and_share_languages(tmp_path):
    spool = Spool(tmp_path)
    try:
        spool.add(_files_table(1).select(list(step_mod._COLUMNS)))
        files = spool.files
        assert not hasattr(files[0], "__dict__")  # slots: no dict, no pathlib.Path per file
        assert all(isinstance(f, SpooledFile) for f in files)
        py = [f["language"] for f in files if f["language"] == "python"]
        assert len(py) == 4 and all(x is py[0] for x in py)  # one string per language
        assert [f["content"] for f in files] == [c for _, _, c in FILES_OF_REPO]  # untranslated
        with pytest.raises(KeyError):
            files[0]["size"]
    finally:
        spool.remove()


def test_edge_targets_are_the_index_own_path_strings():
    files = [{"path": p, "language": lang, "content": c} for p, lang, c in FILES_OF_REPO]
    index = RepoIndex((f["path"], f["language"], f) for f in files)
    deps = file_deps("pkg/a.py", "python", files[1]["content"], index, "tree-sitter")
    assert deps.targets == ("pkg/b.py",)
    assert deps.targets[0] is files[2]["path"]  # not an equal copy built by the resolver


def test_step_does_not_keep_the_edge_list(monkeypatch, tmp_path):
    files = [{"path": p, "language": lang, "content": c} for p, lang, c in FILES_OF_REPO]
    full, lean = build_repo_doc(files), build_repo_doc(files, assemble_text=False, keep_edges=False)
    assert full.edges and lean.edges == []
    assert (lean.order, lean.edges_found, lean.edges_resolved, lean.cycles_broken, lean.per_language) == \
        ([f["path"] for f in full.files], full.edges_found, full.edges_resolved, full.cycles_broken,
         full.per_language)
    seen = []

    def spy(*args, **kwargs):
        doc = build_repo_doc(*args, **kwargs)
        seen.append(doc)
        return doc

    monkeypatch.setattr(step_mod, "build_repo_doc", spy)
    _run(tmp_path, 1 << 20, "spy")
    assert len(seen) == 2 and all(d.edges == [] and d.edges_resolved for d in seen)
