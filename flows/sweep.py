"""A parameter grid as DVC experiments, then one table comparing their params and metrics.

    python -m flows.sweep --set filter.max_line_length=500,1000 --set dedup.threshold=0.7,0.8
    python -m flows.sweep --set filter.min_alpha_fraction=0,0.25 filter    # only up to `filter`
    python -m flows.sweep --set dedup.threshold=0.6,0.7,0.8 --plot reports/ui/sweep-dedup.threshold.svg \
        --metric dedup.repos_removed --metric pack.train_tokens pack

Every point of the grid (the cartesian product of the `--set` lists) is queued with
`dvc exp run --queue -S key=value ...`, then `dvc exp run --run-all` runs the queue (each
experiment in its own temporary copy of the repo; DVC restores what is cached, so only stages a
parameter touches rerun). `dvc exp show --json` is read back into one table (experiment,
swept params, the scalar metrics of every reports/<stage>.json), printed and published as the
Prefect table artifact `sweep-comparison`. Needs a git repo with at least one commit (DVC
experiments are based on HEAD). Experiments stay in the repo: `dvc exp show`, `dvc exp apply
NAME`, `dvc exp remove -A`.

`--plot FILE.svg` draws each swept parameter against each `--metric` (a metric's name as in the
table, `<report>.<key>`, where nested keys are dotted and a report under reports/eval is
`eval/<model>`, e.g. `eval/base.summary.humaneval.pass@1`; shell-style wildcards allowed),
by default the table's metrics that differ between the experiments (`flows.plot`). `--no-run`
queues and runs nothing: it tables and plots the experiments already in the repo whose swept
params are values of the grid.
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger

from flows.cli import find_root
from flows.pipeline import child_env
from flows.plot import is_number, write_sweep_plot

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


def report_name(path: str) -> str:
    """`reports/filter.json` → `filter`, `reports/eval/base.json` → `eval/base` (so an eval
    report and a training report of the same name stay apart)."""
    p = Path(path)
    parts = p.with_suffix("").parts
    return "/".join(parts[1:] if parts[:1] == ("reports",) and len(parts) > 1 else parts)


def _scalar_metrics(metrics: dict, path: str, nested: bool = False) -> dict[str, Any]:
    """Top-level scalars of reports/<stage>.json as `<stage>.<key>` (nested per-language and
    per-rule counts would make the table unreadable; `dvc exp show` has them all). `nested`:
    every scalar, nested keys dotted (what `--metric` can pick for the plot)."""
    name = report_name(path)
    if nested:
        return {f"{name}.{k}": v for k, v in _flatten(metrics).items()
                if isinstance(v, (int, float, str, bool)) and k.split(".")[0] not in SKIP_METRIC_PARTS}
    return {f"{name}.{k}": v for k, v in metrics.items()
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


def comparison_table(exp_show: list[dict], param_keys: list[str], names: list[str] | None = None,
                     nested: bool = False) -> list[dict]:
    """One row per experiment, after the baseline it branched from: name, rev, status, the swept
    params, the scalar metrics (`nested`: every scalar of every report, for the plot). `names`
    restricts the rows to these experiments (and baselines)."""
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
                row.update(_scalar_metrics(m.get("data") or {}, path, nested))
            rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[str(c) for c in cols]] + [["" if r.get(c) is None else str(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def in_grid(rows: list[dict], grid: dict[str, list]) -> list[dict]:
    """The experiment rows (no baselines) whose swept params are values of the grid."""
    def norm(v: Any) -> str:  # 1 and 1.0 are one grid value
        return json.dumps(float(v) if is_number(v) else v, sort_keys=True)
    allowed = {k: {norm(v) for v in vs} for k, vs in grid.items()}
    return [r for r in rows if r.get("status") != "baseline"
            and all(norm(r.get(k)) in allowed[k] for k in grid)]


def pick_metrics(rows: list[dict], patterns: list[str] | None, table_rows: list[dict] | None = None,
                 params: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The metric columns to plot: those matching `patterns` (names or shell-style wildcards;
    in the order given, then by name), else the table's numeric metrics that differ between the
    rows. A pattern that matches nothing numeric raises ValueError naming it."""
    fixed = {"experiment", "rev", "status", *params}
    cols = sorted({k for r in rows for k, v in r.items() if k not in fixed and is_number(v)})
    if patterns:
        out: list[str] = []
        for pat in patterns:
            hits = [c for c in cols if fnmatch.fnmatchcase(c, pat)]
            if not hits:
                raise ValueError(f"--metric {pat!r}: no numeric metric of that name (e.g. {', '.join(cols[:5])})")
            out += [c for c in hits if c not in out]
        return out
    shown = {k for r in (table_rows if table_rows is not None else rows) for k in r}
    return [c for c in cols if c in shown and "." in c
            and len({json.dumps(r.get(c)) for r in rows}) > 1]


