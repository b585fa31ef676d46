"""Byte-level BPE tokenizer (Sec. 3.2): train, save in Hugging Face format, load, measure.

Special tokens take the first ids, in this fixed order, whatever the vocabulary size:

    id  name        spelling                    use
     0  bos         <｜begin▁of▁sentence｜>      begins every packed document (and every encode
                                                 through AutoTokenizer, as the released models do)
     1  eos         <｜end▁of▁sentence｜>        ends every packed document (the paper packs
                                                 documents joined by EOS, Sec. 3.1)
     2  pad         <｜pad｜>                     padding; never appears in packed data
     3  fim_begin   <｜fim▁begin｜>              FIM sentinels, the released spellings
     4  fim_hole    <｜fim▁hole｜>                (the paper writes <|fim_start|> etc.; Sec. 3.1)
     5  fim_end     <｜fim▁end｜>
     6  eot         <|EOT|>                      ends an instruction turn (Sec. 3.7)
     7..22 msp_0..msp_15  <｜msp▁0｜> ...         T5-style span sentinels for the MSP ablation

then, only when asked (`train_tokenizer(..., extra_tokens=...)`), the tokens of a repository
document format (`dscoder.data.doc_formats.format_tokens`: 23 `<repo_name>`, 24 `<file_sep>`
for starcoder2, or their qwen2.5 spellings; none for the default deepseek format, so its
tokenizer is unchanged), then the 256 byte symbols, then the merges. `vocab_size` counts everything (it is the size
of the model's embedding table); the released models have 32,000 BPE ids plus specials, the
paper presets use 32000 in all. Whether a small corpus reaches the asked size is recorded
(`vocab_size_actual` in params.json).

Round trip: no normaliser, byte-level pre-tokeniser without an added prefix space, byte-level
decoder and `clean_up_tokenization_spaces=False`, so decode(encode(s)) == s for every string.
`load_tokenizer` sets `encode_special_tokens=True`, so text that happens to spell a special
token (e.g. "<|EOT|>" in a chat log inside a repository) is encoded as ordinary bytes: in
packed data the special ids come only from the packer. AutoTokenizer, on the contrary,
maps those spellings to the special ids, which is what prompts need.

The saved directory holds tokenizer.json and tokenizer_config.json (AutoTokenizer loads it),
params.json (resolved params, special ids, training figures) and manifest.json, written last:
sha256 of every other file and `content_hash`, the hash the packer records in meta.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Mapping, Sequence

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from dscoder.config import Settings, check
from dscoder.data.stream import Utf8Text
from dscoder.io import atomic_path, write_json

N_MSP_SENTINELS = 16

SPECIAL_TOKENS: dict[str, str] = {
    "bos": "<｜begin▁of▁sentence｜>",
    "eos": "<｜end▁of▁sentence｜>",
    "pad": "<｜pad｜>",
    "fim_begin": "<｜fim▁begin｜>",
    "fim_hole": "<｜fim▁hole｜>",
    "fim_end": "<｜fim▁end｜>",
    "eot": "<|EOT|>",
    **{f"msp_{k}": f"<｜msp▁{k}｜>" for k in range(N_MSP_SENTINELS)},
}
#: name -> id of every special token in the tokenizers this module trains (see the table above).
SPECIAL_IDS: dict[str, int] = {name: i for i, name in enumerate(SPECIAL_TOKENS)}
#: names a tokenizer must have for packing (MSP sentinels are needed only in MSP mode, so a
#: released DeepSeek-Coder tokenizer, which has none, can pack PSM/SPM data).
REQUIRED_SPECIALS = ("bos", "eos", "fim_begin", "fim_hole", "fim_end")

MANIFEST = "manifest.json"


@dataclass(frozen=True, kw_only=True)
class TokenizerSettings(Settings):
    section: ClassVar[str] = "tokenizer"

    vocab_size: int = 32000
    """All ids, special tokens included (Sec. 3.2: 32,000); the model's embedding size."""
    min_frequency: int = 2
    """A pair must occur this often in the training sample to be merged."""
    model_max_length: int = 16384
    """Written to tokenizer_config.json (16K after the long-context stage, Sec. 3.6);
    transformers 5 otherwise defaults to ~1e30."""
    sample_bytes: int = 200_000_000
    """At most this many UTF-8 bytes of training text: a uniform sample of the training
    repositories' files (`plan_sample`), the same whatever the order of the input."""
    sample_seed: int = 0
    """Salt of the per-file hash that draws the sample; change it to draw another one."""

    def validate(self) -> None:
        floor = 256 + len(SPECIAL_TOKENS) + 1
        check(self.vocab_size >= floor, "tokenizer.vocab_size", f"must be >= {floor} (bytes + specials + 1 merge), got {self.vocab_size}")
        check(self.vocab_size <= 1 << 32, "tokenizer.vocab_size", f"must fit uint32, got {self.vocab_size}")
        check(self.min_frequency >= 1, "tokenizer.min_frequency", f"must be >= 1, got {self.min_frequency}")
        check(self.model_max_length >= 1, "tokenizer.model_max_length", f"must be >= 1, got {self.model_max_length}")
        check(self.sample_bytes >= 1, "tokenizer.sample_bytes", f"must be >= 1, got {self.sample_bytes}")


