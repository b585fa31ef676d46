"""`dscoder trace`: where a training token came from, and what happened to a repository or file.

  dscoder trace --step 37 --row 5           the block the trainer read at logged step 37, row 5
  dscoder trace --split train --offset N    one token of train.bin / val.bin
  dscoder trace --repo NAME_OR_ID           a repository's way through every stage
  dscoder trace --path PATH                 a file's: kept, or dropped where and why; token spans

Token answers give repository, file path, byte range in the source file, FIM role and the
decisions the repository went through (ingest/filter drops with rule, dedup cluster and
whether it was kept, decontam matches). Everything comes from the stage outputs and audits
(Parquet indexes, where params.yaml's `paths` put them); the data order comes from the
pretrain checkpoint folder's train_config.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HELP = "trace a training step/row, token offset, repository or file through every stage decision"
EXAMPLE = "dscoder trace --step 37 --row 5"


def add_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--step", type=int, help="training step as logged (1 = first update); needs --row")
    what.add_argument("--offset", type=int, help="token offset in the split's token file (with --split)")
    what.add_argument("--repo", help="repository name or id")
    what.add_argument("--path", help="file path inside its repository (exact, else a /-suffix)")
    p.add_argument("--row", type=int, default=0, help="row of the global batch, 0..global_batch_size-1 (default 0)")
    p.add_argument("--split", choices=("train", "val"), default="train", help="token split for --offset")
    p.add_argument("--train-config", default=None,
                   help="the run whose data order --step follows (default: pretrain's, "
                        "<paths.checkpoints>/pretrain/train_config.json)")
    p.add_argument("--world-size", type=int, default=None,
                   help="ranks of the run (default: its summary.json, else 1); only names rank/micro batch")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _order(root: Path, args, paths):
    from dscoder.lineage.data_order import DataOrder

    cfg_path = root / (args.train_config or f"{paths.checkpoint('pretrain')}/train_config.json")
    if not cfg_path.is_file():
        raise SystemExit(f"dscoder trace: {cfg_path} does not exist (train first, or pass --train-config)")
    cfg = json.loads(cfg_path.read_text())
    world = args.world_size
    summary = cfg_path.parent / "summary.json"
    if world is None and summary.is_file():
        world = json.loads(summary.read_text()).get("world_size")
    tokens = root / cfg.get("tokens_dir", paths.tokens)
    meta = json.loads((tokens / "meta.json").read_text())
    return DataOrder.from_train_config(cfg, meta, world_size=int(world or 1)), tokens


def run(root: Path, args) -> tuple[dict, list[str]]:
    from dscoder.lineage import trace as tr
    from dscoder.lineage.index import Lineage

    lineage = Lineage.at(root)
    if args.step is not None:
        order, tokens = _order(root, args, lineage.paths)
        tracer = tr.Tracer(root, lineage, tokens_dir=tokens)
        res = tracer.step(args.step, args.row, order)
        res["data_order"] = vars(order) if hasattr(order, "__dict__") else None
        repos = [r["repo_id"] for r in res["runs"]]
        res["decisions"] = tracer.decisions(repos)
        lines = [f"step {res['step']} row {res['row']} → global position {res['position']} (epoch {res['epoch']}, "
                 f"rank {res['rank']}, micro batch {res['micro_batch']} row {res['micro_row']}) → block "
                 f"{res['block']} of {res['n_blocks']} = train.bin tokens [{res['token_start']}, {res['token_end']}), "
                 f"{res['special_tokens']} inserted tokens"]
        lines += tr.format_runs(res["runs"])
        for d in res["decisions"].values():
            lines += tr.format_decision(d)
        return res, lines
    if args.offset is not None:
        tracer = tr.Tracer(root, lineage)
        res = tracer.token(args.split, args.offset)
        res["decisions"] = tracer.decisions([res["repo_id"]])
        lines = tr.format_token(res)
        for d in res["decisions"].values():
            lines += tr.format_decision(d)
        return res, lines
    if args.repo is not None:
        ids = lineage.resolve_repo(args.repo)
        if not ids:
            raise SystemExit(f"dscoder trace: no repository named or with id {args.repo!r} in {lineage.paths.raw_files}")
        res = {"repos": []}
        lines: list[str] = []
        for i in ids:
            d = lineage.repo_decision(i)
            d["token_spans"] = lineage.token_spans(i)
            res["repos"].append(d)
            lines += tr.format_decision(d)
        return res, lines
    pairs = lineage.resolve_path(args.path)
    if not pairs:
        raise SystemExit(f"dscoder trace: no file {args.path!r} in {lineage.paths.raw_files} or its audit")
    res = {"files": []}
    lines = []
    names = lineage.repo_names()
    for repo_id, path in pairs:
        d = lineage.file_decision(repo_id, path)
        d["repo_name"] = names.get(repo_id)
        d["token_spans"] = lineage.token_spans(repo_id, path) if d["kept"] else []
        res["files"].append(d)
        lines += tr.format_file_decision(d) + tr.format_spans(d["token_spans"])
    return res, lines


def main(args: argparse.Namespace) -> int:
    from flows.cli import _enter_project

    root = _enter_project(args)
    try:
        res, lines = run(root, args)
    except (IndexError, ValueError, LookupError, FileNotFoundError) as e:
        print(f"dscoder trace: {e}", file=sys.stderr)
        return 2
    try:
        if args.json:
            print(json.dumps(res, indent=2, default=str))
        else:
            print("\n".join(lines))
    except BrokenPipeError:  # `| head`: the reader left; not an error
        sys.stdout = open(os.devnull, "w")
    return 0