def plot_sweep(exp_show: list[dict], grid: dict[str, list], names: list[str] | None, path: str | Path,
               metrics: list[str] | None = None, table_rows: list[dict] | None = None) -> tuple[Path, list[str]]:
    """Draw the sweep's experiments (swept params against metrics) to `path` (SVG)."""
    rows = [r for r in comparison_table(exp_show, list(grid), names, nested=True)
            if r["status"] not in ("baseline", "failed")]
    if names is None:
        rows = in_grid(rows, grid)
    chosen = pick_metrics(rows, metrics, table_rows, list(grid))
    title = "dscoder sweep: " + ", ".join(f"{k} in {json.dumps(v)}" for k, v in grid.items())
    return write_sweep_plot(rows, list(grid), chosen, path, title=title), chosen


@flow(name="dscoder-sweep", log_prints=True)
def sweep(grid: dict[str, list], targets: list[str] | None = None, repo: str = ".", jobs: int = 1,
          plot: str | None = None, metrics: list[str] | None = None, run: bool = True) -> list[dict]:
    """Queue one DVC experiment per grid point, run the queue, return the comparison table;
    with `plot`, also draw it (`plot_sweep`). `run=False`: only the experiments already there."""
    from prefect.artifacts import create_table_artifact

    logger = get_run_logger()
    root = find_root(repo)
    names = []
    for point in grid_points(grid) if run else []:
        sets = [a for k, v in point.items() for a in ("-S", f"{k}={json.dumps(v)}")]
        out = _dvc(root, "exp", "run", "--queue", *sets, *(targets or []))
        found = re.findall(r"Queued experiment '([^']+)'", out.stdout + out.stderr)
        names += found
        logger.info("queued %s: %s", found, point)
    if run:
        done = _dvc(root, "exp", "run", "--run-all", "--jobs", str(jobs))
        for line in (done.stdout + done.stderr).splitlines()[-60:]:
            logger.info("%s", line)
    shown = json.loads(_dvc(root, "exp", "show", "--json").stdout)
    rows = comparison_table(shown, list(grid), names or None)
    if not run:
        rows = [r for r in rows if r["status"] == "baseline"] + in_grid(rows, grid)
    print(format_table(rows))
    plot_error = None
    if plot:
        try:
            out, chosen = plot_sweep(shown, grid, names or None, plot, metrics, rows)
            print(f"plot: {out} ({len(chosen)} metrics x {len(grid)} params: {', '.join(chosen)})")
        except ValueError as e:  # the experiments are there: `--no-run` redraws them
            plot_error = e
            logger.error("plot not drawn: %s (redraw with --no-run)", e)
    create_table_artifact(key="sweep-comparison", table=rows,
                          description=f"dvc exp show: {len(names)} experiments over {json.dumps(grid)}")
    bad = [r["experiment"] for r in rows if r["status"] not in ("baseline", "success")]
    missing = sorted(set(names) - {r["experiment"] for r in rows})
    if bad or missing:
        raise RuntimeError(f"experiments failed: {bad}; missing from dvc exp show: {missing}")
    if plot_error is not None:
        raise RuntimeError(f"plot not drawn: {plot_error} (the experiments ran: redraw with --no-run)")
    return rows


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m flows.sweep", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", help="stages to reproduce in each experiment (default: all)")
    ap.add_argument("--set", dest="sets", action="append", required=True, metavar="KEY=V1,V2",
                    help="a params.yaml key and its values; repeat for a grid")
    ap.add_argument("--repo", default=".", help="project folder (holding dvc.yaml)")
    ap.add_argument("--jobs", type=int, default=1, help="experiments run at once (default 1)")
    ap.add_argument("--plot", metavar="FILE.svg",
                    help="also draw each swept param against each metric (an SVG file)")
    ap.add_argument("--metric", dest="metrics", action="append", metavar="NAME",
                    help="a metric to plot, e.g. dedup.repos_removed or 'eval/*.summary.humaneval.pass@1' "
                         "(repeat; default: the table's metrics that differ between the experiments)")
    ap.add_argument("--no-run", dest="run", action="store_false",
                    help="queue and run nothing: table (and plot) the experiments already there that match the grid")
    return ap


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict[str, list[Any]]]:
    """The command line and the grid it asks for (argparse errors exit with status 2)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        grid = parse_grid(args.sets)
    except ValueError as e:
        ap.error(str(e))
    if args.plot and Path(args.plot).suffix.lower() != ".svg":
        ap.error(f"--plot {args.plot!r}: the plot is SVG; name the file *.svg")
    if args.metrics and not args.plot:
        ap.error("--metric picks what --plot draws; give --plot FILE.svg too")
    return args, grid


def main(argv: list[str] | None = None) -> int:
    args, grid = parse_args(argv)
    from flows.pipeline import with_server

    with with_server(args.repo):
        sweep(grid, args.targets or None, args.repo, args.jobs, plot=args.plot, metrics=args.metrics, run=args.run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
