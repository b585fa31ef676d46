"""Functions applied to a built model: activation checkpointing, compilation, FSDP2 sharding.

torchtitan's layout: the model knows nothing of these; each is a separate function, composed
in `parallelize` in the order that works (AC, then compile, then FSDP, as in torchtitan's
`parallelize_llama`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard


def decoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The repeated decoder layers of a transformers causal LM (LlamaForCausalLM: model.layers)."""
    return model.model.layers


def apply_ac(model: nn.Module) -> None:
    """Recompute every decoder block in backward (full activation checkpointing): memory for
    activations drops to one block's worth, at ~1/3 more compute."""
    blocks = decoder_blocks(model)
    for i, block in enumerate(blocks):
        blocks[i] = checkpoint_wrapper(block, preserve_rng_state=False)


def apply_compile(model: nn.Module) -> None:
    """torch.compile each decoder block separately: the blocks are identical, so one graph is
    compiled and reused, and FSDP's per-block hooks stay outside the graphs."""
    blocks = decoder_blocks(model)
    for i, block in enumerate(blocks):
        blocks[i] = torch.compile(block)


def apply_fsdp(
    model: nn.Module,
    mesh: DeviceMesh | None = None,
    *,
    param_dtype: torch.dtype | None = None,
    reduce_dtype: torch.dtype = torch.float32,
    reshard_after_forward: bool = True,
) -> None:
    """FSDP2: shard each decoder block, then the root (embeddings, final norm, LM head), over
    `mesh` (default: all ranks). `param_dtype=torch.bfloat16` is the GPU mixed-precision
    policy: bf16 compute, fp32 master weights and fp32 gradient reduction."""
    mp = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=reduce_dtype)
    blocks = decoder_blocks(model)
    for i, block in enumerate(blocks):
        # The last block's parameters are needed again at once by backward: keep them.
        fully_shard(
            block, mesh=mesh, mp_policy=mp, reshard_after_forward=reshard_after_forward and i < len(blocks) - 1
        )
    fully_shard(model, mesh=mesh, mp_policy=mp, reshard_after_forward=reshard_after_forward)


def parallelize(
    model: nn.Module,
    *,
    mesh: DeviceMesh | None = None,
    activation_checkpointing: bool = False,
    compile: bool = False,
    param_dtype: torch.dtype | None = None,
    reshard_after_forward: bool = True,
) -> nn.Module:
    """Compose the three, in torchtitan's order. Returns `model` (modified in place)."""
    if activation_checkpointing:
        apply_ac(model)
    if compile:
        apply_compile(model)
    apply_fsdp(model, mesh, param_dtype=param_dtype, reshard_after_forward=reshard_after_forward)
    return model
