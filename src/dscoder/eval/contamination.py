"""Contamination-aware scores: each benchmark score is shown next to the
decontamination hits of that benchmark (data/clean/matches.parquet, written by the decontam
stage, Sec. 2.4) and recomputed on the items that never matched any training file.

Item ids differ between the benchmark loaders and decontam's audit; `decontam_item_id` maps
one onto the other: HumanEval 'HumanEval/53' (its FIM tasks 'HumanEval/53/L4' too) is kept
as is, MBPP 'MBPP/11' is decontam's task_id '11', and GSM8K rows are decontam's 'line:N'
(1-based line of the JSONL file).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence, TypeVar

T = TypeVar("T")
_FIM_LINE = re.compile(r"/L\d+$")


@dataclass(frozen=True)
class BenchmarkMatches:
    """What decontam found for one benchmark."""

    items: frozenset[str]
    """Item ids (decontam's) that matched at least one training file."""
    files: int
    """Matched (repository, path) pairs: files removed from the corpus for this benchmark."""
    repos: int


def load_matches(path: str | os.PathLike) -> dict[str, BenchmarkMatches]:
    """Per benchmark name, the items, files and repositories of decontam's matches table.
    A missing file means no decontamination ran: every benchmark reads as unmatched."""
    import pyarrow.parquet as pq

    if not os.path.exists(path):
        return {}
    rows = pq.read_table(path, columns=["benchmark", "item_id", "repo_id", "path"]).to_pylist()
    items, files, repos = defaultdict(set), defaultdict(set), defaultdict(set)
    for r in rows:
        b = r["benchmark"]
        items[b].add(r["item_id"])
        files[b].add((r["repo_id"], r["path"]))
        repos[b].add(r["repo_id"])
    return {b: BenchmarkMatches(frozenset(items[b]), len(files[b]), len(repos[b])) for b in items}


def decontam_item_id(kind: str, task_id: str) -> str:
    """The decontam item id of an evaluation task id (see the module docstring)."""
    if kind == "humaneval":
        return _FIM_LINE.sub("", task_id)
    if kind == "mbpp":
        return task_id.removeprefix("MBPP/")
    return task_id  # gsm8k: the stage names tasks by their decontam id already


def gsm8k_line_ids(path: str | os.PathLike) -> dict[str, str]:
    """task_id as `dscoder.eval.pal.load_gsm8k` names it -> decontam's 'line:N' for the same
    row (decontam always counts lines, even when rows carry a task_id)."""
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                out[str(row.get("task_id", f"gsm8k/{i}"))] = f"line:{i + 1}"
    return out


def _natural(s: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]


def contamination_view(per_task: Mapping[str, T], item_of: Callable[[str], str],
                       matches: BenchmarkMatches | None,
                       score: Callable[[Sequence[T]], Mapping[str, float]]) -> dict:
    """Decontam hits of a benchmark and its score on the never-matched items.

    `per_task` holds each evaluated task's outcome (in evaluation order), `item_of` maps a
    task id to its decontam item id, `score` turns a list of outcomes into metrics (the same
    function that scored the whole set, so the two are comparable)."""
    matched = matches.items if matches else frozenset()
    evaluated = {item_of(t) for t in per_task}
    hit = sorted(evaluated & matched, key=_natural)
    clean = [v for t, v in per_task.items() if item_of(t) not in matched]
    return {
        "matched_items": len(matched),
        "matched_files": matches.files if matches else 0,
        "matched_repos": matches.repos if matches else 0,
        "matched_ids": sorted(matched, key=_natural),
        "matched_items_evaluated": len(hit),
        "matched_ids_evaluated": hit,
        "clean_n": len(clean),
        "clean": dict(score(clean)) if clean else {},
    }
