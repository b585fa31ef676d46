"""The repo_docs step's per-repository state: a repository spooled to disk (larger than a
batch) comes out byte for byte as it would from one batch, CR and CRLF line ends included;
and what the step holds while it orders and assembles a large repository stays small: slotted
spooled files sharing their language strings, edges holding the repository's own path strings,
no edge list kept by the step, no state per component of one file in the SCC order, one part
held at a time (as UTF-8 bytes), and the C heap trimmed between batches and parts (memory
figures: step.py, edges.py, document.py docstrings)."""

from __future__ import annotations

import hashlib
import random
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dscoder.data.repo_docs.step as step_mod
from dscoder.data.repo_docs import file_deps
from dscoder.data.repo_docs.document import RepoDocsSettings, _ordering_graph, build_repo_doc, scc_order
from dscoder.data.repo_docs.resolve import RepoIndex
from dscoder.data.repo_docs.step import RepoDocsStep, Spool, SpooledFile
from dscoder.data.step import open_shard, run_shard
from dscoder.data.stream import Shard, plan_shards
from dscoder.schemas import FILES, REPOS

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


def _traced_peak(fn, *args, **kwargs) -> int:
    """Bytes of Python objects allocated at the peak of `fn(*args, **kwargs)` (after a warm-up
    call, so that first-use caches do not count)."""
    fn(*args, **kwargs)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_ordering_graph_keeps_the_callers_edge_tuples():
    edges = [("b", "a"), ("c", "b"), ("c", "b"), ("a", "a"), ("c", "nowhere")]
    nodes, pairs = _ordering_graph("abc", edges)
    assert nodes == ["a", "b", "c"] and pairs == [("b", "a"), ("c", "b")]
    assert pairs[0] is edges[0] and pairs[1] in (edges[1], edges[2])  # not copies (64 B an edge)
    assert _ordering_graph("ab", [["b", "a"]])[1] == [("b", "a")]  # pairs as lists still work


def test_scc_order_keeps_no_state_per_component_of_one_file():
    """A repository's components are mostly single files on no cycle (torch: 11,008 for 11,297
    files): a set, two lists and dict entries for each of those made scc_order's peak 309 B a
    file and edge on this graph (6,000 files, 17,994 edges); it is 130 now."""
    rng = random.Random(0)
    nodes = [f"pkg/m{i:05d}.py" for i in range(6000)]
    edges = [(nodes[i], nodes[j]) for i in range(1, len(nodes)) for j in rng.sample(range(i), min(i, 3))]
    assert _traced_peak(scc_order, nodes, edges) < 200 * (len(nodes) + len(edges))


def test_assembly_holds_one_part_at_a_time(tmp_path):
    """120 files of 50 KB, 20 to a 1 MB part, each file ASCII but for one emoji: as a str a
    part took 4 bytes a character, and the previous part was still held (by the caller's row
    and by `enumerate`) while the next was joined: 8.6x max_doc_bytes at the peak. As UTF-8
    bytes, the joined part and its pieces: 2x."""
    s = RepoDocsSettings(max_doc_bytes=1_000_000)
    files = [{"path": f"notes/f{i:03d}.txt", "language": "text", "content": "a" * 49_999 + "\U0001F600"}
             for i in range(120)]
    step = RepoDocsStep(s)
    with open_shard(step.stage, step.schema, tmp_path, Shard(0, 0, 0, 0, 0)) as ctx:
        step.begin(ctx)
        assert _traced_peak(step._emit, files, "r0", "repo0", "test", ctx) < 2.5 * s.max_doc_bytes


def test_part_rows_are_the_rows_of_the_str_text():
    files = [{"path": p, "language": lang, "content": c} for p, lang, c in FILES_OF_REPO]
    files.append({"path": "wide.md", "language": "markdown", "content": "caf\u00e9 \U0001F600\r\n"})
    doc = build_repo_doc(files, repo_name="repo0")
    by_path = {f["path"]: f for f in files}
    (row,) = step_mod.document_rows(doc, by_path, repo_id="r0", repo_name="repo0", source="test", s=RepoDocsSettings())
    assert row["text"] == doc.text.encode("utf-8") and row["files"] == doc.files
    want = pa.Table.from_pylist([{**row, "text": doc.text}], schema=REPOS)
    assert step_mod._row_table(row).equals(want)


def test_heap_is_trimmed_per_batch_and_per_part_of_a_spooled_repository(monkeypatch, tmp_path):
    trims, batches = [], []
    import dscoder.pool

    monkeypatch.setattr(step_mod, "trim_heap", lambda: trims.append(1))  # inside the step
    monkeypatch.setattr(dscoder.pool, "trim_heap", lambda: trims.append(1))  # run_shard's, per batch
    process = RepoDocsStep.process
    monkeypatch.setattr(RepoDocsStep, "process", lambda self, batch, ctx: (batches.append(1), process(self, batch, ctx)))
    _run(tmp_path, 1 << 20, "whole")
    assert len(batches) == 1 and len(trims) == 1  # repositories inside a batch: once per batch
    trims.clear(), batches.clear()
    _, counts = _run(tmp_path, 40, "spooled")
    # and a spooled one after its ordering and after each of its parts (one each here)
    assert counts[("repos_spooled",)] == 2 and len(trims) == len(batches) + 2 * 2
