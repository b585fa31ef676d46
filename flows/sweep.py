"""A parameter grid as DVC experiments, then one table comparing their params and metrics.

    python -m flows.sweep --set filter.max_line_length=500,1000 --set dedup.threshold=0.7,0.8
    python -m flows.sweep --set filter.min_alpha_fraction=0,0.25 filter    # only up to `filter`

Every point of the grid (the cartesian product of the `--set` lists) is queued with
`dvc exp run --queue -S key=value ...`, then `dvc exp run --run-all` runs the queue (each
experiment in its own temporary copy of the repo; DVC restores what is cached, so only stages a
parameter touches rerun). `dvc exp show --json` is read back into one table (experiment,
swept params, the scalar metrics of every reports/<stage>.json), printed and published as the
Prefect table artifact `sweep-comparison`. Needs a git repo with at least one commit (DVC
experiments are based on HEAD). Experiments stay in the repo: `dvc exp show`, `dvc exp apply
NAME`, `dvc exp remove -A`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger

from flows.pipeline import child_env, find_root

SKIP_METRIC_PARTS = ("timing", "env", "throughput")
"""Metric keys left out of the table: wall times and machine facts differ between identical runs."""


def parse_grid(assignments: list[str]) -> dict[str, list[Any]]:
    """`["a.b=1,2", "c=x"]` → `{"a.b": [1, 2], "c": ["x"]}` (values parsed as YAML scalars)."""
    grid: dict[str, list[Any]] = {}
    for a in assignments:
        key, sep, values = a.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ValueError(f"--set: expected key=v1,v2,... got {a!r}")
        grid[key.strip()] = [yaml.safe_load(v) for v in values.split(",")]
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the grid, in the order given (last key varies fastest)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def _dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=child_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}."))
    return out


def _scalar_metrics(metrics: dict, path: str) -> dict[str, Any]:
    """Top-level scalars of reports/<stage>.json as `<stage>.<key>` (nested per-language and
    per-rule counts would make the table unreadable; `dvc exp show` has them all)."""
    stage = Path(path).stem
    return {f"{stage}.{k}": v for k, v in metrics.items()
            if isinstance(v, (int, float, str, bool)) and k not in SKIP_METRIC_PARTS}


def _rows_of(baseline: dict) -> list[tuple[dict, str]]:
    """`dvc exp show --json` entries with a status: the baseline commit, then its experiments
    (experiments[].revs[]; the range's executor.state is queued/running/failed, none once done)."""
    out = [(baseline, "baseline")]
    for exp in baseline.get("experiments") or []:
        state = (exp.get("executor") or {}).get("state") or "success"
        for rev in exp.get("revs") or []:
            out.append((rev, "failed" if rev.get("error") else state))
    return out


def comparison_table(exp_show: list[dict], param_keys: list[str], names: list[str] | None = None) -> list[dict]:
    """One row per experiment, after the baseline it branched from: name, rev, status, the swept
    params, the scalar metrics. `names` restricts the rows to these experiments (and baselines)."""
    rows = []
    for baseline in exp_show:
        if baseline.get("rev") == "workspace":
            continue
        for e, status in _rows_of(baseline):
            if names is not None and status != "baseline" and e.get("name") not in names:
                continue
            data = e.get("data") or {}
            params = {}
            for file_params in (data.get("params") or {}).values():
                params.update(_flatten(file_params.get("data") or {}))
            row: dict[str, Any] = {"experiment": e.get("name") or (e.get("rev") or "")[:7],
                                   "rev": (e.get("rev") or "")[:7], "status": status}
            row.update({k: params.get(k) for k in param_keys})
            for path, m in sorted((data.get("metrics") or {}).items()):
                row.update(_scalar_metrics(m.get("data") or {}, path))
            rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[str(c) for c in cols]] + [["" if r.get(c) is None else str(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@flow(name="dscoder-sweep", log_prints=True)
def sweep(grid: dict[str, list], targets: list[str] | None = None, repo: str = ".", jobs: int = 1) -> list[dict]:
    """Queue one DVC experiment per grid point, run the queue, return the comparison table."""
    from prefect.artifacts import create_table_artifact

    logger = get_run_logger()
    root = find_root(repo)
    names = []
    for point in grid_points(grid):
        sets = [a for k, v in point.items() for a in ("-S", f"{k}={json.dumps(v)}")]
        out = _dvc(root, "exp", "run", "--queue", *sets, *(targets or []))
        found = re.findall(r"Queued experiment '([^']+)'", out.stdout + out.stderr)
        names += found
        logger.info("queued %s: %s", found, point)
    run = _dvc(root, "exp", "run", "--run-all", "--jobs", str(jobs))
    for line in (run.stdout + run.stderr).splitlines()[-60:]:
        logger.info("%s", line)
    shown = json.loads(_dvc(root, "exp", "show", "--json").stdout)
    rows = comparison_table(shown, list(grid), names or None)
    print(format_table(rows))
    create_table_artifact(key="sweep-comparison", table=rows,
                          description=f"dvc exp show: {len(names)} experiments over {json.dumps(grid)}")
    bad = [r["experiment"] for r in rows if r["status"] not in ("baseline", "success")]
    missing = sorted(set(names) - {r["experiment"] for r in rows})
    if bad or missing:
        raise RuntimeError(f"experiments failed: {bad}; missing from dvc exp show: {missing}")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.sweep", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", help="stages to reproduce in each experiment (default: all)")
    ap.add_argument("--set", dest="sets", action="append", required=True, metavar="KEY=V1,V2",
                    help="a params.yaml key and its values; repeat for a grid")
    ap.add_argument("--repo", default=".", help="project folder (holding dvc.yaml)")
    ap.add_argument("--jobs", type=int, default=1, help="experiments run at once (default 1)")
    args = ap.parse_args(argv)
    try:
        grid = parse_grid(args.sets)
    except ValueError as e:
        ap.error(str(e))
    from flows.pipeline import with_server

    with with_server(args.repo):
        sweep(grid, args.targets or None, args.repo, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
