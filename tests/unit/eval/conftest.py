"""A tiny random Llama and a tiny BPE tokenizer built in the test (no hub downloads)."""

from __future__ import annotations

import pytest

CORPUS = ["def add(a, b):\n    return a + b\n", "print(1 + 2)\n", "x = [i * i for i in range(10)]\n",
          "def f(x):\n    return x\n\n\ndef g():\n    pass\n", "# comment\nimport os\n",
          "<｜fim▁begin｜>a<｜fim▁hole｜>b<｜fim▁end｜>"]


def _tokenizer(chat: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<eos>", "<pad>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>",
                                   model_max_length=4096)
    if chat:
        fast.chat_template = ("{% for m in messages %}### {{ m['role'] }}:\n{{ m['content'] }}\n"
                              "{% endfor %}{% if add_generation_prompt %}### assistant:\n"
                              "{% endif %}")
    return fast


@pytest.fixture(scope="session")
def tiny_lm():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _tokenizer(chat=False)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=4096, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg).eval()
    return model, tok


@pytest.fixture(scope="session")
def chat_tokenizer():
    return _tokenizer(chat=True)
