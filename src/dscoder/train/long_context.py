"""Sec. 3.6 long-context adaptation as trainer settings: continue from the base model with
RoPE linear scaling 4 and base 100000, at 16K tokens, with the LR the base run ended on."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dscoder.train.config import TrainSettings
from dscoder.train.schedule import final_lr


def long_context_overrides(
    base_model_dir: str | os.PathLike,
    *,
    seq_len: int = 16384,
    factor: float = 4.0,
    rope_theta: float = 100000.0,
    lr: float | None = None,
) -> dict[str, Any]:
    """TrainSettings fields for the long-context stage (merge them over its own settings).

    `lr` defaults to the final LR of the run that made `base_model_dir`, read from the
    `train_config.json` every dscoder export carries ("LR equal to the end of pretraining";
    with the step3 schedule that is 10% of the peak). A foreign checkpoint (e.g. a released
    DeepSeek-Coder) has no such file: pass `lr`. The LR is held constant, as the paper gives
    no other schedule for these 1000 steps.
    """
    base = Path(base_model_dir)
    if not (base / "config.json").is_file():
        raise ValueError(f"base_model_dir {str(base)!r} is not a Hugging Face model directory")
    if lr is None:
        made_by = base / "train_config.json"
        if not made_by.is_file():
            raise ValueError(f"lr is required: {str(base)!r} has no train_config.json to read the final LR from")
        lr = final_lr(TrainSettings.from_dict(json.loads(made_by.read_text()), validate=False))
    return {
        "init_from": str(base),
        "rope_scaling_factor": float(factor),
        "rope_theta": float(rope_theta),
        "seq_len": int(seq_len),
        "lr": float(lr),
        "schedule": "constant",
        "warmup_steps": 0,
    }
