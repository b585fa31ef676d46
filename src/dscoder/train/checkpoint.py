"""Distributed checkpoints: save every N steps, resume from the newest complete one.

Layout of `<checkpoint_dir>/step-XXXXXX/`:
  *.distcp, .metadata   model + optimizer, sharded (torch.distributed.checkpoint), loadable
                        at another world size
  rank-XXXXX.pt         per-rank RNG states (torch, cuda, numpy, python)
  train_config.json     the resolved settings that made it
  metrics.json          the metrics log's rows up to this step (the curve a resume restores)
  manifest.json         step, data position, world size, resume key (dscoder.train.resume);
                        written last: its presence is what makes a checkpoint complete
Each checkpoint is written to `step-XXXXXX-tmp/` and renamed into place (OLMo-core), so a run
killed while saving leaves the previous checkpoint as the newest complete one.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from dscoder.io import write_json
from dscoder.train.resume import complete_checkpoints, latest_checkpoint

__all__ = ["complete_checkpoints", "latest_checkpoint", "load_checkpoint", "save_checkpoint", "read_metrics_rows"]


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def save_checkpoint(
    checkpoint_dir: str | Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    trainer_state: dict[str, Any],
    config: dict[str, Any],
    metrics_rows: list[dict[str, Any]] | None = None,
    keep: int = 0,
) -> Path:
    """Collective: every rank calls it. `trainer_state` (JSON-able: step, data position) goes
    into the manifest; RNG states are saved per rank. Keeps the newest `keep` (0: all)."""
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    root = Path(checkpoint_dir)
    final = root / f"step-{step:06d}"
    tmp = root / f"step-{step:06d}-tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)  # left by a run killed while saving
        tmp.mkdir(parents=True)
    _barrier()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(tmp))
    torch.save(rng_state(), tmp / f"rank-{rank:05d}.pt")
    _barrier()
    if rank == 0:
        write_json(tmp / "train_config.json", config)
        write_json(tmp / "metrics.json", metrics_rows or [])
        write_json(tmp / "manifest.json", {**trainer_state, "step": step, "world_size": world})
        if final.exists():  # re-saving a step (e.g. a rerun that resumed at the last step)
            shutil.rmtree(final)
        tmp.rename(final)
        if keep > 0:
            for old in complete_checkpoints(root)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return final


def load_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Collective: load model and optimizer shards (any world size) and this rank's RNG
    states (when the world size matches); return the manifest."""
    path = Path(path)
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    manifest = json.loads((path / "manifest.json").read_text())
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=str(path))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    rng_file = path / f"rank-{rank:05d}.pt"
    if manifest["world_size"] == world and rng_file.is_file():
        set_rng_state(torch.load(rng_file, weights_only=False))
    elif rank == 0:
        print(f"[checkpoint] world size {manifest['world_size']} -> {world}: RNG states not restored", flush=True)
    return manifest


def read_metrics_rows(path: str | Path) -> list[dict[str, Any]]:
    """The metrics log rows saved with a checkpoint ([] for one saved without)."""
    f = Path(path) / "metrics.json"
    return json.loads(f.read_text()) if f.is_file() else []