def new_tokenizer() -> Tokenizer:
    """An untrained byte-level BPE with the lossless pipeline described in the module docstring."""
    tok = Tokenizer(models.BPE())
    # GPT-2's split regex, no prefix space: what goes in is exactly what comes out.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok


def train_tokenizer(texts: Iterable[str], params: TokenizerSettings,
                    extra_tokens: Sequence[str] = ()) -> tuple[Tokenizer, dict[str, Any]]:
    """Train on `texts` (consumed once); returns the tokenizer and training figures
    (texts, characters, seconds, vocab_size_actual). `extra_tokens`: repository-format
    tokens, ids right after the specials (see `_as_document_tokens`)."""
    params.validate()
    tok = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=params.vocab_size,
        min_frequency=params.min_frequency,
        special_tokens=[*SPECIAL_TOKENS.values(), *extra_tokens],  # ids 0.. in this order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    counted = _Counted(texts, TRAIN_BATCH_CHARS)
    t0 = time.perf_counter()
    tok.train_from_iterator(counted, trainer)
    seconds = time.perf_counter() - t0
    bos = SPECIAL_TOKENS["bos"]
    # Like the released DeepSeek-Coder tokenizer, encoding through AutoTokenizer prepends BOS.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, SPECIAL_IDS["bos"])]
    )
    for name, tid in SPECIAL_IDS.items():
        assert tok.token_to_id(SPECIAL_TOKENS[name]) == tid, name
    if extra_tokens:
        tok = _as_document_tokens(tok, extra_tokens)
    info = {
        "texts": counted.n,
        "chars": counted.chars,
        "seconds": round(seconds, 3),
        "vocab_size_actual": tok.get_vocab_size(with_added_tokens=True),
    }
    return tok, info


# ---------------------------------------------------------------- repository-format tokens


def _as_document_tokens(tok: Tokenizer, tokens: Sequence[str]) -> Tokenizer:
    """`tokens` keep the fixed ids the trainer gave them (after the specials, never merged)
    but are marked as ordinary added tokens, so they are matched in text even with
    `encode_special_tokens=True` (`load_tokenizer`): unlike FIM sentinels and EOS, which only
    the packer inserts, these separators come from the document text itself (repo_docs
    `doc_format`)."""
    data = json.loads(tok.to_str())
    for added in data["added_tokens"]:
        if added["content"] in tokens:
            added["special"] = False
    out = Tokenizer.from_str(json.dumps(data))
    for i, t in enumerate(tokens, start=len(SPECIAL_TOKENS)):
        assert out.token_to_id(t) == i, t
    return out


#: Characters of text handed to the trainer per item it pulls (a list of texts). The trainer
#: counts words the same whichever way the texts come (the same tokenizer, byte for byte), but
#: each item it pulls costs it the Python lock: one file at a time, training on the ~16 MB
#: sample of the 14x corpus took 4.8 s idle; in lists of ~1M characters, 2.6 s.
TRAIN_BATCH_CHARS = 1_000_000


