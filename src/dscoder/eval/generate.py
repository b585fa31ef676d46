"""Completions from a Hugging Face causal LM: batched greedy decoding with stop sequences, or
sampling n > 1 per prompt for pass@k; instruct models are prompted through their chat template.

Works on any directory `AutoModelForCausalLM.from_pretrained` loads (dscoder's exports or a
real DeepSeek-Coder checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch

from dscoder.config import ConfigError, Settings


@dataclass(frozen=True, kw_only=True)
class GenerationSettings(Settings):
    """How completions are decoded (from the `evaluate` section: `EvaluateSettings.generation`)."""

    section: ClassVar[str] = "evaluate"

    max_new_tokens: int = 512
    """New tokens per completion (stop sequences usually end it sooner)."""
    batch_size: int = 8
    """Prompts per forward batch (left-padded)."""
    num_samples: int = 1
    """Completions per prompt; > 1 is for pass@k and needs temperature > 0."""
    temperature: float = 0.0
    """0 = greedy (the paper's pass@1 setting, Sec. 4.1); > 0 = sampling."""
    top_p: float = 0.95
    """Nucleus sampling mass when sampling."""
    seed: int = 0
    """Seed for sampling; batch b uses seed + b, so results do not depend on scheduling."""
    chat: str = "auto"
    """"auto": use the tokenizer's chat template when it has one; "always"; "never"."""
    max_prompt_tokens: int | None = None
    """Keep only the last this many prompt tokens (None = no cut)."""

    def validate(self) -> None:
        for name in ("max_new_tokens", "batch_size", "num_samples"):
            self.require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)!r}")
        self.require(self.temperature >= 0, "temperature", f"must be >= 0, got {self.temperature!r}")
        self.require(self.num_samples == 1 or self.temperature > 0, "num_samples", "> 1 needs temperature > 0")
        self.require(0 < self.top_p <= 1, "top_p", f"must be in (0, 1], got {self.top_p!r}")
        self.require(self.chat in ("auto", "always", "never"), "chat", f"must be auto|always|never, got {self.chat!r}")
        self.require(self.max_prompt_tokens is None or self.max_prompt_tokens >= 1, "max_prompt_tokens",
                     f"must be >= 1 or None, got {self.max_prompt_tokens!r}")


def uses_chat(tokenizer, config: GenerationSettings) -> bool:
    """Whether prompts go through the chat template."""
    if config.chat == "never":
        return False
    has = bool(getattr(tokenizer, "chat_template", None))
    if config.chat == "always" and not has:
        raise ConfigError("evaluate.chat: 'always' but the tokenizer has no chat_template")
    return has


def chat_prompt(tokenizer, instruction: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": instruction}],
                                         add_generation_prompt=True, tokenize=False)


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut a completion at the earliest stop sequence."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


class _StopOnSequences:
    """Stops a row once its generated text holds a stop sequence (checked on the tail only)."""

    def __init__(self, tokenizer, stop: Sequence[str], prompt_len: int):
        self.tokenizer, self.stop, self.prompt_len = tokenizer, [s for s in stop if s], prompt_len

    def __call__(self, input_ids: torch.Tensor, scores=None, **kwargs) -> torch.Tensor:
        new = input_ids[:, self.prompt_len:]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop) for t in texts],
                            dtype=torch.bool, device=input_ids.device)


def encode_prompts(tokenizer, prompts: Sequence[str], max_tokens: int | None = None):
    """Left-padded (ids, mask) for prompts encoded as training documents are: BOS first
    (when the tokenizer has one), then the text; a prompt over `max_tokens` loses tokens
    from its start, never its BOS."""
    bos = tokenizer.bos_token_id
    rows = []
    for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]:
        if bos is not None and ids[:1] == [bos]:
            ids = ids[1:]  # a chat template that wrote BOS itself
        keep = None if max_tokens is None else max_tokens - (bos is not None)
        ids = ids[len(ids) - keep:] if keep is not None and len(ids) > keep else ids
        rows.append(([bos] if bos is not None else []) + ids)
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
    return ids, mask


@torch.no_grad()
def generate_completions(model, tokenizer, prompts: Sequence[str], config: GenerationSettings,
                         *, stop: Sequence[str] = ()) -> list[list[str]]:
    """`config.num_samples` completions per prompt (prompt text excluded, cut at `stop`)."""
    from transformers import StoppingCriteriaList

    config.validate()
    tokenizer.padding_side = "left"  # generation appends on the right
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    out: list[list[str]] = []
    for b, start in enumerate(range(0, len(prompts), config.batch_size)):
        batch = list(prompts[start:start + config.batch_size])
        ids, mask = encode_prompts(tokenizer, batch, config.max_prompt_tokens)
        ids, mask = ids.to(device), mask.to(device)
        kwargs = dict(max_new_tokens=config.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                      num_return_sequences=config.num_samples)
        if config.temperature > 0:
            torch.manual_seed(config.seed + b)
            kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if stop:
            kwargs["stopping_criteria"] = StoppingCriteriaList(
                [_StopOnSequences(tokenizer, stop, ids.shape[1])])
        seqs = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        texts = tokenizer.batch_decode(seqs[:, ids.shape[1]:], skip_special_tokens=True)
        for i in range(len(batch)):
            group = texts[i * config.num_samples:(i + 1) * config.num_samples]
            out.append([truncate_at_stop(t, stop) for t in group])
    return out


def load_model(path: str, *, device: str = "cpu", dtype: str = "float32"):
    """(model, tokenizer) from a Hugging Face directory, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    return model.to(device).eval(), tokenizer
