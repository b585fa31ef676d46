"""DeepSeek-Coder-v1.5 continued pretraining data (Sec. 5, Table 9) and the general-LM corpus.

v1.5 starts from a general LLM and continues pretraining, next-token objective only, on

    source                                      Table 9   here (from the clean corpus)
    code                                        70%       file contents of code languages
    markdown (Markdown and StackExchange)       10%       Markdown / reStructuredText files
    nl_code (natural language about code)        7%       docstrings and function doc comments
    nl_math (natural language about math)        7%       docstrings / doc comments with a math
                                                          keyword, plus `extra_files`
    general (bilingual Chinese-English NL)       6%       plain-text files, plus `extra_files`

Each source is a list of (repo_id, text). `extra_files` adds files (plain text, or JSONL with a
`text` field) to any source; StackExchange dumps or math text go there.

Sampling (`sample_mixture`) is by token quota: source s gets round(w_s * budget) tokens
(weights renormalised over the sources that have text; an empty source is reported, never
fatal). Its texts are taken in a seeded shuffled order, reshuffled per epoch when exhausted
(at most `max_epochs` passes, a shortfall is reported), and the text that crosses the quota
is cut there; then all chosen documents are interleaved in one seeded order. Token shares
therefore match the weights up to rounding; the tests check it. Each document is
[BOS] text [EOS] with the *given* tokenizer's own BOS/EOS (whatever it has), so any HF
tokenizer works - v1.5 keeps the general model's tokenizer.

The split is by repository (`dscoder.tokens.split.val_repo_ids`); extra files go by a hash of
their path. Output: train.bin / val.bin + meta.json (`dscoder.train.data.write_token_dir`), no
mask.

Why it lives in dscoder.train: this is the token data of two training stages
(`continue_pretrain`, `general_lm`), built inside the stage and written in the trainer's own
token layout. It composes the pieces below it (instruct mining's docstrings for the natural
language sources, the tokens split, the trainer's token directory), so it sits next to the
trainer that consumes it, above tokens/ and instruct/ (neither imports it).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np

from dscoder.config import Settings, check
from dscoder.data.repo_blocks import block_content, spans_problem
from dscoder.io import atomic_path

#: Table 9 (DeepSeek-Coder-v1.5 continued-pretraining mix).
TABLE9_WEIGHTS: dict[str, float] = {"code": 0.70, "markdown": 0.10, "nl_code": 0.07, "nl_math": 0.07, "general": 0.06}
SOURCES = tuple(TABLE9_WEIGHTS)
MARKDOWN_LANGUAGES = frozenset({"markdown", "restructuredtext", "asciidoc"})
TEXT_LANGUAGES = frozenset({"text"})
#: Not code: prose, and files that are mostly data.
NOT_CODE = MARKDOWN_LANGUAGES | TEXT_LANGUAGES | frozenset({"json", "csv", "tsv"})
MATH_WORDS = (
    "algebra", "arithmetic", "binomial", "combinatori", "cosine", "derivative", "determinant", "eigen",
    "equation", "exponent", "factorial", "fourier", "fraction", "gcd", "geometr", "gradient", "integral",
    "interpolat", "lcm", "logarithm", "matrix", "matrices", "modulo", "modular", "polynomial", "prime",
    "probabilit", "quadratic", "sqrt", "square root", "theorem", "trigonometr", "variance", "vector",
)

Text = tuple[str, str]  # (repo_id or "file:<path>", text)


@dataclass(frozen=True, kw_only=True)
class MixtureSettings(Settings):
    section: ClassVar[str] = "mixture"

    weights: dict[str, float] = field(default_factory=lambda: dict(TABLE9_WEIGHTS))
    """Source -> weight (normalised); Table 9 by default. Keys from code, markdown, nl_code,
    nl_math, general."""
    train_tokens: int = 2_000_000
    """Token budget of the train split (Sec. 5: 2T; the default profile is tiny)."""
    val_tokens: int = 100_000
    """Token budget of the validation split."""
    seq_len: int = 4096
    """Block length (Sec. 5: 4K context)."""
    seed: int = 0
    """Seeds the per-source orders and the interleaving."""
    max_epochs: int = 4
    """At most this many passes over a source's texts to fill its quota (upsampling cap)."""
    val_fraction: float = 0.05
    """Expected share of repositories held out (dscoder.tokens.split.val_repo_ids)."""
    split_seed: int = 0
    """Salt of the split hash."""
    min_nl_words: int = 4
    """Docstrings / comments shorter than this (words) are not used as natural language."""
    extra_files: dict[str, list[str]] = field(default_factory=dict)
    """Source -> files (plain text: one document per file; .jsonl: one per line's `text`)."""

    def validate(self) -> None:
        bad = sorted(set(self.weights) - set(SOURCES))
        check(not bad, "mixture.weights", f"unknown sources {bad}; choose from {list(SOURCES)}")
        check(all(w >= 0 for w in self.weights.values()) and sum(self.weights.values()) > 0, "mixture.weights",
              f"must be >= 0 with a positive sum, got {self.weights}")
        bad = sorted(set(self.extra_files) - set(SOURCES))
        check(not bad, "mixture.extra_files", f"unknown sources {bad}")
        check(self.train_tokens >= 1, "mixture.train_tokens", f"must be >= 1, got {self.train_tokens}")
        check(self.val_tokens >= 0, "mixture.val_tokens", f"must be >= 0, got {self.val_tokens}")
        check(self.seq_len >= 2, "mixture.seq_len", f"must be >= 2, got {self.seq_len}")
        check(self.max_epochs >= 1, "mixture.max_epochs", f"must be >= 1, got {self.max_epochs}")
        check(0.0 <= self.val_fraction < 1.0, "mixture.val_fraction", f"must be in [0, 1), got {self.val_fraction}")


