"""Bad settings fail fast with a message naming the parameter."""

import json

import pytest

from dscoder.config import ConfigError
from dscoder.train import TrainSettings, load_config


def good(tokens_dir, **kw) -> TrainSettings:
    return TrainSettings(**{"tokens_dir": str(tokens_dir), "global_batch_size": 8, "micro_batch_size": 2, **kw})


def test_defaults_are_the_recipe():
    c = TrainSettings()
    assert (c.beta1, c.beta2, c.warmup_steps, c.schedule) == (0.9, 0.95, 2000, "step3")
    assert c.step_fractions == [0.8, 0.9] and c.step_multipliers[1] == 0.1


def test_valid_config_passes(tokens_dir):
    c = good(tokens_dir)
    c.validate(world_size=2)
    assert c.grad_accum_steps(2) == 2 and c.grad_accum_steps(4) == 1


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"global_batch_size": 7}, "global_batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"max_steps": 0}, "max_steps"),
        ({"schedule": "linear"}, "schedule"),
        ({"model_preset": "7b"}, "model_preset"),
        ({"beta2": 1.0}, "beta2"),
        ({"step_fractions": [0.9, 0.8]}, "step_fractions"),
        ({"step_multipliers": [0.1]}, "step_multipliers"),
        ({"rope_theta": 1e5}, "rope_theta"),
        ({"rope_scaling_factor": 0.5}, "rope_scaling_factor"),
        ({"device": "tpu"}, "device"),
        ({"seq_len": 1}, "seq_len"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"loss_mask": True}, "loss_mask"),
        ({"init_from": "/nonexistent"}, "init_from"),
        ({"tokenizer_dir": "/nonexistent"}, "tokenizer_dir"),
    ],
)
def test_bad_parameter_is_named(tokens_dir, kw, name):
    with pytest.raises(ConfigError, match=rf"^train\.{name}: "):
        good(tokens_dir, **kw).validate()
    with pytest.raises(ConfigError, match=rf"^pretrain\.{name}: "):  # built for a stage: the stage's name
        TrainSettings.from_dict({"tokens_dir": str(tokens_dir), "global_batch_size": 8, "micro_batch_size": 2, **kw},
                                "pretrain")


def test_batch_not_divisible_by_world(tokens_dir):
    c = good(tokens_dir, global_batch_size=6, micro_batch_size=2)
    c.validate(world_size=1)
    with pytest.raises(ConfigError, match=r"^train\.global_batch_size: 6 .* world size 2"):
        c.validate(world_size=2)


def test_missing_tokens(tmp_path):
    with pytest.raises(ConfigError, match=r"^train\.tokens_dir: is required"):
        TrainSettings().validate()
    with pytest.raises(ConfigError, match=r"^train\.tokens_dir: .* has no meta.json"):
        TrainSettings(tokens_dir=str(tmp_path)).validate()


def test_load_json_and_yaml_with_overrides(tmp_path, tokens_dir):
    (tmp_path / "c.json").write_text(json.dumps({"tokens_dir": str(tokens_dir), "lr": 1, "model_overrides": {"hidden_size": 64}}))
    c = load_config(tmp_path / "c.json", ["lr=3e-4", "max_steps=5", "model_overrides.num_hidden_layers=2", "shuffle=false"])
    assert c.lr == 3e-4 and isinstance(c.lr, float) and c.max_steps == 5 and c.shuffle is False
    assert c.model_overrides == {"hidden_size": 64, "num_hidden_layers": 2}
    (tmp_path / "c.yaml").write_text("lr: 3e-4\nglobal_batch_size: 16\n")  # YAML 1.1 reads 3e-4 as a string
    y = load_config(tmp_path / "c.yaml", {"seed": 7})
    assert y.lr == 3e-4 and y.global_batch_size == 16 and y.seed == 7


def test_unknown_and_mistyped_keys_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"^train\.learning_rate: unknown parameter"):
        load_config(None, ["learning_rate=1"])
    with pytest.raises(ConfigError, match=r"^train\.max_steps: expected int, got 2\.5"):
        load_config(None, ["max_steps=2.5"])
    with pytest.raises(ConfigError, match=r"^train\.shuffle: expected bool, got 'yes please'"):
        load_config(None, {"shuffle": "yes please"})
    with pytest.raises(ValueError, match="key=value"):
        load_config(None, ["max_steps"])
