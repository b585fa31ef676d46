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

from dscoder.io import write_json
from dscoder.paths import Paths
from dscoder.summary import TRAINING, summarize

REPORTED = ("ingest", "filter", "repo_docs", "dedup", "decontam", "pack", *TRAINING)
"""The stage reports summarized (with every evaluated model's)."""
READS = (*(("reports", f"{n}.json") for n in REPORTED), ("reports", "eval/{model}.json"))
WRITES = (("reports", "summary.json"),)


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