class _Counted:
    """The texts in lists of about `batch_chars` characters, counted as they go."""

    def __init__(self, texts: Iterable[str], batch_chars: int):
        self.texts, self.batch_chars, self.n, self.chars = texts, batch_chars, 0, 0

    def __iter__(self) -> Iterator[list[str]]:
        batch: list[str] = []
        size = 0
        for t in self.texts:
            self.n += 1
            self.chars += len(t)
            batch.append(t)
            size += len(t)
            if size >= self.batch_chars:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch


#: Buckets of the sample thresholds (a fixed grid: the sample never depends on float order).
SAMPLE_BUCKETS = 1 << 12


def file_unit(seed: int, repo_id: str, path: str) -> float:
    """A file's position in [0, 1), from (seed, repo_id, path) alone: the sample takes the
    files below a threshold, so inclusion never depends on where or when a file is read."""
    h = hashlib.blake2b(f"{seed}\0{repo_id}\0{path}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2.0**64


def _bucket(seed: int, repo_id: str, path: str) -> int:
    return min(int(file_unit(seed, repo_id, path) * SAMPLE_BUCKETS), SAMPLE_BUCKETS - 1)


def _file_blocks(docs: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, str, str, str]]:
    """(repo_id, path, language, block) of every file block (header included) of REPOS rows;
    a row without usable spans gives its whole text as one block (path "", language "(none)").
    Training on blocks rather than whole repositories keeps each training text small.
    `text` may be a `Utf8Text` (`stream.read_rows(lazy=...)`): the blocks are then decoded one
    at a time, never the whole document."""
    for doc in docs:
        text, repo_id = doc.get("text"), doc.get("repo_id")
        if not isinstance(text, (str, Utf8Text)) or not len(text) or not isinstance(repo_id, str):
            continue
        files = _sound_files(doc)
        if not files:
            yield repo_id, "", "(none)", str(text)
        files = [f for f in files if f["end"] > f["start"]]
        for f, block in zip(files, _spans(text, [(f["start"], f["end"]) for f in files])):
            yield repo_id, f["path"], f["language"] or "(none)", block


def _spans(text: str | Utf8Text, bounds: Sequence[tuple[int, int]]) -> Iterator[str]:
    """`text[start:end]` for each of `bounds` (in order, as sound spans are)."""
    if isinstance(text, str):
        return (text[a:b] for a, b in bounds)
    return text.spans(bounds)


@dataclass
class SamplePlan:
    """Which files the tokenizer trains on. Each language gets its share of `sample_bytes` in
    proportion to its bytes; within a language a file is in when its `file_unit` falls below
    the language's threshold (`grids[lang] / SAMPLE_BUCKETS`), the largest grid point at which
    the language stays within its share. So every file of a language is equally likely to be
    in, whatever its repository or position, and every language is sampled at about the same
    rate (up to one file's bytes); `report` says how close it came."""

    grids: dict[str, int]
    available: dict[str, int]
    sampled: dict[str, int] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        def share(k: str) -> float | None:
            return round(self.sampled.get(k, 0) / self.available[k], 6) if self.available[k] else None

        return {"bytes_available": sum(self.available.values()), "bytes_sampled": sum(self.sampled.values()),
                "by_language": {k: {"bytes_available": self.available[k], "bytes_sampled": self.sampled.get(k, 0),
                                    "share_sampled": share(k), "threshold": self.grids[k] / SAMPLE_BUCKETS}
                                for k in sorted(self.available)}}


