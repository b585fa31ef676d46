from __future__ import annotations

import numpy as np
import pytest

from dscoder.train import mixture as mx
from dscoder.tokens.tokenizer import SPECIAL_TOKENS

from tests.unit.instruct.conftest import repo_row

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def _sources(n_docs: int = 60) -> dict[str, list[tuple[str, str]]]:
    rng = np.random.default_rng(0)
    out = {}
    for s in mx.SOURCES:
        out[s] = [(f"{s}-repo{i % 7}", " ".join(rng.choice(WORDS, size=int(rng.integers(5, 80)))))
                  for i in range(n_docs)]
    return out


def test_sampling_matches_weights_and_is_deterministic(general_tok):
    budget = 20_000
    docs, stats = mx.sample_mixture(_sources(), mx.TABLE9_WEIGHTS, budget, general_tok, seed=3)
    tokens = {s: sum(len(ids) for src, ids in docs if src == s) for s in mx.SOURCES}
    assert sum(tokens.values()) == budget
    for s, w in mx.TABLE9_WEIGHTS.items():
        assert abs(tokens[s] / budget - w) < 0.005, (s, tokens[s])
        assert stats[s]["tokens"] == tokens[s] and stats[s]["shortfall"] == 0
    again, _ = mx.sample_mixture(_sources(), mx.TABLE9_WEIGHTS, budget, general_tok, seed=3)
    assert again == docs
    other, _ = mx.sample_mixture(_sources(), mx.TABLE9_WEIGHTS, budget, general_tok, seed=4)
    assert other != docs
    # input order does not matter
    shuffled = {s: list(reversed(t)) for s, t in _sources().items()}
    assert mx.sample_mixture(shuffled, mx.TABLE9_WEIGHTS, budget, general_tok, seed=3)[0] == docs


def test_empty_source_is_renormalised_and_shortfall_reported(general_tok):
    src = _sources(5)
    src["general"] = []
    docs, stats = mx.sample_mixture(src, mx.TABLE9_WEIGHTS, 30_000, general_tok, seed=0, max_epochs=2)
    assert stats["general"]["missing"] is True
    assert any(v["shortfall"] > 0 and v["epochs"] == 2 for v in stats.values() if not v.get("missing"))


def test_mixture_uses_another_models_tokenizer(tmp_path, general_tok):
    rows = [repo_row(f"r{i}", {
        "src/m.py": ("python", f'def f{i}(m):\n    """Invert the matrix m using Gaussian elimination."""\n    return m\n\n'
                               f'def g{i}():\n    """Open the configuration file and read it."""\n    return {i}\n'),
        "README.md": ("markdown", f"# Project {i}\n\nSome prose about the project.\n"),
        "NOTES.txt": ("text", "Plain English notes about nothing in particular.\n"),
        "data.json": ("json", "{}"),
    }) for i in range(10)]
    params = mx.MixtureSettings(train_tokens=3000, val_tokens=500, seq_len=64, val_fraction=0.2)
    sources, _ = mx.corpus_sources(rows, params)
    assert {s: len(v) for s, v in sources.items()} == {"code": 10, "markdown": 10, "nl_code": 10, "nl_math": 10,
                                                      "general": 10}
    assert all("Gaussian" in t for _, t in sources["nl_math"])
    meta = mx.write_mixture(sources, general_tok, tmp_path / "mix", params)
    assert meta["vocab_size"] == len(general_tok) and meta["seq_len"] == 64
    train = np.fromfile(tmp_path / "mix" / "train.bin", dtype=meta["dtype"])
    assert train.size == meta["train_tokens"] and train.size % 64 == 0 and train.size > 2000
    assert train.max() < len(general_tok) and not (tmp_path / "mix" / "train.mask.bin").exists()
    assert (train == general_tok.convert_tokens_to_ids("<s>")).any()
    text = general_tok.decode(train.tolist())
    assert not any(s in text for s in SPECIAL_TOKENS.values())  # no dscoder special spelled anywhere
    assert "Gaussian" in text and "<s>" in text


def test_general_lm_texts_are_prose_and_docstrings():
    rows = [repo_row("r", {"a.py": ("python", 'def f():\n    """Say hello to the whole world."""\n    x = 1\n'),
                           "README.md": ("markdown", "# Hello\n\nprose\n"), "b.c": ("c", "int x;\n")})]
    texts = [t for _, t in mx.general_lm_texts(rows)]
    assert texts == ["# Hello\n\nprose\n", "Say hello to the whole world."]


def test_params_validate():
    with pytest.raises(ValueError, match="mixture.weights"):
        mx.MixtureSettings(weights={"code": 1.0, "poetry": 1.0}).validate()
    assert mx.quotas({"a": 0.7, "b": 0.3}, ["a", "b"], 11) == {"a": 8, "b": 3}


def test_general_tokenizer_prepends_its_bos(general_tok):
    assert general_tok("hello")["input_ids"][0] == general_tok.convert_tokens_to_ids("<s>") == general_tok.bos_token_id
    assert general_tok.convert_tokens_to_ids("<|EOT|>") in (None, general_tok.unk_token_id)
