"""Reports: run facts (timings, throughput, machine) apart from the metrics; the headline summary;
one Prefect API per stage process and its workers."""

from __future__ import annotations

import json
import os

from dscoder.summary import edges_respected, summarize
from stages.common import Timer, run_facts_path, share_prefect_api, split_run_facts, write_report_files


def test_run_facts_leave_the_metrics_at_any_depth():
    report = {"files_kept": 3, "timing": {"total_s": 1.0}, "throughput": {"files_per_s": 9.0}, "env": {"cpus": 2},
              "device": "cpu", "tokens_per_sec": 12.5, "mfu": None, "final_train_loss": 6.1,
              "training": {"seconds": 3.87, "texts": 10}, "sandbox": {"timeout_s": 10.0},
              "languages": {"python": {"kept": 3}}}
    metrics, run = split_run_facts(report)
    assert metrics == {"files_kept": 3, "final_train_loss": 6.1, "training": {"texts": 10},
                       "sandbox": {"timeout_s": 10.0}, "languages": {"python": {"kept": 3}}}
    assert run == {"timing": {"total_s": 1.0}, "throughput": {"files_per_s": 9.0}, "env": {"cpus": 2},
                   "device": "cpu", "tokens_per_sec": 12.5, "mfu": None, "training": {"seconds": 3.87}}


def test_write_report_files_writes_metrics_and_a_timing_plot(tmp_path):
    timer = Timer()
    timer.mark("work")
    path = tmp_path / "eval" / "base.json"
    merged = write_report_files(path, {"score": 0.5, "timing": {"load_s": 0.25}, "env": {"torch": "2"}}, timer)
    assert json.loads(path.read_text()) == {"score": 0.5}
    assert run_facts_path(path) == tmp_path / "eval" / "base.timing.json"
    run = json.loads(run_facts_path(path).read_text())
    assert [s["step"] for s in run["steps"]] == ["load", "work", "total"]
    assert run["env"]["torch"] == "2" and run["env"]["cpus"] == os.cpu_count()
    assert merged["score"] == 0.5 and merged["timing"]["work_s"] == run["timing"]["work_s"]


def test_summary_takes_the_headline_figures():
    reports = {
        "filter": {"files_kept": 5, "bytes_kept": 50, "files_dropped": 1, "languages": {"c": {"kept": 5}}},
        "repo_docs": {"repos": 2, "languages": {
            "python": {"graph_edges": 4, "edges_in_order": 3, "acyclic_edges": 2, "acyclic_in_order": 2,
                       "cycle_edges": 2, "cycle_in_order": 1},
            "c": {"graph_edges": 0, "edges_in_order": 0}}},
        "dedup": {"repos_out": 9, "repos_removed": 1, "bytes": 100, "bytes_removed": 10},
        "decontam": {"files_removed": 2, "per_benchmark": {"humaneval": {"items": 2, "files": 2}}},
        "pack": {"splits": {"train": {"n_tokens": 1000, "n_repos": 8}, "val": {"n_tokens": 100}},
                 "fim": {"stats": {"train": {"complete_window_share": 0.25, "fim_share": 0.5}}}},
        "pretrain": {"tokens": 64, "final_train_loss": 6.5, "final_val_loss": 6.6},
        "eval/base": {"summary": {"humaneval": {"pass@1": 0.125}}},
    }
    s = summarize(reports)
    assert s["filter"] == {"files": 5, "bytes": 50, "dropped": 1}
    assert s["repo_docs"] == {"repos": 2, "edges": 4, "edges_in_order_share": 0.75, "acyclic_in_order_share": 1.0,
                              "cycle_in_order_share": 0.5}
    assert s["dedup"] == {"repos": 9, "removed": 1, "bytes_removed": 10, "bytes": 90}
    assert s["decontam"] == {"files_removed": 2, "humaneval_items_matched": 2}
    assert s["pack"] == {"train_tokens": 1000, "val_tokens": 100, "train_repos": 8, "fim_window_share": 0.25}
    assert s["train"] == {"pretrain": {"tokens": 64, "train_loss": 6.5, "val_loss": 6.6}}
    assert s["eval"] == {"base": {"humaneval.pass@1": 0.125}}
    assert "ingest" not in s  # a missing report leaves its section out
    assert edges_respected({}) == {"edges": 0}


def test_share_prefect_api_keeps_a_configured_server(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    assert share_prefect_api() == "http://127.0.0.1:1/api"  # nothing started, nothing changed


def test_exp_table_puts_experiments_side_by_side():
    from flows.exp import columns, table

    def rev(name, a, files):
        return {"rev": name, "name": name, "data": {"params": {"params.yaml": {"data": {"filter": {"a": a}, "b": 1}}},
                                                 "metrics": {"reports/summary.json": {"data": {"filter": {"files": files},
                                                                                               "ingest": {"files": 9}}}}}}
    show = [rev("workspace", 0.0, 12), {**rev("abc1234def", 0.25, 11), "name": "master",
                                       "experiments": [{"name": "alpha0", "revs": [rev("e1", 0.0, 12)]}]}]
    cols = columns(show, "reports/summary.json")
    assert [c[0] for c in cols] == ["workspace", "master", "alpha0"]
    assert table(cols, changed_only=True) == [["", "workspace", "master", "alpha0"],
                                              ["param filter.a", "0", "0.25", "0"],
                                              ["filter.files", "12", "11", "12"]]
    assert ["ingest.files", "9", "9", "9"] in table(cols, changed_only=False)
