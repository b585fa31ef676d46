"""Piecewise encoding (dscoder.tokens.encode.encode_ids): long texts are cut only where the ids do
not change, and no `encode_batch_fast` call gets more than its limit of characters beyond
one run without a safe cut."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dscoder.data.doc_formats import format_tokens
from dscoder.tokens import encode
from dscoder.tokens import tokenizer as tk

#: Code-like pieces: every class of the GPT-2 split regex and the places where it is subtle
#: (contractions, a space before a word, whitespace before a newline, CRLF, Unicode letters,
#: digits and spaces, combining marks, emoji), and the spellings of added tokens: special
#: ones (encoded as bytes, `encode_special_tokens`), the starcoder2 format's (matched in
#: text) and "x.y" (an added token with a cut candidate inside).
WORDS = ["def", "foo", "x", "_", "__init__", "self", "A1", "42", "3.14", "0x1F", "'s", "'ll", "'", '"', "don't",
         "(", ")", ":", ".", ",", "==", "->", "{", "}", "#", "//", "\\", " ", "  ", "\t", "\n", "\r\n", "  \n",
         "\n\n", " \t\n", "é", "ñandú", "中文", "値", "٣", "\u00a0", "\u3000", "e\u0301", "🙂", "👩‍💻", "\x00",
         *tk.SPECIAL_TOKENS.values(), *format_tokens("starcoder2"), "x.y"]

_text = st.lists(st.sampled_from(WORDS) | st.text(max_size=3), max_size=100).map("".join)


@pytest.fixture(scope="module", params=["plain", "format"])
def tok(request, corpus, fixed_blocks, tmp_path_factory):
    """The session's tokenizer, or one with the starcoder2 format's tokens and an added "x.y",
    both loaded as the packer loads them."""
    if request.param == "plain":
        d = request.getfixturevalue("tok_dir")
    else:
        d = tmp_path_factory.mktemp("tok-format") / "tokenizer"
        params = tk.TokenizerSettings(vocab_size=600, model_max_length=2048)
        t, info = tk.train_tokenizer(fixed_blocks(corpus, 100_000), params, extra_tokens=format_tokens("starcoder2"))
        tk.save_tokenizer(t, d, params, info)
    t = tk.load_tokenizer(d)
    if request.param == "format":
        t.add_tokens(["x.y"])
    assert encode.cut_guard(t) is not None
    return t


def _whole(tok, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch_fast(texts, add_special_tokens=False)]


class _Recording:
    """A tokenizer that records the characters of each `encode_batch_fast` call."""

    def __init__(self, tok):
        self.tok, self.calls = tok, []

    def encode_batch_fast(self, texts, **kw):
        self.calls.append(sum(map(len, texts)))
        return self.tok.encode_batch_fast(texts, **kw)

    def __getattr__(self, name):
        return getattr(self.tok, name)


def test_pieces_encode_as_the_whole_text(tok):
    """Random code-like texts, cut with small limits: the ids are those of the whole text, and
    with limit 1 (every safe cut) each cut alone keeps them too."""
    seen = {"texts": 0, "cut": 0, "single_cuts": 0}

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(texts=st.lists(_text, min_size=1, max_size=4), limit=st.integers(1, 48))
    def check(texts, limit):
        got = encode.encode_ids(tok, texts, limit)
        want = _whole(tok, texts)
        assert [g.dtype for g in got] == [np.uint32] * len(texts)
        assert [g.tolist() for g in got] == want
        guard = encode.cut_guard(tok)
        for text in texts:
            bounds = encode.piece_bounds(text, limit, guard)
            assert bounds[0] == 0 and bounds[-1] == len(text)
            assert all(a < b for a, b in zip(bounds, bounds[1:])) or text == ""
            seen["texts"] += 1
            seen["cut"] += len(bounds) > 2
        for text, ids in zip(texts, want):
            for p in encode.piece_bounds(text, 1, guard)[1:-1]:
                assert _whole(tok, [text[:p]])[0] + _whole(tok, [text[p:]])[0] == ids, (text, p)
                seen["single_cuts"] += 1

    check()
    assert seen["cut"] > seen["texts"] // 10 and seen["single_cuts"] > 300, seen


def test_cuts_keep_clear_of_added_tokens(tok):
    """Added tokens hold cut candidates ("<file_sep>": `<|f`, `e|_`; "<|EOT|>": `T||`), yet no
    piece boundary falls inside one: a run of one of them has no cut at all."""
    guard = encode.cut_guard(tok)
    assert {"<|EOT|>", tk.SPECIAL_TOKENS["fim_begin"]} <= set(guard)
    for token in guard:
        assert encode.piece_bounds(token * 50, 3, guard) == [0, 50 * len(token)], token
    text = "".join(f"a{i}<file_sep>x.y<|EOT|>" for i in range(40))
    bounds = encode.piece_bounds(text, 5, guard)
    assert len(bounds) > 40
    for p in bounds[1:-1]:
        assert not any(s < p < s + len(c) for c in guard for s in _occurrences(text, c)), p
    assert [a.tolist() for a in encode.encode_ids(tok, [text], 5)] == _whole(tok, [text])


def _occurrences(text: str, c: str) -> list[int]:
    out, s = [], text.find(c)
    while s >= 0:
        out.append(s)
        s = text.find(c, s + 1)
    return out


def test_encode_calls_stay_within_the_limit(tok, corpus):
    """Real source files and a long one: no call gets more than `limit` characters, so many
    calls happen; a region without a safe cut (a run of letters, a run of spaces) makes one
    call longer by that run only. Same ids as one call with everything."""
    files = [d["text"][f["start"]:f["end"]] for d in corpus for f in d["files"]][:60]
    texts = [*files, "".join(files)]
    rec = _Recording(tok)
    got = encode.encode_ids(rec, texts, 2_000)
    assert [g.tolist() for g in got] == _whole(tok, texts)
    assert max(rec.calls) <= 2_000 and len(rec.calls) >= sum(map(len, texts)) // 2_000
    assert sum(rec.calls) == sum(map(len, texts))

    run = "é" * 5_000 + " " * 3_000
    texts = ["x = 1\n" * 1_000 + run + "y = (2)\n" * 1_000]
    rec = _Recording(tok)
    got = encode.encode_ids(rec, texts, 2_000)
    assert [g.tolist() for g in got] == _whole(tok, texts)
    assert max(rec.calls) <= 2_000 + len(run) and sorted(rec.calls)[-2] <= 2_000


def test_unproved_pipelines_are_not_cut(tok_dir):
    """A tokenizer the rule is not proved for (here: a prefix space) encodes texts whole."""
    from tokenizers import pre_tokenizers

    t = tk.load_tokenizer(tok_dir)
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    assert encode.cut_guard(t) is None
    text = "def f(x):\n    return x\n" * 100
    assert encode.piece_bounds(text, 10, None) == [0, len(text)]
    rec = _Recording(t)
    assert [a.tolist() for a in encode.encode_ids(rec, [text], 10)] == _whole(t, [text])
    assert rec.calls == [len(text)]
