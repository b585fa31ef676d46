"""`dscoder exp`: the headline metrics (reports/summary.json) of experiments side by side.

    .venv/bin/dvc exp run -S filter.max_line_length=500     # an experiment
    .venv/bin/dscoder exp                                    # workspace, HEAD and its experiments
    .venv/bin/dscoder exp --changed                          # only the rows that differ
    .venv/bin/dscoder exp --file reports/filter.json         # any report's full breakdown instead

One row per figure, one column per experiment (from `dvc exp show --json`), params that differ
between the columns first. The per-stage reports keep every breakdown (`--file`, `dvc metrics
diff`); timings are never metrics (reports/<stage>.timing.json, `dvc plots show`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

HELP = "the headline metrics (reports/summary.json) of DVC experiments side by side"
EXAMPLE = "dscoder exp --changed"


def summary_file(params_file: str = "params.yaml") -> str:
    """The summary stage's metrics file, `<paths.reports>/summary.json` of the project's params."""
    from dscoder.paths import Paths

    return Paths.load(params_file).report("summary")


def columns(show: list[dict], file: str) -> list[tuple[str, dict, dict]]:
    """(column name, params, metrics of `file`) for every revision and experiment of `dvc exp show --json`."""
    from flows.sweep import _flatten as flatten  # lazily: `dscoder --help` imports this module

    def one(name: str, rec: dict) -> tuple[str, dict, dict]:
        data = rec.get("data") or {}
        params = {k: v for f in (data.get("params") or {}).values() for k, v in flatten(f.get("data") or {}).items()}
        metrics = flatten(((data.get("metrics") or {}).get(file) or {}).get("data") or {})
        return name, params, metrics

    cols = []
    for rev in show:
        label = rev.get("name") or (rev["rev"][:7] if rev["rev"] != "workspace" else "workspace")
        cols.append(one(label, rev))
        for exp in rev.get("experiments") or []:
            for r in exp.get("revs") or []:
                cols.append(one(exp.get("name") or r.get("name") or r["rev"][:7], r))
    return cols


def table(cols: list[tuple[str, dict, dict]], changed_only: bool) -> list[list[str]]:
    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.6g}"
        return str(v)

    params = sorted({k for _, p, _ in cols for k in p})
    params = [k for k in params if len({json.dumps(p.get(k)) for _, p, _ in cols}) > 1]
    metrics: list[str] = []
    for _, _, m in cols:
        metrics += [k for k in m if k not in metrics]
    if changed_only:
        metrics = [k for k in metrics if len({json.dumps(m.get(k)) for _, _, m in cols}) > 1]
    rows = [["", *[c[0] for c in cols]]]
    rows += [[f"param {k}", *[fmt(p.get(k)) for _, p, _ in cols]] for k in params]
    rows += [[k, *[fmt(m.get(k)) for _, _, m in cols]] for k in metrics]
    return rows


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--changed", action="store_true", help="only the figures that differ between the columns")
    ap.add_argument("--file", default=None, help="metrics file to show (default: <paths.reports>/summary.json)")
    ap.add_argument("-A", "--all-commits", action="store_true", help="experiments of every commit, not only HEAD")
    ap.add_argument("--json", action="store_true", help="{column: {figure: value}} instead of a table")


def main(args: argparse.Namespace) -> int:
    cmd = ["dvc", "exp", "show", "--json"] + (["-A"] if args.all_commits else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        return out.returncode
    cols = columns(json.loads(out.stdout), args.file or summary_file())
    if args.json:
        print(json.dumps({name: {**{f"param {k}": v for k, v in p.items()}, **m} for name, p, m in cols}, indent=2))
        return 0
    rows = table(cols, args.changed)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    sys.exit(main(ap.parse_args()))
