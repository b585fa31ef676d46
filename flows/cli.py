"""`dscoder`: the pipeline from one command line (status, run, presets, sweeps, the Prefect UI).

The orchestration layer's front door: it lives in `flows/` (installed as a package with
`stages/`, so nothing edits sys.path) and imports the other flows and stages lazily, inside a
command, so `dscoder --help` stays fast and works anywhere. Commands run in the project root,
the nearest folder above the working directory holding dvc.yaml.

Other modules add subcommands through EXTERNAL (name → module). Such a module defines
HELP (one line), EXAMPLE (one command line), add_arguments(parser) and main(args) -> int.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

EXTERNAL: dict[str, str] = {
    "trace": "flows.trace",  # which files fed a training step
    "diff": "flows.diff",    # a data diff between two revisions
    "exp": "flows.exp",      # headline metrics of experiments side by side
}
"""Subcommands defined in other modules; one is listed only once its module exists."""


def find_root(start: str | os.PathLike = ".") -> Path:
    """The nearest folder at or above `start` that holds dvc.yaml (the project root)."""
    here = Path(start).resolve()
    for d in (here, *here.parents):
        if (d / "dvc.yaml").is_file():
            return d
    raise FileNotFoundError(f"no dvc.yaml at or above {here}")


def _enter_project(args: argparse.Namespace) -> Path:
    try:
        root = find_root(getattr(args, "repo", None) or ".")
    except FileNotFoundError as e:
        raise SystemExit(f"dscoder: {e}: run it inside the project") from None
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # DVC's, on every status call
    return root


# --- status ------------------------------------------------------------------------------------

def cmd_status(args: argparse.Namespace) -> int:
    root = _enter_project(args)
    from flows.pipeline import stage_order, stale_reasons

    order = stage_order(root, args.targets or None)
    width = max(map(len, order), default=5)
    n_stale = 0
    for stage in order:
        reasons = stale_reasons(root, stage)
        n_stale += bool(reasons)
        print(f"{stage:<{width}}  {'stale' if reasons else 'up to date'}{'  ' + _describe(reasons) if reasons else ''}")
    print(f"{n_stale} of {len(order)} stages stale (dvc status); `dscoder run` brings them up to date")
    return 0


def _describe(reasons: list) -> str:
    """DVC's status entries ("changed command", {"changed deps": {path: "modified"}}) in a line."""
    parts = []
    for r in reasons:
        if isinstance(r, dict):
            for kind, what in r.items():
                items = ", ".join(f"{k}: {v}" for k, v in what.items()) if isinstance(what, dict) else str(what)
                parts.append(f"{kind} ({items})")
        else:
            parts.append(str(r))
    return "; ".join(parts)


# --- run ---------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    root = _enter_project(args)
    from flows import pipeline as p

    targets = None if args.stage in (None, "all") else [args.stage]
    with p.with_server(str(root)):
        out = p.pipeline(targets, str(root), args.retries, force=args.force)
    for stage, what in out.items():
        print(f"{stage}: {what}")
    return 0


# --- preset ------------------------------------------------------------------------------------

def deep_merge(base: Any, over: Any, path: str = "", changed: list | None = None) -> Any:
    """`over` onto `base`: mappings merge key by key, anything else (lists too) is replaced.
    Mutates and returns `base` (so a round-trip YAML mapping keeps its comments); appends the
    dotted keys whose value changed to `changed`."""
    if isinstance(base, dict) and isinstance(over, dict):
        for k, v in over.items():
            key = f"{path}.{k}" if path else str(k)
            if k in base and isinstance(base[k], dict) and isinstance(v, dict):
                deep_merge(base[k], v, key, changed)
            else:
                if changed is not None and (k not in base or base[k] != v):
                    changed.append(key)
                base[k] = v
        return base
    return over


def cmd_preset(args: argparse.Namespace) -> int:
    root = _enter_project(args)
    from ruamel.yaml import YAML  # round-trip: params.yaml keeps its comments and order

    preset = Path(args.name)
    if not preset.suffix:
        preset = root / "presets" / f"{args.name}.yaml"
    if not preset.is_file():
        names = sorted(p.stem for p in (root / "presets").glob("*.yaml"))
        raise SystemExit(f"dscoder preset: no {preset} (presets: {', '.join(names) or 'none yet'})")
    yaml = YAML()
    yaml.preserve_quotes = True
    params_path = root / args.params
    params = yaml.load(params_path.read_text()) or {}
    over = YAML(typ="safe").load(preset.read_text()) or {}
    if not isinstance(over, dict):
        raise SystemExit(f"dscoder preset: {preset} must be a mapping of params.yaml sections")
    changed: list[str] = []
    deep_merge(params, over, changed=changed)
    if not args.dry_run:
        tmp = params_path.with_suffix(".yaml.tmp")
        with tmp.open("w") as f:
            yaml.dump(params, f)
        tmp.replace(params_path)
    verb = "would change" if args.dry_run else "changed"
    print(f"preset {args.name}: {verb} {len(changed)} parameters in {args.params}" + "".join(f"\n  {k}" for k in changed))
    if changed and not args.dry_run:
        print("`dscoder status` shows the stages this makes stale; `dvc params diff` shows the change")
    return 0


