"""File and repository decisions, and the data diff, on hand-made stage outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dscoder.lineage.diff import diff, format_diff
from dscoder.lineage.index import Lineage
from dscoder.paths import Paths
from dscoder.schemas import AUDIT, CLUSTERS, FILES, REPOS

ROOT = Path(__file__).resolve().parents[3]
P = Paths.load(ROOT / "params.yaml")  # the project's paths: Lineage.at reads them from the copy

# repo -> {path: language}
RAW = {"r1": {"a.py": "python", "b.py": "python", "c.js": "javascript"},
       "r2": {"a.py": "python"},                 # a near-duplicate of r1
       "r3": {"m.c": "c", "n.c": "c"}}


def _files(rows):
    return pa.Table.from_pylist([{"repo_id": r, "repo_name": r.upper(), "path": p, "language": lang, "content": "x",
                                  "size": 1, "sha256": "0", "source": "t"} for r, p, lang in rows], schema=FILES)


def _repos(files):
    out = {}
    for r, p, lang in files:
        out.setdefault(r, []).append({"path": p, "language": lang, "start": len(out[r]) if r in out else 0,
                                      "end": 0, "header_chars": 0})
    rows = []
    for r, fs in out.items():
        for i, f in enumerate(fs):
            f["start"], f["end"] = i, i + 1
        rows.append({"repo_id": r, "repo_name": r.upper(), "source": "t", "text": "x" * len(fs), "files": fs,
                     "languages": sorted({f["language"] for f in fs}), "n_files": len(fs), "edges_found": 0,
                     "edges_resolved": 0, "cycles_broken": 0})
    return pa.Table.from_pylist(rows, schema=REPOS)


def _audit(stage, rows):
    return pa.Table.from_pylist([{"stage": stage, "repo_id": r, "repo_name": r.upper(), "path": p, "language": lang,
                                  "reason": reason, "detail": detail, "size": 1}
                                 for r, p, lang, reason, detail in rows], schema=AUDIT)


def make_version(root: Path, filter_drops: dict[tuple[str, str], str]) -> Path:
    all_files = [(r, p, lang) for r, fs in RAW.items() for p, lang in fs.items()]
    kept = [f for f in all_files if (f[0], f[1]) not in filter_drops]
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    for key in ("raw_files", "filtered_files", "repo_docs", "dedup_repos", "clean_repos"):
        (root / P.get(key)).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(_files(all_files), root / P.raw_files)
    pq.write_table(_audit("ingest", [("r1", "LICENSE", None, "unknown_language", None)]), root / P.raw_audit)
    pq.write_table(_files(kept), root / P.filtered_files)
    pq.write_table(_audit("filter", [(r, p, RAW[r][p], rule, "measured") for (r, p), rule in filter_drops.items()]),
                   root / P.filtered_audit)
    pq.write_table(_repos(kept), root / P.repo_docs)
    pq.write_table(pa.Table.from_pylist([
        {"repo_id": "r1", "cluster_id": "r1", "kept": True, "jaccard": 1.0},
        {"repo_id": "r2", "cluster_id": "r1", "kept": False, "jaccard": 0.93},
        {"repo_id": "r3", "cluster_id": "r3", "kept": True, "jaccard": 1.0}], schema=CLUSTERS),
        root / P.dedup_clusters)
    dedup = [f for f in kept if f[0] != "r2"]
    pq.write_table(_repos(dedup), root / P.dedup_repos)
    clean = [f for f in dedup if (f[0], f[1]) != ("r3", "n.c")]
    pq.write_table(_repos(clean), root / P.clean_repos)
    pq.write_table(_audit("decontam", [("r3", "n.c", "c", "benchmark:humaneval", "HumanEval/1 prompt ngram: ...")]),
                   root / P.clean_audit)
    return root


def test_file_decisions_name_stage_and_rule(tmp_path):
    lin = Lineage.at(make_version(tmp_path, {("r1", "c.js"): "max_line_length"}))
    assert lin.file_decision("r1", "a.py")["kept"] is True
    d = lin.file_decision("r1", "c.js")
    assert (d["kept"], d["dropped_at"], d["reason"]) == (False, "filter", "max_line_length")
    d = lin.file_decision("r2", "a.py")
    assert (d["dropped_at"], d["reason"]) == ("dedup", "near_duplicate") and "R1" in d["detail"]
    d = lin.file_decision("r3", "n.c")
    assert (d["dropped_at"], d["reason"]) == ("decontam", "benchmark:humaneval")
    assert lin.file_decision("r1", "LICENSE")["dropped_at"] == "ingest"
    assert lin.resolve_repo("R2") == ["r2"] and lin.resolve_path("a.py") == [("r1", "a.py"), ("r2", "a.py")]
    rd = lin.repo_decision("r2")
    assert rd["kept"] is False and rd["stopped_at"] == "dedup" and rd["dedup"]["cluster_id"] == "r1"


def test_diff_lists_exactly_the_moved_files_with_the_rule(tmp_path):
    a = Lineage.at(make_version(tmp_path / "a", {("r1", "c.js"): "max_line_length", ("r3", "m.c"): "parse_errors"}))
    b = Lineage.at(make_version(tmp_path / "b", {("r1", "b.py"): "alpha_fraction", ("r3", "m.c"): "parse_errors"}))
    d = diff(a, b)
    assert [(e["repo_id"], e["path"]) for e in d["added"]] == [("r1", "c.js")]
    assert d["added"][0]["decision"] == {"dropped_at": "filter", "reason": "max_line_length", "detail": "measured"}
    assert [(e["repo_id"], e["path"]) for e in d["removed"]] == [("r1", "b.py")]
    assert d["removed"][0]["decision"]["reason"] == "alpha_fraction"
    assert d["by_language"] == {"javascript": {"files_a": 0, "files_b": 1, "added": 1, "removed": 0},
                                "python": {"files_a": 2, "files_b": 1, "added": 0, "removed": 1}}
    assert d["repos"]["added"] == [] and d["repos"]["removed"] == []
    text = "\n".join(format_diff(d))
    assert "+ R1/c.js [javascript]" in text and "alpha_fraction" in text
    assert diff(a, a)["files"]["added"] == 0
