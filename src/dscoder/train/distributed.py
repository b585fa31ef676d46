"""Process-group set-up inside a rank."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> DistEnv:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE,
    MASTER_ADDR, ...): nccl on GPU, gloo on CPU. Without torchrun, a one-process group, so
    the same FSDP2 code path runs under a plain `python -m dscoder.train`."""
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("device is 'cuda' but no GPU is visible")
    backend = "nccl" if use_cuda else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        if "RANK" in os.environ:
            dist.init_process_group(backend, device_id=dev if use_cuda else None)
        else:
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, dev)


def on_rank0(fn: Callable[[], T], env: DistEnv) -> T | None:
    """Collective: run `fn` on rank 0 only and return its result on rank 0 (None elsewhere);
    if it raises ValueError or RuntimeError, every rank raises that error, so all ranks stop
    together with the same message instead of waiting on a rank that left."""
    outcome: list[Any] = [None]
    result = None
    if env.is_main:
        try:
            result = fn()
        except (ValueError, RuntimeError) as err:
            outcome[0] = err
    if env.world_size > 1:
        dist.broadcast_object_list(outcome, src=0)
    if outcome[0] is not None:
        raise outcome[0]
    return result
