"""`python -m dscoder.train --config cfg.json [key=value ...]`, one process per rank (torchrun)."""

from __future__ import annotations

import argparse
import os
import sys

from dscoder.train.config import load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dscoder.train", description=__doc__)
    parser.add_argument("--config", help="JSON or YAML train config (dscoder.train.TrainConfig fields)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. max_steps=10")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        # WORLD_SIZE is torchrun's: the batch split is checked before any process group exists.
        cfg.validate(world_size=int(os.environ.get("WORLD_SIZE", 1)))
    except ValueError as err:  # bad settings: one clear line, non-zero exit, before any work
        print(f"dscoder.train: invalid config: {err}", file=sys.stderr, flush=True)
        return 2
    import torch.distributed as dist

    from dscoder.train.loop import train

    try:
        train(cfg)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
