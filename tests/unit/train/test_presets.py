"""Table 2 presets built on the meta device, and the Sec. 3.6 long-context RoPE change."""

import pytest
from transformers import LlamaConfig

from dscoder.model import PRESETS, build_config, count_params, flops_per_token, with_long_context


@pytest.mark.parametrize(
    "preset, billions",
    [("1.3b", 1.3), ("6.7b", 6.7), ("33b", 33.0)],
)
def test_preset_parameter_counts_match_the_names(preset, billions):
    n = count_params(build_config(preset))["total"]
    assert abs(n / 1e9 - billions) / billions < 0.04, n


def test_table2_shapes_verbatim():
    c = build_config("33b")
    assert (c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads) == (7168, 19200, 62, 56)
    assert c.num_key_value_heads == 8  # GQA, 8 KV groups
    for name in ("1.3b", "6.7b"):
        c = build_config(name)
        assert c.num_key_value_heads == c.num_attention_heads  # MHA
    for name in ("1.3b", "6.7b", "33b"):
        c = build_config(name)
        assert c.vocab_size == 32256 and c.max_position_embeddings == 4096 and c.rms_norm_eps == 1e-6
        assert c.rope_parameters == {"rope_type": "default", "rope_theta": 10000.0}


def test_tiny_is_a_few_million_parameters():
    n = count_params(build_config("tiny", vocab_size=8192))["total"]
    assert 1e6 < n < 2e7


def test_overrides_and_bad_presets():
    c = build_config("tiny", vocab_size=300, num_hidden_layers=2)
    assert c.vocab_size == 300 and c.num_hidden_layers == 2
    with pytest.raises(ValueError, match="preset"):
        build_config("7b")
    with pytest.raises(ValueError, match="num_key_value_heads"):
        build_config("tiny", num_key_value_heads=3)
    assert PRESETS["33b"]["num_key_value_heads"] == 8  # overrides never mutate the presets


def test_long_context_rope_round_trips(tmp_path):
    base = build_config("1.3b")
    long = with_long_context(base)
    assert long.rope_parameters == {"rope_type": "linear", "factor": 4.0, "rope_theta": 100000.0}
    assert long.max_position_embeddings == 16384
    assert base.rope_parameters["rope_theta"] == 10000.0  # the input is left alone
    long.save_pretrained(tmp_path)
    again = LlamaConfig.from_pretrained(tmp_path)
    assert again.rope_parameters["rope_theta"] == 100000.0 and again.rope_parameters["factor"] == 4.0
    with pytest.raises(ValueError, match="factor"):
        with_long_context(base, factor=0.5)


def test_flops_per_token_is_six_n_plus_attention():
    c = build_config("1.3b")
    n = count_params(c)["non_embedding"]
    assert flops_per_token(c, 4096) == 6 * n + 12 * 24 * 2048 * 4096
