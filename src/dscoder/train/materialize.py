"""Fill a model built on the meta device and sharded by FSDP2: fresh weights, or a Hugging Face
checkpoint read shard by shard.

Nothing here holds the whole model in one process. A rank writes only the rows of each
parameter that FSDP2 gave it (`Shard(0)`: `torch.chunk` along the first dimension), so memory
per rank is its shard plus one tensor:
- `init_weights` draws each parameter in full from a generator seeded by (seed, parameter
  name) and keeps its own rows. The weights are therefore the same whatever the world size,
  the wrapping (activation checkpointing, compile) or the order of the modules; one full
  tensor at a time is the cost (the 33B's largest, its embedding, is 0.9 GB in fp32).
- `load_hf_weights` opens the checkpoint's safetensors files (memory-mapped) and reads only the
  local rows of each tensor, converting to the parameter's dtype.
Draws depend on the device's generator: a CPU and a GPU run start from different weights.
"""

from __future__ import annotations

import json
import re
import zlib
from contextlib import ExitStack
from pathlib import Path

import torch
from torch import nn
from torch.distributed.tensor import DTensor, Shard
from transformers.models.llama.modeling_llama import LlamaRMSNorm, LlamaRotaryEmbedding

# Prefixes that `checkpoint_wrapper` and `torch.compile` insert into parameter names.
_WRAPPERS = re.compile(r"(_checkpoint_wrapped_module|_orig_mod)\.")


def plain_name(name: str) -> str:
    """A parameter's name as the unwrapped model (and its HF checkpoint) spells it."""
    return _WRAPPERS.sub("", name)


def local_rows(param: torch.Tensor) -> slice:
    """The rows of the full parameter this rank holds: all of them for a plain tensor, the
    `torch.chunk` share of the first dimension for an FSDP2 `Shard(0)` DTensor."""
    if not isinstance(param, DTensor):
        return slice(0, param.shape[0])
    if tuple(param.placements) != (Shard(0),):
        raise ValueError(f"only FSDP2's Shard(0) layout is supported, got {param.placements}")
    n, world = param.shape[0], param.device_mesh.size()
    chunk = -(-n // world)
    start = min(n, param.device_mesh.get_local_rank() * chunk)
    return slice(start, min(n, start + chunk))


def _local(param: torch.Tensor) -> torch.Tensor:
    return param.to_local() if isinstance(param, DTensor) else param


def _draw(name: str, param: torch.Tensor, seed: int, std: float) -> torch.Tensor:
    gen = torch.Generator(device=_local(param).device)
    gen.manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    full = torch.empty(param.shape, dtype=torch.float32, device=_local(param).device)
    return full.normal_(0.0, std, generator=gen)[local_rows(param)]


@torch.no_grad()
def init_weights(model: nn.Module, seed: int) -> None:
    """Initialise in place as `LlamaPreTrainedModel._init_weights` does: N(0,
    initializer_range) for linear and embedding weights, zeros for biases, ones for RMSNorm;
    the RoPE buffers (not parameters) are recomputed."""
    std = model.config.initializer_range
    for module_name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            name = plain_name(f"{module_name}.weight")
            _local(module.weight).copy_(_draw(name, module.weight, seed, std))
            if getattr(module, "bias", None) is not None:
                _local(module.bias).zero_()
        elif isinstance(module, LlamaRMSNorm):
            _local(module.weight).fill_(1.0)
    reset_rope(model)


@torch.no_grad()
def reset_rope(model: nn.Module) -> None:
    """Recompute the rotary embedding's frequency buffers (left empty by `to_empty`)."""
    for module in model.modules():
        if isinstance(module, LlamaRotaryEmbedding):
            fresh = LlamaRotaryEmbedding(model.config)
            module.inv_freq.copy_(fresh.inv_freq)
            module.original_inv_freq.copy_(fresh.original_inv_freq)


def weight_files(model_dir: str | Path) -> dict[str, Path]:
    """Tensor name -> safetensors file of a Hugging Face model directory (one file, or
    several listed in `model.safetensors.index.json`)."""
    model_dir = Path(model_dir)
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return {name: model_dir / file for name, file in weight_map.items()}
    single = model_dir / "model.safetensors"
    if not single.is_file():
        raise ValueError(f"{str(model_dir)!r} has no model.safetensors(.index.json): only safetensors checkpoints load")
    from safetensors import safe_open

    with safe_open(str(single), framework="pt") as f:
        return {name: single for name in f.keys()}


@torch.no_grad()
def load_hf_weights(model: nn.Module, model_dir: str | Path) -> int:
    """Copy a Hugging Face checkpoint into the (sharded, materialised) `model`, reading only
    this rank's rows of each tensor. Returns the number of elements read (this rank's share).
    Raises ValueError naming a missing, unexpected or misshapen tensor."""
    from safetensors import safe_open

    files = weight_files(model_dir)
    params = {plain_name(n): p for n, p in model.named_parameters()}
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    missing = sorted(set(params) - set(files) - ({"lm_head.weight"} if tied else set()))
    if missing:
        raise ValueError(f"{model_dir}: checkpoint lacks {missing[0]} ({len(missing)} missing)")
    read = 0
    with ExitStack() as stack:
        handles = {f: stack.enter_context(safe_open(str(f), framework="pt")) for f in sorted(set(files.values()))}
        for name, param in params.items():
            if name not in files:  # the tied LM head shares the embedding's storage
                continue
            piece = handles[files[name]].get_slice(name)
            if tuple(piece.get_shape()) != tuple(param.shape):
                raise ValueError(f"{model_dir}: {name} has shape {piece.get_shape()}, the model {tuple(param.shape)}")
            rows = local_rows(param)
            local = piece[rows.start:rows.stop]
            _local(param).copy_(local.to(dtype=param.dtype))
            read += local.numel()
    reset_rope(model)
    return read
