"""The ingest and filter stages as real Prefect flows: outputs, reports, determinism."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest

from dscoder.data.filters import FilterSettings
from dscoder.data.ingest import IngestSettings
from dscoder.schemas import AUDIT, FILES
from stages.common import RunnerSettings, task_runner
from tests.corpus import make_corpus

pytestmark = pytest.mark.integration


def _run(tmp_path, name, shards, kind="thread"):
    work = tmp_path / name
    work.mkdir()
    specs = make_corpus(tmp_path / "corpus")
    from stages.filter import filter_files
    from stages.ingest import ingest

    cwd = os.getcwd()
    os.chdir(work)  # reports/ is relative to the stage's working directory, as under dvc
    try:
        runner = RunnerSettings(kind=kind, workers=2, shards=shards)
        s = IngestSettings(sources=specs, cache_dir=str(work / "cache"))
        raw = work / "data/raw/files.parquet"
        ingest.with_options(task_runner=task_runner(runner))(s, runner, out=raw, audit_out=work / "data/raw/audit.parquet")
        filt = work / "data/filtered/files.parquet"
        filter_files.with_options(task_runner=task_runner(runner))(
            FilterSettings(), runner, src=raw, out=filt, audit_out=work / "data/filtered/audit.parquet")
    finally:
        os.chdir(cwd)
    return work


def test_ingest_and_filter_flows(tmp_path, prefect_harness):
    work = _run(tmp_path, "a", shards=1)
    raw = pq.read_table(work / "data/raw/files.parquet")
    assert raw.schema.equals(FILES)
    assert set(raw.column("repo_name").to_pylist()) == {"alpha", "beta", "gamma"}
    audit = pq.read_table(work / "data/raw/audit.parquet")
    assert audit.schema.equals(AUDIT)
    assert audit.column("reason").to_pylist() == ["binary"]
    kept = set(pq.read_table(work / "data/filtered/files.parquet").column("path").to_pylist())
    dropped = dict(zip(*pq.read_table(work / "data/filtered/audit.parquet", columns=["path", "reason"]).to_pydict().values()))
    assert dropped == {"pkg/table.py": "alpha_fraction", "src/broken.c": "parse_errors", "min.js": "max_line_length"}
    assert len(kept) + len(dropped) == raw.num_rows
    details = pq.read_table(work / "data/filtered/audit.parquet", columns=["detail"]).column("detail").to_pylist()
    assert all(details)  # every drop says what was measured
    report = json.loads((work / "reports/filter.json").read_text())
    assert report["files_in"] == raw.num_rows and report["files_dropped"] == 3
    assert report["languages"]["c"]["dropped"] == {"parse_errors": 1}
    ingest_report = json.loads((work / "reports/ingest.json").read_text())
    assert ingest_report["dropped"] == {"binary": 1} and ingest_report["repos"] == 3


def test_outputs_do_not_depend_on_shards(tmp_path, prefect_harness):
    one = _run(tmp_path, "one", shards=1)
    three = _run(tmp_path, "three", shards=3)
    for rel in ("data/raw/files.parquet", "data/filtered/files.parquet", "data/filtered/audit.parquet"):
        assert (one / rel).read_bytes() == (three / rel).read_bytes(), rel
