"""Model configurations: DeepSeek-Coder is a Llama-layout decoder (docs/recipe.md §2, Sec. 3.3).

The released checkpoints are `LlamaForCausalLM`, so the model *is* transformers' Llama; this
module only holds the named sizes (Table 2), builds `LlamaConfig`s from them, counts
parameters and FLOPs, and applies the long-context RoPE change (Sec. 3.6). Sharding,
activation checkpointing and compilation are applied elsewhere (`dscoder.train.parallelize`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

# torch and transformers are imported inside the functions that use them: the trainer's
# config validation reads PRESETS and should reject bad settings without paying seconds for them.

# Shared by every preset. Sec. 3.2: 32,000 BPE tokens; the released models have 32,256 ids
# with the special tokens. 4K window for pretraining (Sec. 3.3), RoPE base 10000 before the
# long-context stage. rms_norm_eps 1e-6 is the released config.json's value. Untied input and
# output embeddings, as in the released checkpoints.
_COMMON: dict[str, Any] = {
    "vocab_size": 32256,
    "max_position_embeddings": 4096,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "attention_bias": False,
    "mlp_bias": False,
    "initializer_range": 0.02,
}

PRESETS: dict[str, dict[str, Any]] = {
    # CPU default: a few million parameters (7.4M at vocab 8192), trains in minutes on 2 cores.
    # Not from the paper; SwiGLU width ≈ 8/3 x hidden rounded to a multiple of 16, like Table 2.
    "tiny": {
        **_COMMON,
        "hidden_size": 256,
        "intermediate_size": 688,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
    },
    # Table 2, verbatim.
    "1.3b": {
        **_COMMON,
        "hidden_size": 2048,
        "intermediate_size": 5504,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
    },
    "6.7b": {
        **_COMMON,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
    },
    # Table 2: grouped-query attention with 8 KV groups.
    "33b": {
        **_COMMON,
        "hidden_size": 7168,
        "intermediate_size": 19200,
        "num_hidden_layers": 62,
        "num_attention_heads": 56,
        "num_key_value_heads": 8,
    },
}

# Table 2: batch size (sequences) and peak LR per size, for presets/ and the stage layer.
TABLE2_TRAINING: dict[str, dict[str, float]] = {
    "1.3b": {"global_batch_size": 1024, "lr": 5.3e-4},
    "6.7b": {"global_batch_size": 2304, "lr": 4.2e-4},
    "33b": {"global_batch_size": 3840, "lr": 3.5e-4},
}


def build_config(preset: str = "tiny", *, vocab_size: int | None = None, **overrides: Any) -> LlamaConfig:
    """A `LlamaConfig` from a named preset, with `vocab_size` and any other field overridden.

    Raises ValueError naming an unknown preset or a head count that does not divide the width.
    """
    if preset not in PRESETS:
        raise ValueError(f"model preset {preset!r} unknown; choose from {sorted(PRESETS)}")
    kwargs = copy.deepcopy(PRESETS[preset])
    if vocab_size is not None:
        kwargs["vocab_size"] = int(vocab_size)
    kwargs.update(copy.deepcopy(overrides))
    heads, kv = kwargs["num_attention_heads"], kwargs.get("num_key_value_heads", kwargs["num_attention_heads"])
    if kwargs["hidden_size"] % heads:
        raise ValueError(f"hidden_size {kwargs['hidden_size']} not divisible by num_attention_heads {heads}")
    if heads % kv:
        raise ValueError(f"num_attention_heads {heads} not divisible by num_key_value_heads {kv}")
    from transformers import LlamaConfig

    return LlamaConfig(**kwargs)


def with_long_context(
    config: LlamaConfig, *, factor: float = 4.0, rope_theta: float = 100000.0, max_position_embeddings: int | None = None
) -> LlamaConfig:
    """A copy of `config` with Sec. 3.6's long-context RoPE: linear scaling `factor` (1 → 4)
    and base `rope_theta` (10000 → 100000); the window grows by `factor` unless given.

    transformers 5: RoPE lives in `rope_parameters`, and a `rope_theta` left out of it silently
    means 10000, so it is always written explicitly.
    """
    if factor < 1:
        raise ValueError(f"rope scaling factor must be >= 1, got {factor}")
    if rope_theta <= 0:
        raise ValueError(f"rope_theta must be > 0, got {rope_theta}")
    new = copy.deepcopy(config)
    new.rope_parameters = {"rope_type": "linear", "factor": float(factor), "rope_theta": float(rope_theta)}
    new.max_position_embeddings = int(max_position_embeddings or round(config.max_position_embeddings * factor))
    return new


def build_model(config: LlamaConfig, *, device: str | torch.device = "cpu") -> LlamaForCausalLM:
    """A freshly initialised `LlamaForCausalLM` (on "meta" it allocates nothing)."""
    import torch
    from transformers import LlamaForCausalLM

    with torch.device(device):
        return LlamaForCausalLM(config)


def count_params(config: LlamaConfig) -> dict[str, int]:
    """Parameter counts of the model `config` describes, built on the meta device.

    `total` is every parameter; `embedding` the input token embedding (a lookup, not a
    matmul, so it is left out of the FLOPs count, like torchtitan's `get_nparams_and_flops`).
    """
    model = build_model(config, device="meta")
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    return {"total": total, "embedding": embedding, "non_embedding": total - embedding}


def flops_per_token(config: LlamaConfig, seq_len: int) -> float:
    """Training FLOPs per token: 6 N (forward + backward matmuls, N without the embedding
    lookup) + 12 L H T for attention scores and values (PaLM, App. B; torchtitan's formula,
    which counts the full T x T product, not the causal half)."""
    n = count_params(config)["non_embedding"]
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    attn = 12 * config.num_hidden_layers * config.num_attention_heads * head_dim * seq_len
    return float(6 * n + attn)


def describe(config: LlamaConfig) -> str:
    """One line: size and shape, for logs."""
    n = count_params(config)["total"]
    return (
        f"{n / 1e9:.3f}B params" if n >= 1e8 else f"{n / 1e6:.2f}M params"
    ) + (
        f", {config.num_hidden_layers} layers x {config.hidden_size}, {config.num_attention_heads} heads "
        f"({config.num_key_value_heads} kv), vocab {config.vocab_size}, rope {config.rope_parameters}"
    )
