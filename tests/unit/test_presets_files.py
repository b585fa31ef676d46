"""Every presets/*.yaml merges onto params.yaml into settings every stage accepts, and the
model presets have the paper's sizes (Table 2), counted on the meta device."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.cli import deep_merge
from dscoder.tokens.fim import FimParams  # noqa: F401  (PackParams builds it)
from dscoder.model import build_config, count_params
from dscoder.tokens.pack import PackParams
from dscoder.tokens.tokenizer import TokenizerParams
from dscoder.train.config import config_from_dict
from stages.common.training import split_launch

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted((ROOT / "presets").glob("*.yaml"))
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
SIZES = {"1.3b": 1.3e9, "6.7b": 6.7e9, "33b": 33e9}
TRAINING = ("pretrain", "long_context", "instruct", "general_lm", "continue_pretrain")


def test_there_are_presets_for_the_paper_runs():
    assert {p.stem for p in PRESETS} >= {"1.3b", "6.7b", "33b", "instruct", "v1.5"}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_preset_merges_into_valid_settings(preset):
    merged = deep_merge(PARAMS, yaml.safe_load(preset.read_text()))
    TokenizerParams.from_dict(merged["tokenizer"], "tokenizer")
    PackParams.from_dict(merged["pack"], "pack")
    for stage in TRAINING:
        section = dict(merged[stage])
        for own in ("pack", "rope", "seq_len", "lr", "vocab_size", "init_from", "mixture"):
            if stage != "pretrain" or own not in ("seq_len", "lr"):
                section.pop(own, None)
        settings, launch = split_launch(section, stage)
        cfg = config_from_dict(settings)
        cfg.validate_batch(launch.get("nproc_per_node", 1) * launch.get("nnodes", 1))


@pytest.mark.parametrize("name", sorted(SIZES))
def test_model_sizes_match_table_2(name):
    preset = yaml.safe_load((ROOT / "presets" / f"{name}.yaml").read_text())
    config = build_config(preset["pretrain"]["model_preset"], vocab_size=32256)
    total = count_params(config)["total"]
    assert abs(total - SIZES[name]) / SIZES[name] < 0.04, total
    if name == "33b":
        assert config.num_key_value_heads == 8  # GQA
