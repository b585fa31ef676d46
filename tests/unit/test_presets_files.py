"""Every presets/*.yaml merges onto params.yaml into settings every stage accepts, every key of
a preset reaches the settings it is meant for, and the model presets have the sizes the README
states (Table 2), counted on the meta device."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from flows.cli import deep_merge
from dscoder.data.decontam import DecontamSettings
from dscoder.data.repo_docs.document import RepoDocsSettings
from dscoder.instruct import InstructDataSettings
from dscoder.model import build_config, count_params
from dscoder.tokens.pack import PackSettings
from dscoder.tokens.tokenizer import TokenizerSettings
from stages import continue_pretrain, general_lm, instruct, long_context, pretrain
from stages.common import load_paths
from stages.common.training import TrainingSettings, check_training

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted((ROOT / "presets").glob("*.yaml"))
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
_PATHS = load_paths(PARAMS)
TRAINING = {  # stage: (its typed section, its trainer paths)
    "pretrain": (TrainingSettings, pretrain.pretrain_paths(_PATHS)),
    "long_context": (long_context.LongContextSettings, long_context.long_context_paths(_PATHS)),
    "instruct": (instruct.InstructSettings, instruct.instruct_paths(_PATHS)),
    "general_lm": (general_lm.GeneralLmSettings, general_lm.general_lm_paths(_PATHS)),
    "continue_pretrain": (continue_pretrain.ContinuePretrainSettings, continue_pretrain.continue_pretrain_paths(_PATHS)),
}
OTHER = {"tokenizer": TokenizerSettings, "pack": PackSettings, "decontam": DecontamSettings,
         "repo_docs": RepoDocsSettings, "instruct_data": InstructDataSettings}


def stand_ins(root: Path) -> None:
    """The files the settings check for, under `root` (the test's working directory): the
    token directory and tokenizers the training stages name, the benchmark files decontam names."""
    for _, paths in TRAINING.values():
        tokens = root / paths["tokens_dir"]
        tokens.mkdir(parents=True, exist_ok=True)
        (tokens / "meta.json").write_text(json.dumps({"dtype": "uint16", "vocab_size": 32256, "seq_len": 16}))
        (tokens / "train.bin").write_bytes(b"\0" * 64)
        if "tokenizer_dir" in paths:
            (root / paths["tokenizer_dir"]).mkdir(parents=True, exist_ok=True)
    (root / "data" / "benchmarks").mkdir()
    for name in ("mbpp.jsonl", "gsm8k_test.jsonl", "math_test.jsonl"):
        (root / "data" / "benchmarks" / name).write_text("")


def leaves(tree: dict, path: tuple = ()):
    """(dotted path, value) of every leaf of a mapping; a list is a leaf."""
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, (*path, key))
        else:
            yield (*path, key), value


def get(node, key):
    return node[key] if isinstance(node, (dict, list, tuple)) else getattr(node, key)


def reaches(node, given) -> bool:
    """Whether the settings value `node` holds every key and value of `given` (what a preset
    wrote: mappings, lists, scalars); a list's entries are matched one by one."""
    if isinstance(given, dict):
        return all(reaches(get(node, k), v) for k, v in given.items())
    if isinstance(given, list):
        return isinstance(node, (list, tuple)) and len(node) == len(given) and all(
            reaches(n, g) for n, g in zip(node, given))
    if isinstance(node, bool) or isinstance(given, bool):
        return node is given
    return node == given


def test_there_are_presets_for_the_paper_runs():
    assert {p.stem for p in PRESETS} >= {"1.3b", "6.7b", "33b", "instruct", "v1.5"}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_every_preset_key_is_validated_and_applied(preset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stand_ins(tmp_path)
    over = yaml.safe_load(preset.read_text())
    merged = deep_merge(copy.deepcopy(PARAMS), copy.deepcopy(over))  # a fresh params.yaml per preset
    assert not set(over) - set(TRAINING) - set(OTHER), "a preset section no test builds"
    built = {}
    for section in over:
        if section in TRAINING:
            cls, paths = TRAINING[section]
            built[section] = cls.from_dict(merged[section], section)
            _, train_cfg, _ = check_training(section, merged[section], paths, settings=cls)  # trainer values, batch split
            for key, value in cls.trainer_section(merged[section]).items():
                assert reaches(getattr(train_cfg, key), value), f"{section}.{key} does not reach the trainer"
        else:
            built[section] = OTHER[section].from_dict(merged[section], section)
    keys = list(leaves(over))
    assert keys
    for path, value in keys:
        node = built[path[0]]
        for key in path[1:]:
            node = get(node, key)
        assert reaches(node, value), f"{'.'.join(path)}: the settings hold {node!r}, the preset {value!r}"


def readme_sizes() -> dict[str, str]:
    """The parameter counts the README states for the 1.3B, 6.7B and 33B presets, as written."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"checks its parameter count \(([\d.]+)B, ([\d.]+)B, ([\d.]+)B\)", text)
    assert m, "the README no longer states the presets' parameter counts"
    return dict(zip(("1.3b", "6.7b", "33b"), m.groups()))


@pytest.mark.parametrize("name", ["1.3b", "6.7b", "33b"])
def test_model_sizes_are_the_readmes(name):
    stated = readme_sizes()[name]
    preset = yaml.safe_load((ROOT / "presets" / f"{name}.yaml").read_text())
    config = build_config(preset["pretrain"]["model_preset"], vocab_size=32256)
    total = count_params(config)["total"]
    digits = len(stated.partition(".")[2])
    assert f"{total / 1e9:.{digits}f}" == stated, (total, stated)
    if name == "33b":
        assert config.num_key_value_heads == 8  # GQA