_MATH = re.compile(r"\b(" + "|".join(re.escape(w) for w in MATH_WORDS) + r")", re.I)


def is_math(text: str) -> bool:
    return _MATH.search(text) is not None


def read_extra_file(path: str | os.PathLike) -> tuple[list[str], Counter]:
    """Documents of an extra file and problems found (missing, not UTF-8, bad JSON lines)."""
    problems: Counter = Counter()
    p = Path(path)
    if not p.is_file():
        problems["missing_file"] += 1
        return [], problems
    data = p.read_bytes()
    if p.suffix.lower() != ".jsonl":
        try:
            return [data.decode("utf-8")], problems
        except UnicodeDecodeError:
            problems["not_utf8"] += 1
            return [], problems
    out = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            rec = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            problems["bad_line"] += 1
            continue
        if isinstance(rec, dict) and isinstance(rec.get("text"), str) and rec["text"].strip():
            out.append(rec["text"])
        else:
            problems["no_text_field"] += 1
    return out, problems


def corpus_sources(rows: Iterable[Mapping[str, Any]], params: MixtureSettings) -> tuple[dict[str, list[Text]], Counter]:
    """The five sources' texts from clean REPOS rows (+ extra files), and counts/problems."""
    from dscoder.instruct.mining import docstrings

    rows = list(rows)
    sources: dict[str, list[Text]] = {s: [] for s in SOURCES}
    stats: Counter = Counter()
    for row in rows:
        problem = spans_problem(dict(row))
        if problem is not None:
            stats[f"bad_repo:{problem}"] += 1
            continue
        for span in row["files"]:
            content = block_content(row["text"], span)
            if not content.strip():
                continue
            lang = span["language"]
            src = "markdown" if lang in MARKDOWN_LANGUAGES else "general" if lang in TEXT_LANGUAGES else \
                None if lang in NOT_CODE else "code"
            if src is not None:
                sources[src].append((row["repo_id"], content))
    for repo_id, _path, doc in docstrings(rows):
        if len(doc.split()) < params.min_nl_words:
            stats["nl_too_short"] += 1
            continue
        sources["nl_math" if is_math(doc) else "nl_code"].append((repo_id, doc))
    for src, paths in sorted(params.extra_files.items()):
        for path in paths:
            docs, problems = read_extra_file(path)
            for k, v in problems.items():
                stats[f"extra_file:{k}"] += v
            sources[src].extend((f"file:{path}", d) for d in docs)
    return sources, stats


