"""The contamination view of an evaluation score."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from dscoder.eval.contamination import (BenchmarkMatches, contamination_view, decontam_item_id, gsm8k_line_ids,
                                        load_matches)
from dscoder.eval.pal import load_gsm8k


def test_item_ids_map_onto_decontam_ids():
    assert decontam_item_id("humaneval", "HumanEval/53") == "HumanEval/53"
    assert decontam_item_id("humaneval", "HumanEval/53/L12") == "HumanEval/53"  # a FIM task of it
    assert decontam_item_id("mbpp", "MBPP/11") == "11"


def test_gsm8k_ids_are_decontam_line_numbers(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_text(json.dumps({"question": "a", "answer": "#### 1"}) + "\n\n"
                 + json.dumps({"task_id": "q7", "question": "b", "answer": "#### 2"}) + "\n{broken\n"
                 + json.dumps({"question": "c", "answer": "#### 3"}) + "\n")
    problems, _ = load_gsm8k(p)
    lines = gsm8k_line_ids(p)
    # decontam numbers lines from 1, blank and broken ones included
    assert [lines[q.task_id] for q in problems] == ["line:1", "line:3", "line:5"]


def test_load_matches_counts_per_benchmark(tmp_path):
    rows = [{"benchmark": "humaneval", "item_id": "HumanEval/2", "repo_id": "a", "path": "x.py"},
            {"benchmark": "humaneval", "item_id": "HumanEval/2", "repo_id": "a", "path": "x.py"},  # 2nd n-gram
            {"benchmark": "humaneval", "item_id": "HumanEval/10", "repo_id": "b", "path": "x.py"},
            {"benchmark": "mbpp", "item_id": "3", "repo_id": "a", "path": "y.py"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "m.parquet")
    m = load_matches(tmp_path / "m.parquet")
    assert m["humaneval"] == BenchmarkMatches(frozenset({"HumanEval/2", "HumanEval/10"}), files=2, repos=2)
    assert m["mbpp"].items == {"3"} and load_matches(tmp_path / "missing.parquet") == {}


def test_clean_score_leaves_out_matched_items_only():
    per = {"HumanEval/1/L0": True, "HumanEval/1/L1": True, "HumanEval/2/L0": False, "HumanEval/3/L4": True}
    score = lambda v: {"exact_match": sum(v) / len(v)}  # noqa: E731
    m = BenchmarkMatches(frozenset({"HumanEval/1", "HumanEval/99"}), files=3, repos=1)
    v = contamination_view(per, lambda t: decontam_item_id("humaneval", t), m, score)
    assert v["matched_items"] == 2 and v["matched_ids"] == ["HumanEval/1", "HumanEval/99"]
    assert v["matched_ids_evaluated"] == ["HumanEval/1"] and v["clean_n"] == 2
    assert v["clean"] == {"exact_match": 0.5}
    none = contamination_view(per, lambda t: decontam_item_id("humaneval", t), None, score)
    assert none["matched_items"] == 0 and none["clean_n"] == 4 and none["clean"] == {"exact_match": 0.75}
