"""Sec. 3.6 settings derived from an exported base model."""

import json
import math

import pytest

from dscoder.train import TrainSettings, long_context_overrides


def test_lr_is_the_base_runs_final_lr(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    base = TrainSettings(lr=5.3e-4, max_steps=1000, warmup_steps=20, schedule="step3")
    (tmp_path / "train_config.json").write_text(json.dumps(base.to_dict()))
    o = long_context_overrides(tmp_path)
    assert math.isclose(o["lr"], 5.3e-5)  # 10% of the peak at the end of step3
    assert (o["rope_scaling_factor"], o["rope_theta"], o["seq_len"]) == (4.0, 100000.0, 16384)
    assert o["init_from"] == str(tmp_path) and o["schedule"] == "constant"
    TrainSettings(**{**base.to_dict(), **o})  # every key is a TrainSettings field


def test_foreign_checkpoint_needs_an_explicit_lr(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="lr is required"):
        long_context_overrides(tmp_path)
    assert long_context_overrides(tmp_path, lr=4.2e-5, seq_len=8192)["lr"] == 4.2e-5
    with pytest.raises(ValueError, match="base_model_dir"):
        long_context_overrides(tmp_path / "absent", lr=1e-5)