# --- ui / sweep --------------------------------------------------------------------------------

def cmd_ui(args: argparse.Namespace) -> int:
    root = _enter_project(args)
    import time

    from flows.server import prefect_server

    home = os.environ.setdefault("PREFECT_HOME", str(root / ".prefect"))
    os.makedirs(home, exist_ok=True)
    try:
        with prefect_server(args.port, log_path=os.path.join(home, "server.log")) as url:
            print(f"Prefect UI: {url.removesuffix('/api')}\nexport PREFECT_API_URL={url}\n(Ctrl-C stops the server)",
                  flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:  # the way to stop it; the server is stopped on the way out
        return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    _enter_project(args)
    from flows import sweep

    return sweep.main(args.sweep_args)


# --- the parser --------------------------------------------------------------------------------

def _builtin(sub) -> None:
    p = sub.add_parser("status", help="the DAG's stages and which are stale (dvc status)",
                       description="Stages of dvc.yaml in run order; stale ones with what changed.")
    p.add_argument("targets", nargs="*", help="only these stages and their upstream")
    p.set_defaults(func=cmd_status, example="dscoder status")

    p = sub.add_parser("run", help="run the stale stages as one Prefect pipeline flow",
                       description="Run `stage` (and the stages it depends on), or all of dvc.yaml, as the "
                                   "Prefect flow dscoder-pipeline: one child flow run per stage; up-to-date "
                                   "stages end as Cached. Starts a local Prefect server unless "
                                   "PREFECT_API_URL is set.")
    p.add_argument("stage", nargs="?", default="all", help="a dvc.yaml stage, or all (default)")
    p.add_argument("--retries", type=int, default=1, help="retries per stage (default 1)")
    p.add_argument("--force", action="store_true", help="rerun even if DVC says up to date")
    p.set_defaults(func=cmd_run, example="dscoder run filter")

    p = sub.add_parser("preset", help="apply presets/NAME.yaml onto params.yaml (deep merge)",
                       description="Merge presets/NAME.yaml (or a .yaml path) into params.yaml: "
                                   "sections merge key by key; lists and values are replaced. Comments stay.")
    p.add_argument("name", help="preset name (presets/NAME.yaml) or a path to a .yaml file")
    p.add_argument("--params", default="params.yaml", help="params file, relative to the project (default params.yaml)")
    p.add_argument("--dry-run", action="store_true", help="list what would change, write nothing")
    p.set_defaults(func=cmd_preset, example="dscoder preset paper")

    p = sub.add_parser("ui", help="start the Prefect server + UI on 127.0.0.1 and print its URL",
                       description="Run `prefect server start` on 127.0.0.1 until Ctrl-C; export the printed "
                                   "PREFECT_API_URL so `dvc repro` and `dscoder run` report to it.")
    p.add_argument("--port", type=int, default=4200, help="port (default 4200)")
    p.set_defaults(func=cmd_ui, example="dscoder ui --port 4200")

    p = sub.add_parser("sweep", help="a parameter grid as DVC experiments, then one comparison table "
                                     "(--plot FILE.svg: and a plot of params against metrics)",
                       description="Arguments go to `python -m flows.sweep` (see `dscoder sweep --help`).",
                       add_help=False)
    p.add_argument("sweep_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_sweep, example="dscoder sweep --set filter.max_line_length=500,1000 --set dedup.threshold=0.7,0.8 "
                                           "--plot sweep.svg")


def _external(sub) -> None:
    for name, module in EXTERNAL.items():
        try:
            if importlib.util.find_spec(module) is None:
                continue
        except ModuleNotFoundError:
            continue
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=mod.HELP, description=mod.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(func=mod.main, example=mod.EXAMPLE)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dscoder", formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description="The DeepSeek-Coder recipe as a DVC pipeline of Prefect flows. "
                                             "Run inside the project (the folder holding dvc.yaml).")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    _builtin(sub)
    _external(sub)
    examples = [f"  {p.get_default('example')}" for p in sub.choices.values()]
    ap.epilog = "examples (one per command):\n" + "\n".join(examples) + \
        "\n\n`dscoder COMMAND --help` explains a command's options."
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sweep"]:  # everything after `sweep` belongs to flows.sweep, --help included
        args = argparse.Namespace(func=cmd_sweep, sweep_args=argv[1:])
    else:
        args = ap.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        ap.print_help()
        return 0
    return func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
