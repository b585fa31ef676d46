"""Real `dvc repro` at two revisions: `dscoder diff` lists exactly the files the filter audit
says moved, reading each revision's outputs from the DVC cache; per-language metrics sum up.

Only `dvc repro filter` runs (ingest + filter, then filter again): the whole chain to
decontam costs ~10 s of Prefect start-up per stage and revision, and the decision logic past
filter is covered by tests/unit/lineage on hand-made stage outputs. `--at filtered` compares
data/filtered/files.parquet, the set this chain produces.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import yaml

from tests.corpus import make_corpus
from tests.integration.dvc_repo import BIN, ROOT, commit, make_dvc_repo, set_param, sh

pytestmark = pytest.mark.integration


def _audit_keys(path):
    t = pq.read_table(path, columns=["repo_id", "path", "reason"])
    return {(r, p): why for r, p, why in zip(*(t[c].to_pylist() for c in ("repo_id", "path", "reason")))}


def test_filter_change_shows_in_dscoder_diff_exactly_as_the_audit(tmp_path, prefect_api):
    env = {"PREFECT_API_URL": prefect_api}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    repo = tmp_path / "proj"
    params["ingest"]["sources"] = make_corpus(repo / "corpus")
    params["runner"] = {"kind": "sequential", "workers": 1, "address": None, "shards": 1}
    make_dvc_repo(repo, params)
    sh(repo, "dvc", "repro", "filter", env=env)
    commit(repo, "A")
    audit_a = _audit_keys(repo / "data/filtered/audit.parquet")

    # Looser line-length and alpha rules: the minified JS and the digit table come back.
    set_param(repo, "filter.min_alpha_fraction", 0.0)
    set_param(repo, "filter.max_line_length", 100000)
    set_param(repo, "filter.max_avg_line_length", 100000)
    sh(repo, "dvc", "repro", "filter", env=env)
    audit_b = _audit_keys(repo / "data/filtered/audit.parquet")
    commit(repo, "B")

    moved_in = {k: why for k, why in audit_a.items() if k not in audit_b}
    moved_out = {k: why for k, why in audit_b.items() if k not in audit_a}
    assert len(moved_in) >= 2 and not moved_out

    dscoder = str(BIN / "dscoder")
    for rev_b in ("HEAD", "workspace"):
        out = sh(repo, dscoder, "diff", "HEAD~1", rev_b, "--at", "filtered", "--json", env=env)
        d = json.loads(out.stdout)
        added = {(e["repo_id"], e["path"]): e["decision"]["reason"] for e in d["added"]}
        assert added == moved_in
        assert {e["decision"]["dropped_at"] for e in d["added"]} == {"filter"}
        assert d["removed"] == []
        assert sum(v["added"] for v in d["by_language"].values()) == len(moved_in)
    text = sh(repo, dscoder, "diff", "HEAD~1", "HEAD", "--at", "filtered", env=env).stdout
    assert "gamma/min.js" in text and ("max_line_length" in text or "avg_line_length" in text)

    # The filter report's per-language counts sum to its totals.
    rep = json.loads((repo / "reports/filter.json").read_text())
    assert sum(v["kept"] for v in rep["languages"].values()) == rep["files_kept"]
    assert sum(v["kept_bytes"] for v in rep["languages"].values()) == rep["bytes_kept"]

    # trace a file the change brought back, in the workspace
    tr = json.loads(sh(repo, dscoder, "trace", "--path", "min.js", "--json", env=env).stdout)
    assert [f["repo_name"] for f in tr["files"]] == ["gamma"]
    steps = tr["files"][0]["steps"]
    assert [s["stage"] for s in steps][:2] == ["ingest", "filter"] and steps[1]["decision"] == "kept"
