"""Generation with a tiny random Llama: shapes, determinism, batching, stops, chat template."""

from __future__ import annotations

import pytest

from dscoder.config import ConfigError
from dscoder.eval.generate import (
    GenerationSettings,
    chat_prompt,
    generate_completions,
    truncate_at_stop,
    uses_chat,
)

PROMPTS = ["def add(a, b):\n", "x = [", "print(", "import os\n# comment\ndef f(x):\n"]


def test_greedy_is_deterministic_and_batch_independent(tiny_lm):
    model, tok = tiny_lm
    cfg = GenerationSettings(max_new_tokens=8, batch_size=4)
    a = generate_completions(model, tok, PROMPTS, cfg)
    b = generate_completions(model, tok, PROMPTS, GenerationSettings(max_new_tokens=8, batch_size=1))
    assert a == b
    assert [len(x) for x in a] == [1] * 4
    assert generate_completions(model, tok, PROMPTS, cfg) == a


def test_sampling_gives_n_seeded_samples(tiny_lm):
    model, tok = tiny_lm
    cfg = GenerationSettings(max_new_tokens=6, num_samples=3, temperature=1.0, seed=7)
    a = generate_completions(model, tok, PROMPTS[:2], cfg)
    assert [len(x) for x in a] == [3, 3]
    assert generate_completions(model, tok, PROMPTS[:2], cfg) == a


def test_stop_sequences_cut_completions(tiny_lm):
    model, tok = tiny_lm
    free = generate_completions(model, tok, PROMPTS, GenerationSettings(max_new_tokens=12))
    stop = [c[0][2:4] for c in free if len(c[0]) >= 4][:1]
    assert stop, "the random model generated nothing to stop on"
    cut = generate_completions(model, tok, PROMPTS, GenerationSettings(max_new_tokens=12),
                               stop=stop)
    for full, short in zip(free, cut):
        assert stop[0] not in short[0]
        assert full[0].startswith(short[0])
    assert truncate_at_stop("abc\ndef x", ["\ndef", "c"]) == "ab"


def test_chat_template_used_when_present(tiny_lm, chat_tokenizer):
    _, tok = tiny_lm
    assert not uses_chat(tok, GenerationSettings())
    assert uses_chat(chat_tokenizer, GenerationSettings())
    assert not uses_chat(chat_tokenizer, GenerationSettings(chat="never"))
    with pytest.raises(ConfigError, match=r"^evaluate\.chat: 'always' but the tokenizer has no chat_template"):
        uses_chat(tok, GenerationSettings(chat="always"))
    text = chat_prompt(chat_tokenizer, "Write add.")
    assert text == "### user:\nWrite add.\n### assistant:\n"


@pytest.mark.parametrize("field,value", [("num_samples", 0), ("temperature", -1.0),
                                         ("top_p", 0.0), ("chat", "x"), ("max_new_tokens", 0)])
def test_validate_names_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"^evaluate\.{field}: "):
        GenerationSettings(**{field: value}).validate()
    with pytest.raises(ConfigError, match=r"^evaluate\.num_samples: > 1 needs temperature > 0"):
        GenerationSettings(num_samples=2).validate()


def test_generate_for_problems_end_to_end(tiny_lm, chat_tokenizer):
    from dscoder.eval.humaneval import evaluate_completions, generate_for_problems, load_humaneval

    model, tok = tiny_lm
    problems = load_humaneval()[:2]
    cfg = GenerationSettings(max_new_tokens=4)
    completions, chat = generate_for_problems(model, tok, problems, cfg)
    assert not chat and [len(c) for c in completions] == [1, 1]
    report = evaluate_completions(problems, completions, allow_execution=True)
    assert report.pass_at_k == {"pass@1": 0.0}  # a random model solves nothing
    _, chat = generate_for_problems(model, chat_tokenizer, problems[:1], cfg)
    assert chat


def test_prompts_are_encoded_bos_first_like_training_documents(tiny_lm):
    from dscoder.eval.generate import encode_prompts

    _, tok = tiny_lm
    tok = tok.__class__(tokenizer_object=tok.backend_tokenizer, eos_token="<eos>", pad_token="<pad>",
                        bos_token="<eos>")  # any single-token BOS will do
    bos = tok.bos_token_id
    plain = tok(["def f", "x"], add_special_tokens=False)["input_ids"]
    ids, mask = encode_prompts(tok, ["def f", "x"])
    rows = [r[m.bool()].tolist() for r, m in zip(ids, mask)]
    assert rows == [[bos] + plain[0], [bos] + plain[1]]
    assert mask[1].tolist() == [0] * (len(plain[0]) - len(plain[1])) + [1] * (len(plain[1]) + 1)
    cut, _ = encode_prompts(tok, ["def f"], max_tokens=2)  # cut from the left, BOS stays
    assert cut[0].tolist() == [bos, plain[0][-1]]
