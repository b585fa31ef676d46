"""Learning-rate schedules as pure functions of the step (no scheduler state to checkpoint)."""

from __future__ import annotations

import math
from typing import Sequence

from dscoder.train.config import TrainSettings


def step3_multiplier(step: int, max_steps: int, fractions: Sequence[float], multipliers: Sequence[float]) -> float:
    """Sec. 3.4 / DeepSeek LLM three-stage schedule: 1 until the first fraction of the run,
    then each multiplier in turn (defaults: x sqrt(1/10) at 80%, x 0.1 at 90%)."""
    m = 1.0
    for frac, mult in zip(fractions, multipliers):
        if step >= round(frac * max_steps):
            m = mult
    return m


def cosine_multiplier(step: int, warmup_steps: int, max_steps: int, min_ratio: float) -> float:
    """Cosine decay from 1 after warm-up to `min_ratio` at the last step."""
    span = max(1, max_steps - 1 - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_at(cfg: TrainSettings, step: int) -> float:
    """LR for optimizer step `step` (0-based): linear warm-up to `cfg.lr` over
    `warmup_steps`, then the chosen schedule."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "step3":
        return cfg.lr * step3_multiplier(step, cfg.max_steps, cfg.step_fractions, cfg.step_multipliers)
    if cfg.schedule == "cosine":
        return cfg.lr * cosine_multiplier(step, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio)
    return cfg.lr


def final_lr(cfg: TrainSettings) -> float:
    """The LR of the last step: what Sec. 3.6 continues with for long-context training."""
    return lr_at(cfg, cfg.max_steps - 1)