def general_lm_texts(rows: Iterable[Mapping[str, Any]], min_words: int = 4) -> list[Text]:
    """The corpus's natural-language share, for the small general model the default profile
    trains as v1.5's starting point: Markdown/rst/plain-text files, then every docstring and
    doc comment of at least `min_words` words."""
    from dscoder.instruct.mining import docstrings

    rows = list(rows)
    out: list[Text] = []
    for row in rows:
        if spans_problem(dict(row)) is not None:
            continue
        for span in row["files"]:
            if span["language"] in MARKDOWN_LANGUAGES | TEXT_LANGUAGES:
                content = block_content(row["text"], span)
                if content.strip():
                    out.append((row["repo_id"], content))
    out.extend((r, d) for r, _p, d in docstrings(rows) if len(d.split()) >= min_words)
    return out


def split_texts(sources: Mapping[str, list[Text]], val_fraction: float, seed: int
                ) -> tuple[dict[str, list[Text]], dict[str, list[Text]]]:
    """(train, val) sources, split by repository (or extra-file path)."""
    from dscoder.tokens.split import val_repo_ids

    ids = {k for texts in sources.values() for k, _ in texts}
    val = val_repo_ids(ids, val_fraction, seed) if val_fraction > 0 else frozenset()
    train = {s: [t for t in texts if t[0] not in val] for s, texts in sources.items()}
    held = {s: [t for t in texts if t[0] in val] for s, texts in sources.items()}
    return train, held


def _encode(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    enc = tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True)["input_ids"]
    return [([bos] if bos is not None else []) + ids + ([eos] if eos is not None else []) for ids in enc]


def quotas(weights: Mapping[str, float], available: Iterable[str], budget: int) -> dict[str, int]:
    """Tokens per source: weights renormalised over `available`, rounded so they sum to budget."""
    avail = [s for s in weights if s in set(available) and weights[s] > 0]
    if not avail:
        return {}
    total = sum(weights[s] for s in avail)
    exact = {s: weights[s] / total * budget for s in avail}
    q = {s: int(np.floor(v)) for s, v in exact.items()}
    for s in sorted(avail, key=lambda s: (-(exact[s] - q[s]), s))[: budget - sum(q.values())]:
        q[s] += 1
    return q


def sample_mixture(sources: Mapping[str, list[Text]], weights: Mapping[str, float], budget: int, tokenizer: Any, *,
                   seed: int, max_epochs: int = 4, batch: int = 64) -> tuple[list[tuple[str, list[int]]], dict[str, Any]]:
    """Documents (source, token ids) filling `budget` tokens by weight, interleaved; and
    per-source stats (quota, tokens, docs, epochs, shortfall). See the module docstring."""
    names = [s for s in weights if sources.get(s)]
    q = quotas(weights, names, budget)
    docs: list[tuple[str, list[int]]] = []
    stats: dict[str, Any] = {}
    for k, s in enumerate(sorted(q)):
        texts = sorted(sources[s])  # input order never matters
        got, n_docs, epoch = 0, 0, 0
        while got < q[s] and epoch < max_epochs:
            order = np.random.default_rng([seed, k, epoch]).permutation(len(texts))
            for b0 in range(0, len(order), batch):
                for ids in _encode(tokenizer, [texts[i][1] for i in order[b0: b0 + batch]]):
                    take = ids[: q[s] - got]
                    docs.append((s, take))
                    got += len(take)
                    n_docs += 1
                    if got >= q[s]:
                        break
                if got >= q[s]:
                    break
            epoch += 1
        stats[s] = {"quota": q[s], "tokens": got, "docs": n_docs, "texts": len(texts), "epochs": epoch,
                    "shortfall": q[s] - got}
    for s in weights:
        if s not in q:
            stats[s] = {"quota": 0, "tokens": 0, "docs": 0, "texts": len(sources.get(s, [])), "epochs": 0,
                        "shortfall": 0, "missing": True}
    order = np.random.default_rng([seed, 1_000_003]).permutation(len(docs))
    return [docs[i] for i in order], stats


