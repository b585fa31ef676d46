"""Tokenizer: exact round trips, fixed special ids, AutoTokenizer loading, hashes."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dscoder.tokens import tokenizer as tk
from dscoder.config import ConfigError

# Any Unicode scalar value (surrogates cannot be UTF-8 encoded, so no text holds them),
# with special-token spellings mixed in: in packed data they must stay plain text.
TEXT = st.lists(
    st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
              st.sampled_from(list(tk.SPECIAL_TOKENS.values()) + ["\r\n", "    ", "\t", "\x00", "👩‍💻"])),
    max_size=12,
).map("".join)


@pytest.fixture(scope="module")
def tok(tok_dir):
    return tk.load_tokenizer(tok_dir)


@pytest.fixture(scope="module")
def auto(tok_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tok_dir))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_round_trips_any_unicode(tok, text):
    ids = tok.encode(text, add_special_tokens=False).ids
    assert tok.decode(ids, skip_special_tokens=False) == text
    # Special spellings in text never become special ids in packed data.
    assert not set(ids) & set(tk.SPECIAL_IDS.values())


def test_round_trips_code(tok, corpus):
    texts = [d["text"] for d in corpus]
    encs = tok.encode_batch_fast(texts, add_special_tokens=False)
    for text, enc in zip(texts, encs):
        assert tok.decode(enc.ids, skip_special_tokens=False) == text
    assert len(encs[0]) < len(texts[0]) / 2  # merges were learnt: code compresses


def test_special_ids_are_fixed_and_documented(tok, tok_dir):
    assert tk.special_token_ids(tok) == tk.SPECIAL_IDS
    assert tk.SPECIAL_IDS["bos"] == 0 and tk.SPECIAL_IDS["eos"] == 1 and tk.SPECIAL_IDS["pad"] == 2
    assert [tk.SPECIAL_IDS[n] for n in ("fim_begin", "fim_hole", "fim_end", "eot")] == [3, 4, 5, 6]
    assert tk.SPECIAL_TOKENS["fim_begin"] == "<｜fim▁begin｜>"  # the released spelling (docs/recipe.md §2)
    saved = json.loads((tok_dir / "params.json").read_text())
    assert saved["special_ids"] == tk.SPECIAL_IDS
    assert saved["training"]["vocab_size_actual"] == tok.get_vocab_size(with_added_tokens=True) == 800


def test_autotokenizer_loads_with_special_ids(auto):
    assert (auto.bos_token_id, auto.eos_token_id, auto.pad_token_id) == (0, 1, 2)
    assert auto.model_max_length == 2048
    assert auto.convert_tokens_to_ids(list(tk.SPECIAL_TOKENS.values())) == list(tk.SPECIAL_IDS.values())
    prompt = "<｜fim▁begin｜>def f(x):\n    <｜fim▁hole｜>\n    return y<｜fim▁end｜>"
    ids = auto(prompt)["input_ids"]
    assert ids[0] == 0  # BOS prepended, as the released tokenizer does
    assert ids[1] == tk.SPECIAL_IDS["fim_begin"] and tk.SPECIAL_IDS["fim_end"] == ids[-1]
    assert auto.decode(ids[1:]) == prompt


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=60))
def test_autotokenizer_round_trips(auto, text):
    ids = auto(text, add_special_tokens=False)["input_ids"]
    assert auto.decode(ids) == text  # no cleanup of spaces, no normalisation


def test_training_and_directory_are_deterministic(corpus, tok_dir, tmp_path, fixed_blocks):
    params = tk.TokenizerSettings(vocab_size=800, model_max_length=2048)
    tok, info = tk.train_tokenizer(fixed_blocks(corpus, 400_000), params)
    digest = tk.save_tokenizer(tok, tmp_path / "again", params, info)
    assert digest == tk.tokenizer_hash(tok_dir) == tk.tokenizer_hash(tmp_path / "again")
    manifest = json.loads((tok_dir / "manifest.json").read_text())
    assert manifest["content_hash"] == digest
    assert set(manifest["files"]) == {"tokenizer.json", "tokenizer_config.json", "params.json"}
    (tmp_path / "again" / "params.json").write_text("{}")
    with pytest.raises(ValueError, match="differ"):
        tk.tokenizer_hash(tmp_path / "again")


def test_the_trainer_learns_the_same_whatever_the_texts_per_item(corpus, fixed_blocks, monkeypatch):
    params = tk.TokenizerSettings(vocab_size=800, model_max_length=2048)
    texts = list(fixed_blocks(corpus, 400_000))
    pulled: list[int] = []
    real = tk._Counted.__iter__

    def spy(self):
        for item in real(self):
            pulled.append(len(item))
            yield item

    monkeypatch.setattr(tk._Counted, "__iter__", spy)
    tok, info = tk.train_tokenizer(iter(texts), params)  # the default: lists of ~1M characters
    batched = len(pulled)
    monkeypatch.setattr(tk, "TRAIN_BATCH_CHARS", 1)  # one text per item
    tok1, info1 = tk.train_tokenizer(iter(texts), params)
    assert batched < len(texts) and pulled[batched:] == [1] * len(texts)
    assert tok.to_str() == tok1.to_str()
    assert info["texts"] == info1["texts"] == len(texts) and info["chars"] == sum(map(len, texts))


def _sample(docs, params):
    plan = tk.plan_sample(docs, params)
    return plan, list(tk.sampled_texts(docs, plan, params))


def test_sample_is_capped_and_reports_language_shares(corpus):
    params = tk.TokenizerSettings(sample_bytes=60_000, sample_seed=1)
    plan, texts = _sample(corpus, params)
    report = plan.report()
    assert 0 < report["bytes_sampled"] == sum(len(t.encode()) for t in texts) <= 60_000
    # per language: exactly the files under its threshold; one grid step more would pass its
    # share of the cap
    total = report["bytes_available"]
    for lang, v in report["by_language"].items():
        files = [(tk.file_unit(1, d["repo_id"], f["path"]), len(d["text"][f["start"]: f["end"]].encode()))
                 for d in corpus for f in d["files"] if f["language"] == lang]
        assert sum(n for u, n in files if u < v["threshold"]) == v["bytes_sampled"]
        if v["threshold"] < 1:
            step = v["threshold"] + 1 / tk.SAMPLE_BUCKETS
            assert sum(n for u, n in files if u < step) > 60_000 * v["bytes_available"] // total
    assert report["bytes_available"] == sum(len(corpus[i]["text"][f["start"]: f["end"]].encode())
                                            for i in range(len(corpus)) for f in corpus[i]["files"])
    langs = report["by_language"]
    assert {"python", "markdown"} <= set(langs)
    assert sum(v["bytes_sampled"] for v in langs.values()) == report["bytes_sampled"]
    assert all(0 <= v["share_sampled"] <= 1 for v in langs.values())
    # each language at about the overall rate (python: many files, so close to it)
    overall = report["bytes_sampled"] / report["bytes_available"]
    assert abs(langs["python"]["share_sampled"] - overall) < 0.02
    everything, _ = _sample(corpus, tk.TokenizerSettings(sample_bytes=10**12))
    assert everything.report()["bytes_sampled"] == report["bytes_available"]
    assert {v["share_sampled"] for v in everything.report()["by_language"].values()} == {1.0}
    other, _ = _sample(corpus, tk.TokenizerSettings(sample_bytes=60_000, sample_seed=2))
    assert other.sampled != plan.sampled  # the seed draws another sample


def test_sample_and_tokenizer_do_not_depend_on_row_order(corpus, tmp_path):
    import random

    params = tk.TokenizerSettings(vocab_size=600, sample_bytes=150_000)
    shuffled = list(corpus)
    random.Random(3).shuffle(shuffled)
    assert [d["repo_id"] for d in shuffled] != [d["repo_id"] for d in corpus]
    (_, a), (_, b) = _sample(corpus, params), _sample(shuffled, params)
    assert sorted(a) == sorted(b) and a != b  # the same files, read in another order
    digests = []
    for name, texts in (("a", a), ("b", b)):
        tok, info = tk.train_tokenizer(texts, params)
        digests.append(tk.save_tokenizer(tok, tmp_path / name, params, info))
    assert digests[0] == digests[1]


def test_bytes_per_token_per_language(tok, corpus):
    stats = tk.bytes_per_token(tok, corpus)
    assert {"python", "markdown", "all"} <= set(stats)
    assert stats["all"]["tokens"] == sum(v["tokens"] for k, v in stats.items() if k != "all")
    assert stats["python"]["bytes_per_token"] > 1.5  # code compresses
    content = corpus[-1]["text"][corpus[-1]["files"][0]["start"] + corpus[-1]["files"][0]["header_chars"]:
                                 corpus[-1]["files"][0]["end"]]
    assert stats["markdown"]["bytes"] == len(content.encode("utf-8"))


@pytest.mark.parametrize("field,value", [("vocab_size", 100), ("min_frequency", 0), ("model_max_length", 0)])
def test_bad_params_name_the_parameter(field, value):
    with pytest.raises(ConfigError, match=f"tokenizer.{field}"):
        tk.TokenizerSettings(**{field: value}).validate()


def test_bytes_per_token_batches_stay_bounded_and_do_not_change_counts(tok, corpus, make_repo_row, monkeypatch):
    """Batches hold at most `batch_chars` plus one file, even when one document is larger
    than `batch_chars` (the size is checked per file, not per document), and the counts are
    those of encoding each file alone."""
    big = make_repo_row("t:big", {f"f{i}.py": f"x_{i} = {i}\n" * 400 for i in range(30)})
    docs = [*corpus, big]
    batch_chars = 20_000
    assert len(big["text"]) > 3 * batch_chars
    largest = max(f["end"] - f["start"] for d in docs for f in d["files"])
    sizes = []
    real = tok.encode_batch_fast

    class Spy:  # tokenizers.Tokenizer's methods are read-only: wrap it instead
        def encode_batch_fast(self, texts, **kw):
            sizes.append(sum(map(len, texts)))
            return real(texts, **kw)

    batched = tk.bytes_per_token(Spy(), docs, batch_chars=batch_chars)
    assert len(sizes) > 3 and max(sizes) < batch_chars + largest
    assert batched == tk.bytes_per_token(tok, docs, batch_chars=1) == tk.bytes_per_token(tok, docs, batch_chars=10**12)


def test_lazy_rows_give_the_same_blocks_counts_and_tokenizer(tok, corpus, tmp_path):
    """Rows read with `read_rows(lazy=("text",))` (text decoded file by file from Arrow)
    give the same sample plan, training texts and bytes per token as Python-string rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dscoder.data.stream import Utf8Text, read_repos, read_rows

    path = tmp_path / "repos.parquet"
    pq.write_table(pa.Table.from_pylist(corpus), path, row_group_size=3)
    lazy = list(read_rows(path, lazy=("text",)))
    assert all(isinstance(d["text"], Utf8Text) for d in lazy)
    assert [{**d, "text": str(d["text"])} for d in lazy] == list(read_repos(path))
    assert list(tk._file_blocks(lazy)) == list(tk._file_blocks(corpus))
    assert tk.bytes_per_token(tok, lazy) == tk.bytes_per_token(tok, corpus)
    params = tk.TokenizerSettings(vocab_size=400, sample_bytes=30_000)
    assert tk.plan_sample(lazy, params).grids == tk.plan_sample(corpus, params).grids
    keep = {corpus[0]["repo_id"], corpus[-1]["repo_id"]}
    assert [d["repo_id"] for d in read_rows(path, keep=keep.__contains__)] == [d["repo_id"] for d in corpus
                                                                                if d["repo_id"] in keep]
