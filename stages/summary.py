"""summary: <paths.reports>/*.json → <paths.reports>/summary.json, the figures one compares across experiments.

    python -m stages.summary            # what `dvc repro summary` runs
    .venv/bin/dscoder exp               # the headline side by side across experiments

One small file of headline metrics, nested by stage: files and bytes kept at each data stage,
repositories and documents, dependency edges respected, near-duplicates and contaminated files
removed (hits per benchmark), training tokens and the share of windows holding a FIM example,
each training stage's final train/validation loss and each evaluated model's main scores. The
per-stage reports keep every breakdown (per language, per rule, per benchmark); this file is
what `dscoder exp` shows by default. A report that does not exist (a stage not run yet, or left
out of a trimmed pipeline) leaves its section out.

Not a Prefect flow: it reads and writes a few JSON files in milliseconds, where a flow would
need a Prefect API (a temporary server alone costs ~10 s without one).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dscoder.io import write_json
from dscoder.paths import Paths

TRAINING = ("pretrain", "long_context", "instruct", "general_lm", "continue_pretrain")
REPORTED = ("ingest", "filter", "repo_docs", "dedup", "decontam", "pack", *TRAINING)
"""The stage reports summarized (with every evaluated model's)."""
READS = (*(("reports", f"{n}.json") for n in REPORTED), ("reports", "eval/{model}.json"))
WRITES = (("reports", "summary.json"),)


def _get(d: dict, dotted: str) -> Any:
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _pick(report: dict, fields: dict[str, str]) -> dict[str, Any]:
    """{headline name: report[dotted path]} for the paths present."""
    return {name: v for name, path in fields.items() if (v := _get(report, path)) is not None}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def edges_respected(languages: dict[str, dict]) -> dict[str, Any]:
    """Ordering edges whose target precedes its source, over all languages: all, off cycles, in cycles."""
    tot = {k: sum(int(st.get(k) or 0) for st in languages.values())
           for k in ("graph_edges", "edges_in_order", "acyclic_edges", "acyclic_in_order", "cycle_edges",
                     "cycle_in_order")}
    out = {"edges": tot["graph_edges"], "edges_in_order_share": _share(tot["edges_in_order"], tot["graph_edges"]),
           "acyclic_in_order_share": _share(tot["acyclic_in_order"], tot["acyclic_edges"]),
           "cycle_in_order_share": _share(tot["cycle_in_order"], tot["cycle_edges"])}
    return {k: v for k, v in out.items() if v is not None}


def summarize(reports: dict[str, dict]) -> dict[str, Any]:
    """The headline figures from the reports given ({name: report}, eval reports as `eval/<model>`)."""
    out: dict[str, Any] = {}
    if r := reports.get("ingest"):
        out["ingest"] = _pick(r, {"repos": "repos", "files": "files", "bytes": "bytes", "skipped": "dropped_total"})
    if r := reports.get("filter"):
        out["filter"] = _pick(r, {"files": "files_kept", "bytes": "bytes_kept", "dropped": "files_dropped"})
    if r := reports.get("repo_docs"):
        out["repo_docs"] = {**_pick(r, {"repos": "repos", "documents": "documents", "files": "files"}),
                            **edges_respected(r.get("languages") or {})}
    if r := reports.get("dedup"):
        d = _pick(r, {"repos": "repos_out", "removed": "repos_removed", "bytes_removed": "bytes_removed",
                      "clusters": "duplicate_clusters"})
        if isinstance(r.get("bytes"), int) and isinstance(r.get("bytes_removed"), int):
            d["bytes"] = r["bytes"] - r["bytes_removed"]
        out["dedup"] = d
    if r := reports.get("decontam"):
        d = _pick(r, {"repos": "repos_out", "files_removed": "files_removed", "bytes_removed": "bytes_removed"})
        for bench, hits in sorted((r.get("per_benchmark") or {}).items()):
            d[f"{bench}_items_matched"] = hits.get("items", 0)
        out["decontam"] = d
    if r := reports.get("pack"):
        d = _pick(r, {"train_tokens": "splits.train.n_tokens", "val_tokens": "splits.val.n_tokens",
                      "train_repos": "splits.train.n_repos"})
        # windows holding a complete FIM example where pack reports it; else the share of documents with FIM
        fim = _get(r, "fim.stats.train.complete_window_share")
        d["fim_window_share" if fim is not None else "fim_doc_share"] = (
            fim if fim is not None else _get(r, "fim.stats.train.fim_share"))
        out["pack"] = {k: v for k, v in d.items() if v is not None}
    train = {stage: _pick(r, {"tokens": "tokens", "train_loss": "final_train_loss", "val_loss": "final_val_loss"})
             for stage in TRAINING if (r := reports.get(stage))}
    if train:
        out["train"] = train
    evals = {name.split("/", 1)[1]: {f"{bench}.{metric}": v for bench, scores in sorted((r.get("summary") or {}).items())
                                     for metric, v in sorted(scores.items())}
             for name, r in sorted(reports.items()) if name.startswith("eval/")}
    if evals:
        out["eval"] = evals
    return out


def read_reports(reports_dir: Path) -> dict[str, dict]:
    out = {n: json.loads(p.read_text()) for n in REPORTED if (p := reports_dir / f"{n}.json").is_file()}
    for p in sorted((reports_dir / "eval").glob("*.json")):
        if not p.name.endswith(".timing.json"):
            out[f"eval/{p.stem}"] = json.loads(p.read_text())
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml", help="params file whose paths.reports is the default --reports")
    ap.add_argument("--reports", default=None, help="folder of the stage reports (default: paths.reports)")
    ap.add_argument("--out", default=None, help="output (default: <reports>/summary.json)")
    args = ap.parse_args(argv)
    reports = Path(args.reports or Paths.load(args.params).reports)
    summary = summarize(read_reports(reports))
    write_json(Path(args.out) if args.out else reports / "summary.json", summary)
    print(f"summary: {', '.join(summary) or 'no reports'} → {args.out or reports / 'summary.json'}")


if __name__ == "__main__":
    main()
