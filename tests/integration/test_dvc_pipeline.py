"""Real `dvc repro` in a temporary git repo: caching, param-aware reruns, metrics diffs."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import yaml

from tests.corpus import make_corpus
from tests.integration.dvc_repo import ROOT, commit, make_dvc_repo, ran_stages, set_param, sh

pytestmark = pytest.mark.integration


def test_repro_caches_and_reruns_only_what_a_param_touched(tmp_path, prefect_api):
    env = {"PREFECT_API_URL": prefect_api}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    repo = tmp_path / "proj"
    params["ingest"]["sources"] = make_corpus(repo / "corpus") + [{"type": "python_dist", "name": "iniconfig"}]
    params["runner"] = {"kind": "process", "workers": 2, "address": None, "shards": 2}
    make_dvc_repo(repo, params)

    first = sh(repo, "dvc", "repro", "filter", env=env)
    assert ran_stages(first.stdout) == ["ingest", "filter"]
    files = pq.read_table(repo / "data/filtered/files.parquet")
    assert "iniconfig" in set(files.column("repo_name").to_pylist())
    commit(repo, "first run")

    again = sh(repo, "dvc", "repro", "filter", env=env)
    assert ran_stages(again.stdout) == []

    # A looser alpha-fraction threshold keeps the digit table: only `filter` reruns.
    set_param(repo, "filter.min_alpha_fraction", 0.0)
    third = sh(repo, "dvc", "repro", "filter", env=env)
    assert ran_stages(third.stdout) == ["filter"]
    params_diff = json.loads(sh(repo, "dvc", "params", "diff", "--json").stdout)
    change = params_diff["params.yaml"]["filter.min_alpha_fraction"]
    assert (change["old"], change["new"]) == (0.25, 0.0)
    diff = json.loads(sh(repo, "dvc", "metrics", "diff", "--json").stdout)["reports/filter.json"]
    assert diff["files_kept"]["diff"] == 1
    assert diff["dropped_by_rule.alpha_fraction"]["old"] == 1  # the rule no longer drops anything
    assert not diff["dropped_by_rule.alpha_fraction"].get("new")
    status = sh(repo, "dvc", "status", "filter", "--json")
    assert json.loads(status.stdout) == {}

    # A kill while DVC rewrites dvc.lock leaves it empty: every dvc command fails until the
    # documented command restores the last good lock; then nothing cached is recomputed.
    (repo / "dvc.lock").write_text("")
    broken = sh(repo, "dvc", "status", check=False, env=env)
    assert broken.returncode != 0
    assert sh(repo, "python", "-m", "flows.lock", check=False).returncode == 1
    restored = sh(repo, "python", "-m", "flows.lock", "--recover")
    assert "restored dvc.lock from .dvc/tmp/dvc.lock.good" in restored.stdout
    after = sh(repo, "dvc", "repro", "filter", env=env)
    assert ran_stages(after.stdout) == [], after.stdout  # checked out from the run cache
    assert json.loads(sh(repo, "dvc", "status", "filter", "--json").stdout) == {}
