"""Tiny tokenizers built in the tests (no downloads) and a REPOS row builder."""

from __future__ import annotations

import pytest

from dscoder.tokens import tokenizer as tk

SAMPLE = [
    "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    return a + b\n",
    "### Instruction:\nWrite a function.\n### Response:\n```python\nprint('hi')\n```\n",
    "The quick brown fox jumps over the lazy dog. Matrix algebra and polynomials.\n",
    "int main(void) { return 0; }\n/** Docs here. */\n",
]


def repo_row(repo_id: str, files: dict[str, tuple[str, str]]) -> dict:
    """A REPOS row from {path: (language, content)} with a path-comment header per file."""
    text, spans = "", []
    for path, (language, content) in files.items():
        header = f"# {path}\n"
        start = len(text)
        text += header + content
        spans.append({"path": path, "language": language, "start": start, "end": len(text), "header_chars": len(header)})
    return {"repo_id": repo_id, "repo_name": repo_id, "source": "test", "text": text, "files": spans,
            "languages": sorted({s["language"] for s in spans}), "n_files": len(spans),
            "edges_found": 0, "edges_resolved": 0, "cycles_broken": 0}


@pytest.fixture(scope="session")
def dscoder_tok(tmp_path_factory):
    """dscoder's own tokenizer layout (BOS, EOS, <|EOT|> ...), tiny, with the chat template set."""
    from transformers import AutoTokenizer

    from dscoder.instruct.template import set_chat_template

    params = tk.TokenizerSettings(vocab_size=400, min_frequency=1)
    tok, info = tk.train_tokenizer(SAMPLE * 3, params)
    d = tmp_path_factory.mktemp("tok")
    tk.save_tokenizer(tok, d, params, info)
    hf = AutoTokenizer.from_pretrained(str(d))
    set_chat_template(hf)
    hf.save_pretrained(str(d))  # the template survives a save/load
    return AutoTokenizer.from_pretrained(str(d))


@pytest.fixture(scope="session")
def general_tok():
    """Another model's tokenizer: different specials (<s>, </s>, <pad>), no dscoder tokens."""
    from dscoder.train.mixture import train_general_tokenizer

    return train_general_tokenizer(SAMPLE * 3, vocab_size=320, min_frequency=1)
