"""Instruction examples -> the trainer's token directory with loss masks (Sec. 3.7).

Writes `train.bin`, `val.bin` (flat uint16/uint32 token streams), `train.mask.bin`,
`val.mask.bin` (uint8, one per token, 1 = the token is a loss target) and `meta.json`
({dtype, vocab_size, seq_len, ...}) through `dscoder.train.data.write_token_dir`, the
trainer's own writer, into a temporary directory renamed into place. Train with
`loss_mask: true`.

Every example is [BOS] + its encoded conversation (`template.encode_conversation`). Layout,
`mode`:
  * "pack" (default): examples are placed whole, in order, into blocks of `seq_len` tokens;
    when the next one does not fit, the block is filled with the pad id (mask 0) and a new
    block begins. No answer is cut, every block starts with BOS, and the padding costs some
    compute (reported as `pad_share`). Examples in one block still attend to each other
    (causal attention over the block, as in pretraining packing); the paper does not say how
    its instruction data was batched.
  * "concat": examples back to back like pretraining data, cut every `seq_len` tokens (an
    example may span two blocks; the partial last block is dropped). No padding.
An example longer than `seq_len` tokens is never cut: it is counted as `too_long` and left out.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Literal

import numpy as np

from dscoder.config import Settings
from dscoder.instruct.records import Example, audit_row
from dscoder.instruct.template import DEFAULT_SYSTEM_PROMPT, EOT, encode_conversation
from dscoder.io import atomic_path


@dataclass(frozen=True, kw_only=True)
class InstructPackSettings(Settings):
    section: ClassVar[str] = "instruct.pack"

    seq_len: int = 4096
    """Tokens per training block (4K, the pretraining window)."""
    mode: Literal["pack", "concat"] = "pack"
    """pack: whole examples per block, padded; concat: a cut stream (module docstring)."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    """Default system prompt of the template (used when a conversation has none)."""
    eot: str = EOT
    """Token that ends each answer (Sec. 3.7: <|EOT|>); the tokenizer must have it."""

    def validate(self) -> None:
        self.require(self.seq_len >= 2, "seq_len", f"must be >= 2, got {self.seq_len}")
        self.require(self.mode in ("pack", "concat"), "mode", f"must be pack or concat, got {self.mode!r}")
        self.require(bool(self.eot), "eot", "must be non-empty")


def _layout(encoded: list[tuple[list[int], list[int]]], seq_len: int, mode: str, pad_id: int
            ) -> tuple[np.ndarray, np.ndarray, int]:
    ids: list[int] = []
    mask: list[int] = []
    pads = 0
    if mode == "concat":
        for i, m in encoded:
            ids.extend(i)
            mask.extend(m)
        n = len(ids) // seq_len * seq_len
        return np.asarray(ids[:n], np.int64), np.asarray(mask[:n], np.uint8), 0
    used = 0  # tokens in the current block
    for i, m in encoded:
        if used + len(i) > seq_len:
            pads += seq_len - used
            ids.extend([pad_id] * (seq_len - used))
            mask.extend([0] * (seq_len - used))
            used = 0
        ids.extend(i)
        mask.extend(m)
        used += len(i)
    if used:
        pads += seq_len - used
        ids.extend([pad_id] * (seq_len - used))
        mask.extend([0] * (seq_len - used))
    return np.asarray(ids, np.int64), np.asarray(mask, np.uint8), pads


def pack_instructions(train: Iterable[Example], validation: Iterable[Example], tokenizer: Any,
                      out_dir: str | os.PathLike, params: InstructPackSettings) -> dict[str, Any]:
    """Encode and lay out both splits into `out_dir`; returns meta (also meta.json) with
    `audit` (too_long rows) added. `tokenizer` is a Hugging Face tokenizer with `params.eot`."""
    from dscoder.train.data import write_token_dir

    params.validate()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    pad_id = int(pad_id) if pad_id is not None else 0
    arrays, splits, audit = {}, {}, []
    for split, examples in (("train", train), ("val", validation)):
        encoded, counts = [], Counter()
        for e in examples:
            enc = encode_conversation(tokenizer, e.messages, system_prompt=params.system_prompt, eot=params.eot)
            counts["examples"] += 1
            if len(enc.input_ids) > params.seq_len:
                counts["too_long"] += 1
                audit.append(audit_row("too_long", source=e.source, path=e.path or e.id, repo_id=e.repo_id,
                                       language=e.language, size=len(enc.input_ids),
                                       detail=f"{e.id}: {len(enc.input_ids)} tokens > seq_len {params.seq_len}"))
                continue
            encoded.append((enc.input_ids, enc.loss_mask))
        ids, mask, pads = _layout(encoded, params.seq_len, params.mode, pad_id)
        arrays[split] = (ids, mask)
        splits[split] = {"examples": counts["examples"], "packed": len(encoded), "too_long": counts["too_long"],
                         "tokens": int(ids.size), "blocks": int(ids.size // params.seq_len),
                         "loss_tokens": int(mask.sum()), "pad_tokens": pads,
                         "pad_share": round(pads / ids.size, 6) if ids.size else None}
    vocab_size = len(tokenizer)
    meta_extra = {
        "format": "dscoder.instruct_tokens/1", "objective": "instruct", "loss_mask": True,
        "splits": splits, "params": params.to_dict(),
        "special_ids": {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id, "pad": pad_id,
                        "eot": int(tokenizer.convert_tokens_to_ids(params.eot))},
    }
    with atomic_path(out_dir, is_dir=True) as tmp:
        write_token_dir(tmp, train=arrays["train"][0], val=arrays["val"][0], vocab_size=vocab_size,
                        seq_len=params.seq_len, train_mask=arrays["train"][1], val_mask=arrays["val"][1],
                        extra_meta=meta_extra)
    from dscoder.train.data import read_meta

    return {**read_meta(out_dir), "audit": audit}
