"""Data stages on a Dask cluster (runner.kind: dask + runner.address) give byte-identical
outputs to the local process runner."""

from __future__ import annotations

import os

import pytest

from dscoder.data.filters import FilterSettings
from dscoder.data.ingest import IngestSettings
from stages.common import RunnerSettings, task_runner
from tests.corpus import make_corpus

pytestmark = pytest.mark.integration

OUTPUTS = ("data/raw/files.parquet", "data/raw/audit.parquet", "data/filtered/files.parquet",
           "data/filtered/audit.parquet")


def run_ingest_filter(work, specs, runner: RunnerSettings):
    from stages.filter import filter_files
    from stages.ingest import ingest

    work.mkdir()
    cwd = os.getcwd()
    os.chdir(work)  # reports/ is relative to the stage's working directory, as under dvc
    try:
        raw = work / "data/raw/files.parquet"
        ingest.with_options(task_runner=task_runner(runner))(
            IngestSettings(sources=specs, cache_dir=str(work / "cache")), runner, out=raw,
            audit_out=work / "data/raw/audit.parquet")
        filter_files.with_options(task_runner=task_runner(runner))(
            FilterSettings(), runner, src=raw, out=work / "data/filtered/files.parquet",
            audit_out=work / "data/filtered/audit.parquet")
    finally:
        os.chdir(cwd)


def test_dask_cluster_outputs_match_process_runner(tmp_path, prefect_harness):
    from distributed import Client, LocalCluster

    specs = make_corpus(tmp_path / "corpus")
    run_ingest_filter(tmp_path / "process", specs, RunnerSettings(kind="process", workers=2, shards=3))
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        runner = RunnerSettings(kind="dask", address=cluster.scheduler_address, shards=3)
        run_ingest_filter(tmp_path / "dask", specs, runner)
        with Client(cluster) as client:  # the shards really ran on the cluster's worker processes
            done = client.run(lambda dask_worker: len(dask_worker.data) + len(dask_worker.state.log))
            assert len(done) == 2 and sum(done.values()) > 0
    for rel in OUTPUTS:
        a, b = (tmp_path / "process" / rel).read_bytes(), (tmp_path / "dask" / rel).read_bytes()
        assert a == b, rel
    assert len((tmp_path / "dask" / "data/filtered/files.parquet").read_bytes()) > 0