def _stream(docs: list[tuple[str, list[int]]], seq_len: int) -> np.ndarray:
    flat = np.concatenate([np.asarray(ids, np.int64) for _, ids in docs]) if docs else np.zeros(0, np.int64)
    return flat[: flat.size // seq_len * seq_len]


def write_mixture(sources: Mapping[str, list[Text]], tokenizer: Any, out_dir: str | os.PathLike,
                  params: MixtureSettings, *, extra_meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Split, sample both splits (train to `train_tokens`, val to `val_tokens`) and write the
    token directory atomically; returns meta (also meta.json)."""
    from dscoder.train.data import read_meta, write_token_dir

    params.validate()
    train_src, val_src = split_texts(sources, params.val_fraction, params.split_seed)
    train_docs, train_stats = sample_mixture(train_src, params.weights, params.train_tokens, tokenizer,
                                             seed=params.seed, max_epochs=params.max_epochs)
    val_docs, val_stats = sample_mixture(val_src, params.weights, params.val_tokens, tokenizer,
                                         seed=params.seed + 1, max_epochs=params.max_epochs) if params.val_tokens else ([], {})
    train, val = _stream(train_docs, params.seq_len), _stream(val_docs, params.seq_len)
    shares = {s: round(v["tokens"] / max(sum(x["tokens"] for x in train_stats.values()), 1), 6) for s, v in train_stats.items()}
    meta = {"format": "dscoder.mixture_tokens/1", "objective": "next_token", "loss_mask": False,
            "mixture": {"train": train_stats, "val": val_stats, "train_shares": shares},
            "special_ids": {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id},
            "params": params.to_dict(), **(extra_meta or {})}
    with atomic_path(out_dir, is_dir=True) as tmp:
        write_token_dir(tmp, train=train, val=val, vocab_size=len(tokenizer), seq_len=params.seq_len, extra_meta=meta)
    return read_meta(out_dir)


def write_texts(texts: list[Text], tokenizer: Any, out_dir: str | os.PathLike, *, seq_len: int,
                val_fraction: float = 0.05, split_seed: int = 0, seed: int = 0) -> dict[str, Any]:
    """Every text once (no weights): the general-LM token directory. A one-source mixture
    whose budget is all its tokens."""
    train_src, val_src = split_texts({"general": texts}, val_fraction, split_seed)
    out = {}
    for split, src in (("train", train_src), ("val", val_src)):
        enc = _encode(tokenizer, [t for _, t in sorted(src["general"])]) if src["general"] else []
        order = np.random.default_rng([seed, split == "val"]).permutation(len(enc))
        out[split] = _stream([("general", enc[i]) for i in order], seq_len)
    from dscoder.train.data import read_meta, write_token_dir

    meta = {"format": "dscoder.general_tokens/1", "objective": "next_token", "loss_mask": False,
            "texts": {"train": len(train_src["general"]), "val": len(val_src["general"])}}
    with atomic_path(out_dir, is_dir=True) as tmp:
        write_token_dir(tmp, train=out["train"], val=out["val"], vocab_size=len(tokenizer), seq_len=seq_len, extra_meta=meta)
    return read_meta(out_dir)


#: Special tokens of the general model's tokenizer: deliberately not dscoder's spellings, so
#: the v1.5 stage really runs with "another model's" tokenizer.
GENERAL_SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}


def train_general_tokenizer(texts: Iterable[str], vocab_size: int = 4096, *, min_frequency: int = 2,
                            model_max_length: int = 4096) -> Any:
    """A byte-level BPE for the general model (HF PreTrainedTokenizerFast, ids 0-2 = <s>, </s>,
    <pad>; encoding with special tokens prepends <s>); save it with `save_pretrained`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(GENERAL_SPECIALS.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    # prompts encoded through AutoTokenizer begin with <s>, as every training document does
    bos = GENERAL_SPECIALS["bos_token"]
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                       special_tokens=[(bos, tok.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length,
                                   clean_up_tokenization_spaces=False, **GENERAL_SPECIALS)
