"""`dscoder diff REV_A REV_B`: which repositories and files entered or left the training set
between two git revisions (or `workspace`), per language, with the decision that changed.

Stage outputs are read at each revision through DVC (`DVCFileSystem(rev=...)`, from the DVC
cache: `dvc repro` puts every output there; outputs of a revision whose cache is gone need
`dvc pull` or a rerun). The set is paths.clean_repos's file spans (`--at clean`, default);
`--at filtered` compares paths.filtered_files, etc. Each changed file is
explained by the stage outputs of the revision where it is absent (each revision's outputs are
where its own params.yaml `paths` say): the ingest/filter audit
rule, the dedup cluster that kept another repository, the decontam benchmark match.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HELP = "data diff between two revisions: files/repos added to or removed from the training set, and why"
EXAMPLE = "dscoder diff HEAD workspace"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("rev_a", help="git revision (or `workspace`)")
    p.add_argument("rev_b", nargs="?", default="workspace", help="git revision or `workspace` (default)")
    p.add_argument("--at", default="clean", choices=("clean", "dedup", "repos", "filtered", "raw"),
                   help="which set to compare (default clean: the training set)")
    p.add_argument("--limit", type=int, default=50, help="files listed per direction in text output")
    p.add_argument("--json", action="store_true", help="machine-readable output (every file)")


def lineage_at(root: Path, rev: str):
    """A Lineage over the stage outputs at `rev` (`workspace`: the working tree)."""
    from dscoder.lineage.index import Lineage, dir_reader, open_reader, params_paths

    workspace = params_paths(lambda rel: open(root / rel, "rb"))
    if rev in ("workspace", "WORKSPACE", "."):
        return Lineage(dir_reader(root), workspace, label="workspace")
    from dvc.api import DVCFileSystem

    fs = DVCFileSystem(str(root), rev=rev)

    def opener(rel: str):
        if not fs.exists(rel):
            raise FileNotFoundError(rel)
        try:
            return fs.open(rel, "rb")
        except FileNotFoundError:
            raise
        except Exception as e:  # typically: the output is not in the local DVC cache
            raise SystemExit(f"dscoder diff: cannot read {rel} at {rev}: {e} "
                             f"(is it in the DVC cache? `dvc pull` or `dvc repro` at that revision)") from e

    # that revision's paths (the workspace's for a revision from before params.yaml declared them)
    return Lineage(open_reader(opener), params_paths(opener, default=workspace), label=rev)


def main(args: argparse.Namespace) -> int:
    from flows.cli import _enter_project
    from dscoder.lineage.diff import diff, format_diff

    root = _enter_project(args)
    try:
        res = diff(lineage_at(root, args.rev_a), lineage_at(root, args.rev_b), at=args.at)
    except FileNotFoundError as e:
        print(f"dscoder diff: {e}", file=sys.stderr)
        return 2
    try:
        print(json.dumps(res, indent=2, default=str) if args.json else "\n".join(format_diff(res, args.limit)))
    except BrokenPipeError:  # `| head`: the reader left; not an error
        sys.stdout = open(os.devnull, "w")
    return 0
