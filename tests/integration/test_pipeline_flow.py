"""The pipeline flow against a real Prefect server: a child flow run per stage, report
artifacts, cached stages on a second run; and the parameter sweep as DVC experiments."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from tests.corpus import make_corpus
from tests.integration.dvc_repo import ROOT, commit, make_dvc_repo, sh

pytestmark = pytest.mark.integration


def tiny_repo(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    repo = tmp_path / "proj"
    params["ingest"]["sources"] = make_corpus(repo / "corpus")
    params["runner"] = {"kind": "thread", "workers": 1, "address": None, "shards": 1}
    return make_dvc_repo(repo, params)


async def child_runs(parent_id):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter

    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id={"any_": [parent_id]}))
        out = {}
        for run in runs:
            arts = await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
            out[run.name] = (run, [a.key for a in arts])
        return out


@pytest.fixture
def api(prefect_api, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    with temporary_settings({PREFECT_API_URL: prefect_api}):
        yield prefect_api


def test_pipeline_runs_stale_stages_then_reports_them_cached(tmp_path, api):
    from flows.pipeline import pipeline

    repo = tiny_repo(tmp_path)
    first = pipeline(targets=["filter"], repo=str(repo), retries=0, return_state=True)
    assert first.is_completed() and first.result() == {"ingest": "ran", "filter": "ran"}
    runs = asyncio.run(child_runs(first.state_details.flow_run_id))
    assert set(runs) == {"ingest", "filter"}
    for stage, (run, keys) in runs.items():
        assert run.state.is_completed() and run.state.name == "Completed", stage
        assert f"{stage}-report" in keys, (stage, keys)
        assert set(run.tags) >= {stage, "dscoder"}
    assert sh(repo, "dvc", "status", "--json", "filter").stdout.strip() == "{}"  # dvc.lock kept right

    second = pipeline(targets=["filter"], repo=str(repo), retries=0, return_state=True)
    assert second.result() == {"ingest": "cached", "filter": "cached"}
    runs = asyncio.run(child_runs(second.state_details.flow_run_id))
    assert {name: run.state.name for name, (run, _) in runs.items()} == {"ingest": "Cached", "filter": "Cached"}
    assert all(run.state.is_completed() for run, _ in runs.values())


def test_grid_parsing():
    from flows.sweep import grid_points, parse_grid

    grid = parse_grid(["filter.max_line_length=500,1000", "dedup.threshold=0.7,0.8", "repo_docs.mode=regex"])
    assert grid == {"filter.max_line_length": [500, 1000], "dedup.threshold": [0.7, 0.8], "repo_docs.mode": ["regex"]}
    points = grid_points(grid)
    assert len(points) == 4 and points[1] == {"filter.max_line_length": 500, "dedup.threshold": 0.8, "repo_docs.mode": "regex"}
    with pytest.raises(ValueError, match="key=v1,v2"):
        parse_grid(["filter.max_line_length"])


def test_sweep_queues_experiments_and_compares_them(tmp_path, api):
    from prefect import get_client

    from flows.sweep import sweep

    repo = tiny_repo(tmp_path)
    sh(repo, "dvc", "repro", "filter", env={"PREFECT_API_URL": api})
    commit(repo, "baseline")  # experiments branch from HEAD: ingest is cached there

    state = sweep({"filter.min_alpha_fraction": [0.0, 0.25]}, targets=["filter"], repo=str(repo), return_state=True)
    rows = state.result()
    by_alpha = {r["filter.min_alpha_fraction"]: r for r in rows if r["status"] != "baseline"}
    assert set(by_alpha) == {0.0, 0.25} and len(rows) == 3
    # The digit table (pkg/table.py) is dropped only by the alpha-fraction rule.
    assert by_alpha[0.0]["filter.files_kept"] == by_alpha[0.25]["filter.files_kept"] + 1
    assert [r["status"] for r in rows] == ["baseline", "success", "success"], rows

    async def artifact():
        async with get_client() as client:
            return await client.read_latest_artifacts()

    latest = {a.key: a for a in asyncio.run(artifact())}
    assert latest["sweep-comparison"].flow_run_id == state.state_details.flow_run_id
