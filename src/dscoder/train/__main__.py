"""`python -m dscoder.train --config cfg.json [key=value ...]`, one process per rank (torchrun).

Exit codes: 0 done (or stopped by `stop_after_step`), 2 invalid settings, 3 refused to start
(the checkpoint folder is in use, or its checkpoint was made with other settings).
"""

from __future__ import annotations

import argparse
import os
import sys

from dscoder.train.config import DEFAULT_WORLD_SIZE, load_config
from dscoder.train.lock import FolderInUse, die_with_parent
from dscoder.train.resume import CheckpointMismatch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dscoder.train", description=__doc__)
    parser.add_argument("--config", help="JSON or YAML train config (dscoder.train.TrainSettings fields)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. max_steps=10")
    args = parser.parse_args(argv)
    if "TORCHELASTIC_RUN_ID" in os.environ:
        # torchrun puts each rank in a session of its own: without this, killing the stage's
        # process group would leave the ranks training (and writing) on their own.
        die_with_parent()
    try:
        cfg = load_config(args.config, args.overrides)
        # WORLD_SIZE is torchrun's: the batch split is checked before any process group exists.
        cfg.validate(world_size=int(os.environ.get("WORLD_SIZE", DEFAULT_WORLD_SIZE)))
    except ValueError as err:  # bad settings: one clear line, non-zero exit, before any work
        print(f"dscoder.train: invalid config: {err}", file=sys.stderr, flush=True)
        return 2
    import torch.distributed as dist

    from dscoder.train.loop import train

    try:
        train(cfg)
    except (FolderInUse, CheckpointMismatch) as err:
        if int(os.environ.get("RANK", 0)) == 0:
            print(f"dscoder.train: not started: {err}", file=sys.stderr, flush=True)
        return 3
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
