"""The `torchrun` command line and environment the stage layer runs (no torch import here)."""

from __future__ import annotations

import os
import sys


def torchrun_env(nproc_per_node: int, *, omp_num_threads: int | None = None, base: dict | None = None) -> dict[str, str]:
    """Environment for the torchrun subprocess. OMP_NUM_THREADS is set deliberately: the
    node's cores split evenly over its ranks (torchrun would force 1 and warn), or as given."""
    env = dict(os.environ if base is None else base)
    threads = omp_num_threads or max(1, (os.cpu_count() or 1) // nproc_per_node)
    env["OMP_NUM_THREADS"] = str(threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def torchrun_command(
    cfg_path: str | os.PathLike,
    nproc_per_node: int = 1,
    nnodes: int = 1,
    *,
    node_rank: int | None = None,
    rdzv_endpoint: str | None = None,
    rdzv_id: str = "dscoder",
    overrides: list[str] = (),
    python: str = sys.executable,
) -> list[str]:
    """`torchrun ... -m dscoder.train --config cfg_path [key=value ...]` as an argv list.

    One node: `--standalone` (a free local port, so parallel runs never collide). Several
    nodes: c10d rendezvous at `rdzv_endpoint` (host:port), else taken from the environment
    (DSCODER_RDZV_ENDPOINT, or MASTER_ADDR:MASTER_PORT as a scheduler such as Slurm sets them).
    """
    if nproc_per_node < 1 or nnodes < 1:
        raise ValueError(f"nproc_per_node and nnodes must be >= 1, got {nproc_per_node}, {nnodes}")
    cmd = [python, "-m", "torch.distributed.run", f"--nproc_per_node={nproc_per_node}", f"--nnodes={nnodes}"]
    if nnodes == 1 and rdzv_endpoint is None:
        cmd.append("--standalone")
    else:
        endpoint = rdzv_endpoint or os.environ.get("DSCODER_RDZV_ENDPOINT")
        if endpoint is None and "MASTER_ADDR" in os.environ:
            endpoint = f"{os.environ['MASTER_ADDR']}:{os.environ.get('MASTER_PORT', '29500')}"
        if endpoint is None:
            raise ValueError("rdzv_endpoint is required for nnodes > 1 (or set DSCODER_RDZV_ENDPOINT / MASTER_ADDR)")
        cmd += ["--rdzv_backend=c10d", f"--rdzv_endpoint={endpoint}", f"--rdzv_id={rdzv_id}"]
        if node_rank is not None:
            cmd.append(f"--node_rank={node_rank}")
    return cmd + ["-m", "dscoder.train", "--config", str(cfg_path), *overrides]