def plan_sample(docs: Iterable[Mapping[str, Any]], params: TokenizerSettings) -> SamplePlan:
    """First pass over the training rows: bytes per language and threshold bucket."""
    params.validate()
    per_bucket: dict[str, np.ndarray] = {}
    for repo_id, path, lang, block in _file_blocks(docs):
        hist = per_bucket.setdefault(lang, np.zeros(SAMPLE_BUCKETS, np.int64))
        hist[_bucket(params.sample_seed, repo_id, path)] += len(block.encode("utf-8"))
    available = {lang: int(h.sum()) for lang, h in per_bucket.items()}
    total = sum(available.values())
    grids = {}
    for lang, hist in per_bucket.items():
        cap = params.sample_bytes * available[lang] // max(total, 1)  # the language's share of the cap
        below = np.concatenate([[0], np.cumsum(hist)])  # bytes of the files under each grid point
        grids[lang] = int(np.searchsorted(below, cap, side="right")) - 1
    return SamplePlan(grids=grids, available=available)


def sampled_texts(docs: Iterable[Mapping[str, Any]], plan: SamplePlan, params: TokenizerSettings) -> Iterator[str]:
    """Second pass: the file blocks in the sample, in input order (counted into `plan.sampled`)."""
    sampled: Counter = Counter()
    for repo_id, path, lang, block in _file_blocks(docs):
        if _bucket(params.sample_seed, repo_id, path) < plan.grids.get(lang, 0):
            sampled[lang] += len(block.encode("utf-8"))
            yield block
    plan.sampled = dict(sampled)


def save_tokenizer(tok: Tokenizer, out_dir: str | os.PathLike, params: TokenizerSettings,
                   info: Mapping[str, Any] | None = None) -> str:
    """Write the tokenizer directory atomically; returns its content hash. `info` (from
    `train_tokenizer`) goes to params.json without its timings, so identical inputs give an
    identical directory and hash; report the timings elsewhere."""
    from transformers import PreTrainedTokenizerFast

    specials = {name: s for name, s in SPECIAL_TOKENS.items() if tok.token_to_id(s) is not None}
    extra = [s for name, s in specials.items() if name not in ("bos", "eos", "pad")]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=specials["bos"],
        eos_token=specials["eos"],
        pad_token=specials["pad"],
        additional_special_tokens=extra,
        model_max_length=params.model_max_length,
        clean_up_tokenization_spaces=False,
    )
    with atomic_path(out_dir, is_dir=True) as tmp:
        fast.save_pretrained(str(tmp))
        write_json(tmp / "params.json", {
            "params": params.to_dict(),
            "special_ids": {name: tok.token_to_id(s) for name, s in specials.items()},
            "special_tokens": specials,
            "training": {k: v for k, v in (info or {}).items() if k != "seconds"},
        })
        digest = _write_manifest(tmp)
    return digest


def _file_hashes(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.iterdir()) if p.is_file() and p.name != MANIFEST}


