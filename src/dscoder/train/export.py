"""Final export: a Hugging Face model directory (safetensors + config + tokenizer + model card)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from transformers import LlamaConfig, LlamaForCausalLM

from dscoder.io import atomic_path, write_json
from dscoder.train.model_card import complete_facts, write_card
from dscoder.train.resume import file_manifest

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def special_token_ids(tokenizer_dir: str | Path) -> dict[str, int]:
    """bos/eos/pad ids of a saved tokenizer, so the model's config and generation config agree
    with it."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    ids = {f"{name}_token_id": getattr(tok, f"{name}_token_id") for name in ("bos", "eos", "pad")}
    return {k: v for k, v in ids.items() if v is not None}


def export_hf(
    model: torch.nn.Module,
    config: LlamaConfig,
    out_dir: str | Path,
    *,
    dtype: str = "float32",
    tokenizer_dir: str | Path | None = None,
    train_config: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
    card: dict[str, Any] | None = None,
) -> Path | None:
    """Collective: gather the full state dict to rank 0 (on CPU), which writes `out_dir`
    atomically: `save_pretrained` safetensors, the tokenizer files, `train_config.json`, the
    model card (`README.md` and the facts it is rendered from, `model_card.json`: `card`, the
    stage's facts, plus the architecture, `train_config` and the results in `manifest`), and
    `manifest.json` last. Loadable with AutoModelForCausalLM / AutoTokenizer."""
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if dist.is_initialized() and dist.get_rank() != 0:
        dist.barrier()
        return None
    config = LlamaConfig.from_dict(config.to_dict())
    if tokenizer_dir:
        for key, value in special_token_ids(tokenizer_dir).items():
            setattr(config, key, value)
    config.dtype = dtype
    with torch.device("meta"):  # weights come from `full`: allocate nothing twice
        hf = LlamaForCausalLM(config)
    hf.load_state_dict({k: v.to(_DTYPES[dtype]) for k, v in full.items()}, assign=True, strict=True)
    out_dir = Path(out_dir)
    with atomic_path(out_dir, is_dir=True) as tmp:
        hf.save_pretrained(tmp, safe_serialization=True)
        if tokenizer_dir:
            for f in sorted(Path(tokenizer_dir).iterdir()):
                if f.is_file() and not (tmp / f.name).exists():
                    shutil.copy2(f, tmp / f.name)
        if train_config is not None:
            write_json(tmp / "train_config.json", train_config)
        # after the tokenizer files: a starting model's card copied with them is replaced
        write_card(tmp, complete_facts(card, name=out_dir.name, config=config, dtype=dtype,
                                       train_config=train_config, results=manifest))
        # the sha256 of every file: the starting model's identity for a run that resumes from it
        write_json(tmp / "manifest.json", {**(manifest or {}), **file_manifest(tmp)})
    if dist.is_initialized():
        dist.barrier()
    return out_dir
