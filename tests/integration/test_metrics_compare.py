"""Comparing experiments: timings never in the DVC metrics; the headline summary moves only
where a param change moved the data (real `dvc repro` / `dvc exp run` in a temporary repo)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.corpus import make_corpus
from tests.integration.dvc_repo import ROOT, commit, make_dvc_repo, ran_stages, sh

pytestmark = pytest.mark.integration


def trimmed_pipeline(repo, stages=("ingest", "filter")) -> None:
    """dvc.yaml with only `stages` and `summary`, summary reading those stages' reports."""
    dag = yaml.safe_load((repo / "dvc.yaml").read_text())
    summary = dag["stages"]["summary"]
    summary["deps"] = ["stages/summary.py", *[f"reports/{s}.json" for s in stages]]
    dag["stages"] = {**{s: dag["stages"][s] for s in stages}, "summary": summary}
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dag, sort_keys=False))


def changed_paths(diff: dict) -> dict[str, set[str]]:
    """{metrics file: metric paths whose value changed} from `dvc metrics diff --json`."""
    return {f: {k for k, v in d.items() if v.get("old") != v.get("new")} for f, d in diff.items()
            if any(v.get("old") != v.get("new") for v in d.values())}


@pytest.fixture(scope="module")
def repo(tmp_path_factory, prefect_api):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    repo = tmp_path_factory.mktemp("metrics") / "proj"
    params["ingest"]["sources"] = make_corpus(repo / "corpus")
    params["runner"] = {"kind": "process", "workers": 2, "address": None, "shards": 2}
    make_dvc_repo(repo, params)
    trimmed_pipeline(repo)
    commit(repo, "trimmed pipeline")
    env = {"PREFECT_API_URL": prefect_api}
    first = sh(repo, "dvc", "repro", "summary", env=env)
    assert ran_stages(first.stdout) == ["ingest", "filter", "summary"]
    commit(repo, "first run")
    return repo, env


def test_rerun_of_the_same_params_changes_no_metric(repo):
    repo, env = repo
    report = json.loads((repo / "reports/filter.json").read_text())
    assert not {"timing", "throughput", "env"} & set(report)
    before = json.loads((repo / "reports/filter.timing.json").read_text())
    assert {s["step"] for s in before["steps"]} >= {"filter", "write", "total"}
    assert before["throughput"]["files_per_s"] > 0 and before["env"]["cpus"] >= 1

    again = sh(repo, "dvc", "repro", "-f", "-s", "filter", env=env)
    assert ran_stages(again.stdout) == ["filter"]
    after = json.loads((repo / "reports/filter.timing.json").read_text())
    assert after != before  # the timings were rewritten...
    assert json.loads(sh(repo, "dvc", "metrics", "diff", "--json").stdout) == {}  # ...and are no metric
    assert json.loads(sh(repo, "dvc", "status", "summary", "--json").stdout) == {}
    sh(repo, "git", "checkout", "--", "reports", "dvc.lock")


def test_one_filter_param_moves_only_the_filter_figures(repo):
    repo, env = repo
    sh(repo, "dvc", "exp", "run", "-n", "alpha0", "-S", "filter.min_alpha_fraction=0.0", "summary", env=env)
    diff = changed_paths(json.loads(sh(repo, "dvc", "metrics", "diff", "--json").stdout))
    assert set(diff) == {"reports/filter.json", "reports/summary.json"}  # ingest's figures did not move
    assert diff["reports/summary.json"] == {"filter.files", "filter.bytes", "filter.dropped"}
    allowed = re.compile(r"(files_kept|files_dropped|bytes_kept|dropped_by_rule\.alpha_fraction|"
                         r"languages\.\w+\.(kept|kept_bytes|dropped_bytes|dropped\.alpha_fraction))$")
    assert "dropped_by_rule.alpha_fraction" in diff["reports/filter.json"]
    assert all(allowed.match(k) for k in diff["reports/filter.json"]), diff["reports/filter.json"]

    # the headline view: only the changed param and the filter figures differ between HEAD and the experiment
    dscoder = str(ROOT / ".venv/bin/dscoder")
    out = sh(repo, dscoder, "exp", "--changed", env=env).stdout
    labels = {line.rsplit(None, 3)[0].strip() for line in out.splitlines()[1:]}  # columns: workspace, HEAD, alpha0
    assert labels == {"param filter.min_alpha_fraction", "filter.files", "filter.bytes", "filter.dropped"}, out
    cols = json.loads(sh(repo, dscoder, "exp", "--json", env=env).stdout)
    (head,) = [c for c in cols if c not in ("workspace", "alpha0")]
    exp, head = cols["alpha0"], cols[head]
    assert exp["filter.files"] == head["filter.files"] + 1 and exp["ingest.files"] == head["ingest.files"]
    assert exp["param filter.min_alpha_fraction"] == 0.0