def _content_hash(files: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\0{files[name]}\n".encode())
    return h.hexdigest()


def _write_manifest(d: Path) -> str:
    files = _file_hashes(d)
    digest = _content_hash(files)
    write_json(d / MANIFEST, {"files": files, "content_hash": digest})
    return digest


def tokenizer_hash(tokenizer_dir: str | os.PathLike) -> str:
    """The directory's content hash: from manifest.json when present (checked against the
    files), else computed the same way (e.g. for a released DeepSeek-Coder tokenizer)."""
    d = Path(tokenizer_dir)
    files = _file_hashes(d)
    digest = _content_hash(files)
    manifest = d / MANIFEST
    if manifest.is_file():
        recorded = json.loads(manifest.read_text())
        if recorded.get("files") != files:
            raise ValueError(f"{d}: files differ from {MANIFEST} (edited after it was written?)")
    return digest


def load_tokenizer(tokenizer_dir: str | os.PathLike) -> Tokenizer:
    """The raw `tokenizers` object of a saved directory, set to encode special-token
    spellings in text as ordinary bytes (see the module docstring)."""
    tok = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
    tok.encode_special_tokens = True
    return tok


def special_token_ids(tok: Tokenizer) -> dict[str, int]:
    """name -> id of the special tokens this tokenizer has (looked up by spelling, so a
    released DeepSeek-Coder tokenizer works too); raises ValueError if a required one is missing."""
    ids = {name: tok.token_to_id(s) for name, s in SPECIAL_TOKENS.items()}
    missing = [name for name in REQUIRED_SPECIALS if ids[name] is None]
    if missing:
        raise ValueError(f"tokenizer lacks special tokens {missing} ({[SPECIAL_TOKENS[m] for m in missing]})")
    return {name: i for name, i in ids.items() if i is not None}


#: Characters of file contents encoded per `bytes_per_token` batch. A `tokenizers` Encoding
#: costs about 90 bytes per token (ids, type ids, the token strings, offsets, masks): measured
#: 104 MB of Encodings for a 4.3M-character batch, 39 MB for 1.0M, and the same 2.0 s for the
#: held-out repositories of the 14x corpus with either.
BPT_BATCH_CHARS = 1_000_000


def bytes_per_token(tok: Tokenizer, docs: Iterable[Mapping[str, Any]],
                    batch_chars: int = BPT_BATCH_CHARS) -> dict[str, dict[str, float]]:
    """UTF-8 bytes per token of each language's file contents (header lines excluded) in
    REPOS rows (pass held-out repositories); {language: {files, bytes, tokens,
    bytes_per_token}}, plus "all". Rows without usable spans are skipped.

    Files are encoded in batches of at most `batch_chars` characters plus one file (each file
    is encoded on its own, so the batching never changes a count). The size is checked after
    each file, not after each document: a repository document can hold up to
    `repo_docs.max_doc_bytes` (8 MiB when this was measured; 1 MiB by default now), and checking
    per document let a batch reach 4M + 8M characters and ~3M tokens of Encodings (the stage's peak: 508 MB at 14x the
    default corpus against 300 MB on it)."""
    stats: dict[str, list[int]] = {}
    batch: list[tuple[str, str]] = []
    size = 0

    def flush() -> None:
        nonlocal batch, size
        encs = tok.encode_batch_fast([t for _, t in batch], add_special_tokens=False)
        for (lang, text), enc in zip(batch, encs):
            for key in (lang, "all"):
                s = stats.setdefault(key, [0, 0, 0])
                s[0] += 1
                s[1] += len(text.encode("utf-8"))
                s[2] += len(enc)
        batch, size = [], 0

    for lang, content in _file_contents(docs):
        batch.append((lang, content))
        size += len(content)
        if size >= batch_chars:
            flush()
    if batch:
        flush()
    return {lang: {"files": f, "bytes": b, "tokens": t, "bytes_per_token": round(b / max(t, 1), 4)}
            for lang, (f, b, t) in sorted(stats.items())}


def _file_contents(docs: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, str]]:
    """(language, contents without the header) of every non-empty file of REPOS rows with
    usable spans, in order."""
    for doc in docs:
        files = _sound_files(doc)
        bounds = [(f["start"] + f["header_chars"], f["end"]) for f in files]
        for f, content in zip(files, _spans(doc.get("text"), bounds)):
            if content:
                yield f["language"], content


def _sound_files(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    from dscoder.data.repo_blocks import spans_problem

    return list(doc["files"]) if spans_problem(dict(doc)) is None else []


#: Saved tokenizers loaded in this process, for the packer's encoding workers and the token
#: index (dscoder.tokens.pack, dscoder.tokens.index).
_CACHE: dict[str, tuple[Any, dict[str, int]]] = {}


def cached_tokenizer(tokenizer_dir: str):
    """(tokenizer, special ids) of a saved tokenizer, loaded once per process."""
    if tokenizer_dir not in _CACHE:
        tok = load_tokenizer(tokenizer_dir)
        _CACHE[tokenizer_dir] = (tok, special_token_ids(tok))
    return _CACHE[tokenizer_dir]


def token_nbytes(tokenizer_dir: str) -> np.ndarray:
    """Bytes each id stands for: in a byte-level BPE every symbol of a token is one byte."""
    key = f"nbytes:{tokenizer_dir}"
    if key not in _CACHE:
        tok, _ = cached_tokenizer(tokenizer_dir)
        table = np.zeros(tok.get_vocab_size(with_added_tokens=True), np.int64)
        for token, i in tok.get_vocab(with_added_tokens=False).items():
            table[i] = len(token)
        _CACHE[key] = (table, {})
    return _CACHE[key][0]
