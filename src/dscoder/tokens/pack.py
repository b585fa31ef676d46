"""Pack repository documents into training tokens (Sec. 3.1): FIM, encode, join, cut.

Output directory (the trainer's contract, see dscoder.train.data):

  train.bin, val.bin   the flat token stream of each split, raw little-endian `dtype`
                       (uint16 when the vocabulary fits in 65536 ids, else uint32), so
                       `np.memmap(path, dtype=meta["dtype"], mode="r")` reads it. Block i is
                       tokens[i*seq_len:(i+1)*seq_len]. The stream is cut to a whole number
                       of blocks: the last, partial block ("tail", < seq_len tokens) is
                       dropped from the file and counted in meta (`tail_tokens_dropped`).
  meta.json            dtype, vocab_size, seq_len, train_tokens / val_tokens (tokens in the
                       files), per split n_tokens, n_blocks, n_docs, n_repos; special ids;
                       FIM params and, per split, FIM figures (below); skipped documents by
                       reason; tokenizer_hash.
  {split}.docs.parquet one row per document, in stream order: doc, repo_id, repo_name, part
                       (its number among its repository's documents), fim_mode (the modes
                       of its transformed units joined by "+", or "none"), fim_units (how
                       many), n_chars, token_start, token_end (its BOS..EOS span).
  {split}.segments.parquet
                       one row per run of tokens that encodes one character range of one
                       file inside one FIM piece: doc, file (index into the REPOS row's
                       `files`, -1 for text outside any file block), path, language, role
                       (whole, prefix, middle, suffix, or MSP context/span), span (MSP number,
                       else -1), char_start, char_end (in the original document text),
                       token_start, token_end (in the split's stream), in stream order.
                       Tokens not covered are BOS, EOS and FIM sentinels.
                       `dscoder.tokens.index.TokenIndex.locate` does the lookup.
  manifest.json        sha256 of every other file, written last.

Index positions refer to the stream before the tail is cut, so rows past `n_tokens` describe
dropped tokens.

FIM (`fim.unit`, see dscoder.tokens.fim): `document` and `file` lay a document out before encoding;
`window` rearranges packed windows on their way to the files (dscoder.tokens.fim_windows). The FIM
figures per split: `units` and their modes, `units_transformed_share`, `examples` (whole in
the kept tokens) and `examples_fit_share` (those inside one window, from the packer's own
positions), and `complete_window_share`: the share of windows of the written token file that
hold a complete example, found by `fim.complete_examples` scanning the file itself.

Documents keep their input order (the trainer shuffles blocks, dscoder.train.data). Each
document becomes [BOS] + layout + [EOS] (BOS if `add_bos`): its pieces are cut further at
file boundaries and each resulting segment is encoded on its own (batched
`encode_batch_fast`; a long one in pieces cut where its ids cannot change, dscoder.tokens.encode),
which makes every span exact and lets the index be built without per-token work. Encoding
file by file changes tokenization only where a pre-token would straddle two files (file
blocks normally end with a newline, which the byte-level pre-tokeniser never merges with
what follows).

Train/validation split by repository (dscoder.tokens.split): one repository never lands in
both, even when repo_docs split it into several documents (consecutive rows with one repo_id;
their part numbers 0, 1, ... enter the FIM draws).

Memory: the input is read in batches of about `batch_bytes` (encoded in batches of at most
ENCODE_BATCH_CHARS characters, a bounded number in flight; `pack_repos` keeps them as Arrow
data, and each batch is dropped once submitted), and the token files and index are
written as batches come; the writer holds counts, one window of pending tokens (window unit)
and the repository ids (for the split and the leak check), never a split or the corpus.
A worker hands the tokenizer at most `encode.ENCODE_GROUP_CHARS` characters per call, a long segment
in pieces (`encode.encode_ids`), so the tokenizer's working memory no longer grows with the longest
segment (one can be ~1 MB): on the heaviest batch at 14x the default corpus (2.06M
characters, a 707K-character segment) encoding peaked at +141 MB in one call of up to
2,000,000 characters, +73 MB in calls of 262,144 (whole `encode_table`: 218 -> 177 MB).

Determinism: FIM choices depend on (fim.seed, unit key), encoding is per segment, windows are
cut from the stream in order, and batch results are written in input order, so outputs are
byte-identical for any number of worker processes and any batch size.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dscoder.config import Settings, check
from dscoder.data.stream import BATCH_BYTES, REPO_COLUMNS, PartWriter, iter_batches, repo_ids
from dscoder.pool import WorkerPool
from dscoder.io import atomic_path, write_json
from dscoder.tokens import fim as fimlib
from dscoder.tokens.encode import encode_ids
from dscoder.tokens.fim_windows import WindowFim
from dscoder.tokens.split import SPLIT_SEED, VAL_FRACTION, val_repo_ids
from dscoder.tokens.tokenizer import cached_tokenizer, token_nbytes, tokenizer_hash

SPLITS = ("train", "val")
FORMAT = "dscoder.tokens/1"

DOCS_SCHEMA = pa.schema([
    pa.field("doc", pa.int64(), nullable=False),
    pa.field("repo_id", pa.string(), nullable=False),
    pa.field("repo_name", pa.string(), nullable=True),
    pa.field("part", pa.int32(), nullable=False),
    pa.field("fim_mode", pa.string(), nullable=False),
    pa.field("fim_units", pa.int32(), nullable=False),
    pa.field("n_chars", pa.int64(), nullable=False),
    pa.field("token_start", pa.int64(), nullable=False),
    pa.field("token_end", pa.int64(), nullable=False),
])
SEGMENTS_SCHEMA = pa.schema([
    pa.field("doc", pa.int64(), nullable=False),
    pa.field("file", pa.int32(), nullable=False),
    pa.field("path", pa.string(), nullable=True),
    pa.field("language", pa.string(), nullable=True),
    pa.field("role", pa.string(), nullable=False),
    pa.field("span", pa.int16(), nullable=False),
    pa.field("char_start", pa.int64(), nullable=False),
    pa.field("char_end", pa.int64(), nullable=False),
    pa.field("token_start", pa.int64(), nullable=False),
    pa.field("token_end", pa.int64(), nullable=False),
])


@dataclass(frozen=True, kw_only=True)
class PackSettings(Settings):
    section: ClassVar[str] = "pack"

    seq_len: int = 4096
    """Tokens per training block (Sec. 3: 4K window in pretraining; 16K for long context)."""
    val_fraction: float = VAL_FRACTION
    """Expected share of repositories held out for validation (decided per repo_id hash)."""
    split_seed: int = SPLIT_SEED
    """Salt of the repository split hash; change it to draw another split."""
    add_bos: bool = True
    """Begin every document with BOS (the released tokenizer prepends it to every prompt)."""
    fim: fimlib.PackFimSettings = field(default_factory=fimlib.PackFimSettings)
    """Fill-in-the-Middle settings (Sec. 3.1)."""

    def validate(self) -> None:
        check(self.seq_len >= 1, "pack.seq_len", f"must be >= 1, got {self.seq_len}")
        check(0.0 <= self.val_fraction <= 1.0, "pack.val_fraction", f"must be in [0, 1], got {self.val_fraction}")
        self.fim.validate()


# ---------------------------------------------------------------------------- encode

@dataclass
class SplitChunk:
    """One batch's output for one split; token and doc positions relative to the chunk."""

    ids: np.ndarray
    docs: dict[str, list]
    segments: dict[str, list]
    units: Counter = field(default_factory=Counter)
    """FIM units (documents or files) by mode."""
    examples: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    """(first, end) token positions of each FIM example: <fim_begin> .. the middle's EOS."""
    token_chars: np.ndarray | None = None
    """Window unit only: for each token, the document character where it ends when that is a
    character boundary, -1 inside a character, -2 for inserted tokens (BOS, EOS, sentinels)."""


@dataclass
class ShardResult:
    chunks: dict[str, SplitChunk]
    skipped: Counter
    warnings: Counter
    chars: dict[str, int]
    audit: list[dict[str, Any]]
    """AUDIT-schema rows (dscoder.schemas.AUDIT) for skipped documents and lost file spans."""


def _check_sentinels(sid: Mapping[str, int], params: PackSettings) -> None:
    if params.fim.mode == "msp" and params.fim.rate > 0:
        missing = [f"msp_{k}" for k in range(params.fim.msp_spans) if f"msp_{k}" not in sid]
        check(not missing, "fim.msp_spans", f"the tokenizer lacks MSP sentinels {missing}")


def _file_segments(n_chars: int, files: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[int]]:
    """Boundaries b[0]=0 < ... < b[-1]=n_chars and, for each interval [b[j], b[j+1]), the
    index of the file block that holds it (-1: outside every block)."""
    bounds, owner = [0], []
    for i, f in enumerate(files):
        s, e = f["start"], f["end"]
        if s == e:
            continue
        if s > bounds[-1]:
            owner.append(-1)
            bounds.append(s)
        owner.append(i)
        bounds.append(e)
    if bounds[-1] < n_chars:
        owner.append(-1)
        bounds.append(n_chars)
    return bounds, owner


def doc_key(repo_id: str, part: int) -> str:
    """The FIM key of a document: its repo_id, and its part number when a repository was split
    into several documents (part 0 keeps the plain repo_id, so unsplit corpora keep their draws)."""
    return repo_id if part == 0 else f"{repo_id}\0part\0{part}"


def _doc_mode(modes: Sequence[str]) -> str:
    """The docs index's `fim_mode`: the modes of the document's transformed units."""
    used = sorted({m for m in modes if m != "none"})
    return "+".join(used) if used else "none"


def _layout(text: str, repo_id: str, part: int, files: Sequence[Mapping[str, Any]],
            p: fimlib.PackFimSettings) -> tuple[list[str], list]:
    """(mode of each FIM unit, layout items) of one document, for the configured unit."""
    key = doc_key(repo_id, part)
    if p.unit == "document":
        mode, items = fimlib.transform(len(text), key, p)
        return [mode], items
    if p.unit == "file":
        return fimlib.transform_files(len(text), files, key, p)
    return [], [fimlib.Piece("whole", 0, len(text))]  # window: FIM comes after packing


def _token_chars(ids: np.ndarray, piece: str, char_start: int, nbytes: np.ndarray) -> np.ndarray:
    """For each token of an encoded piece, the character (document coordinates) where it ends,
    or -1 when it ends inside a multi-byte character."""
    raw = np.frombuffer(piece.encode("utf-8"), np.uint8)
    # int32 whenever the document's offsets fit (4 bytes a token instead of 8, in the workers,
    # the results in flight and the windowed FIM buffers); concatenation widens if one does not
    dtype = np.int32 if char_start + len(piece) < 2**31 else np.int64
    if not len(ids):
        return np.zeros(0, dtype)
    ends = np.cumsum(nbytes[np.asarray(ids, np.int64)])
    lead = (raw & 0xC0) != 0x80  # first byte of a character
    chars_before = np.concatenate([[0], np.cumsum(lead, dtype=np.int64)])
    on_boundary = (ends == raw.size) | lead[np.minimum(ends, raw.size - 1)]
    return np.where(on_boundary, char_start + chars_before[ends], -1).astype(dtype, copy=False)


def encode_shard(docs: Sequence[Mapping[str, Any]], splits: Sequence[str], tokenizer_dir: str | os.PathLike,
                 params: PackSettings) -> ShardResult:
    """Encode REPOS rows (`repo_id`, `repo_name`, `text`, `files`, optional `part`) assigned
    to `splits` ("train"/"val", one per row). Pure: the same rows give the same result in any
    process and in any batch."""
    from dscoder.data.repo_blocks import spans_problem

    params.validate()
    tok, sid = cached_tokenizer(str(tokenizer_dir))
    _check_sentinels(sid, params)
    window = params.fim.unit == "window"
    nbytes = token_nbytes(str(tokenizer_dir)) if window else None
    bos, eos = np.array([sid["bos"]], np.uint32), np.array([sid["eos"]], np.uint32)
    sentinel = {name: np.array([i], np.uint32) for name, i in sid.items()}
    skipped, warnings, audit = Counter(), Counter(), []
    chars = dict.fromkeys(SPLITS, 0)
    texts: list[str] = []
    # (split, doc, usable files, unit modes, layout); layout entries are sentinel names or
    # segments (index into texts, file, role, span, char_start, char_end).
    planned = []
    for doc, split in zip(docs, splits):
        text, repo_id = doc.get("text"), doc.get("repo_id")
        reason = ("no_repo_id" if not isinstance(repo_id, str) or not repo_id
                  else "empty_text" if not isinstance(text, str) or not text else None)
        if reason:
            skipped[reason] += 1
            audit.append(_audit_row(doc, reason, None))
            continue
        files = doc.get("files") or []
        problem = spans_problem({"text": text, "files": files})
        if problem:  # keep the text, lose only the file attribution
            warnings[f"files_unattributed:{problem}"] += 1
            audit.append(_audit_row(doc, "files_unattributed", problem))
            files = []
        bounds, owner = _file_segments(len(text), files)
        modes, items = _layout(text, repo_id, int(doc.get("part") or 0), files, params.fim)
        layout = []
        for item in items:
            if isinstance(item, str):
                layout.append(item)
                continue
            j = bisect.bisect_right(bounds, item.start) - 1
            pos = item.start
            while pos < item.end:
                end = min(item.end, bounds[j + 1])
                layout.append((len(texts), owner[j], item.role, item.span, pos, end))
                texts.append(text[pos:end])
                pos, j = end, j + 1
        planned.append((split, doc, files, modes, layout))
        chars[split] += len(text)

    encs = encode_ids(tok, texts)
    out = {s: _ChunkBuilder(window) for s in SPLITS}
    for split, doc, files, modes, layout in planned:
        b = out[split]
        n_doc, start = len(b.docs["doc"]), b.pos
        if params.add_bos:
            b.special(bos)
        for entry in layout:
            if isinstance(entry, str):
                if entry == "fim_begin":
                    b.open_example()
                b.special(sentinel[entry])
                if entry == "eos":
                    b.close_example()
                continue
            k, fi, role, span, cs, ce = entry
            ids = encs[k]
            f = files[fi] if fi >= 0 else None
            b.text(ids, None if nbytes is None else _token_chars(ids, texts[k], cs, nbytes),
                   (n_doc, fi, f and f["path"], f and f.get("language"), role, span, cs, ce))
        b.special(eos)
        b.close_example()
        b.units.update(modes)
        for key, val in (("doc", n_doc), ("repo_id", doc["repo_id"]), ("repo_name", doc.get("repo_name")),
                         ("part", int(doc.get("part") or 0)), ("fim_mode", _doc_mode(modes)),
                         ("fim_units", sum(m != "none" for m in modes)), ("n_chars", len(doc["text"])),
                         ("token_start", start), ("token_end", b.pos)):
            b.docs[key].append(val)
    return ShardResult({s: b.chunk() for s, b in out.items()}, skipped, warnings, chars, audit)




def _audit_row(doc: Mapping[str, Any], reason: str, detail: str | None) -> dict[str, Any]:
    text = doc.get("text")
    repo_id, name = doc.get("repo_id"), doc.get("repo_name")
    return {"stage": "pack", "repo_id": repo_id if isinstance(repo_id, str) else None,
            "repo_name": name if isinstance(name, str) else None, "path": None, "language": None,
            "reason": reason, "detail": detail,
            "size": len(text.encode("utf-8", errors="replace")) if isinstance(text, str) else None}


class _ChunkBuilder:
    """Accumulates one split's tokens, index rows and FIM example spans for one batch."""

    def __init__(self, window: bool):
        self.arrays: list[np.ndarray] = []
        self.token_chars: list[np.ndarray] | None = [] if window else None
        self.docs = {k: [] for k in DOCS_SCHEMA.names}
        self.segments = {k: [] for k in SEGMENTS_SCHEMA.names}
        self.units: Counter = Counter()
        self.examples: list[tuple[int, int]] = []
        self.pos = 0
        self._open: int | None = None

    def special(self, token: np.ndarray) -> None:
        self.arrays.append(token)
        if self.token_chars is not None:
            self.token_chars.append(np.array([-2], np.int32))
        self.pos += 1

    def text(self, ids: np.ndarray, token_chars: np.ndarray | None, row: tuple) -> None:
        self.arrays.append(ids)
        if self.token_chars is not None:
            self.token_chars.append(token_chars)
        for key, val in zip(SEGMENTS_SCHEMA.names, (*row, self.pos, self.pos + len(ids))):
            self.segments[key].append(val)
        self.pos += len(ids)

    def open_example(self) -> None:
        self._open = self.pos

    def close_example(self) -> None:
        """The token just added ended a middle (EOS): record the example, if one is open."""
        if self._open is not None:
            self.examples.append((self._open, self.pos))
            self._open = None

    def chunk(self) -> SplitChunk:
        ids = np.concatenate(self.arrays) if self.arrays else np.zeros(0, np.uint32)
        tc = None if self.token_chars is None else (
            np.concatenate(self.token_chars) if self.token_chars else np.zeros(0, np.int32))
        return SplitChunk(ids, self.docs, self.segments, self.units,
                          np.asarray(self.examples, np.int64).reshape(-1, 2), tc)


# ---------------------------------------------------------------------------- write

def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab_size <= 65536), else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


class _SplitWriter:
    """One split's token file and index, written as chunks come (nothing held but counts)."""

    def __init__(self, d: Path, split: str, dtype: np.dtype, seq_len: int):
        self.d, self.split, self.dtype, self.seq_len = d, split, dtype, seq_len
        self.fh = open(d / f"{split}.bin", "wb")
        self.index = {name: PartWriter(d / f"{split}.{name}.parquet", schema)
                      for name, schema in (("docs", DOCS_SCHEMA), ("segments", SEGMENTS_SCHEMA))}
        self.n_tokens = self.n_docs = 0
        self.repos: set[str] = set()
        self.units: Counter = Counter()
        self.examples = self.examples_fit = 0
        self.recent: list[tuple[int, bool]] = []  # (end, fits) of examples near the stream's end

    def add(self, chunk: SplitChunk) -> None:
        # An explicit "<" byte order keeps the file little-endian on any host.
        self.fh.write(np.ascontiguousarray(chunk.ids, self.dtype.newbyteorder("<")))  # its buffer: no bytes copy
        shift = {"doc": self.n_docs, "token_start": self.n_tokens, "token_end": self.n_tokens}
        for name, schema, cols in (("docs", DOCS_SCHEMA, chunk.docs), ("segments", SEGMENTS_SCHEMA, chunk.segments)):
            arrays = [pa.array(cols[f.name], type=f.type) if f.type == pa.string() else
                      pa.array((np.asarray(cols[f.name], np.int64) + shift.get(f.name, 0)).astype(
                          f.type.to_pandas_dtype()), type=f.type) for f in schema]
            self.index[name].write(pa.Table.from_arrays(arrays, schema=schema))
        self.repos.update(chunk.docs["repo_id"])
        ex = chunk.examples + self.n_tokens
        fit = ex[:, 0] // self.seq_len == (ex[:, 1] - 1) // self.seq_len
        self.examples += len(ex)
        self.examples_fit += int(fit.sum())
        # the examples that may still fall into the dropped tail, to uncount at the end
        end = self.n_tokens + int(chunk.ids.size)
        self.recent = [e for e in self.recent if e[0] > end - self.seq_len]
        self.recent += [(int(e), bool(f)) for e, f in zip(ex[:, 1], fit) if e > end - self.seq_len]
        self.units.update(chunk.units)
        self.n_tokens += int(chunk.ids.size)
        self.n_docs += len(chunk.docs["doc"])

    def close(self) -> None:
        self.fh.close()
        for w in self.index.values():
            w.close()

    def finish(self, sid: Mapping[str, int]) -> dict[str, Any]:
        n_blocks = self.n_tokens // self.seq_len
        kept = n_blocks * self.seq_len
        self.fh.truncate(kept * self.dtype.itemsize)  # drop the partial last block
        self.close()
        for end, fits in self.recent:  # an example in the dropped tail is never seen
            if end > kept:
                self.examples -= 1
                self.examples_fit -= fits
        complete = _complete_windows(self.d / f"{self.split}.bin", self.dtype.newbyteorder("<"), kept, self.seq_len, sid)
        n_units = sum(self.units.values())
        fim = {"units": n_units, **{m: self.units[m] for m in ("none", "psm", "spm", "msp")},
               "units_transformed_share": _share(n_units - self.units["none"], n_units),
               "examples": self.examples, "examples_fit_share": _share(self.examples_fit, self.examples),
               "windows": n_blocks, "windows_with_complete_example": complete,
               "complete_window_share": _share(complete, n_blocks)}
        return {"file": f"{self.split}.bin", "n_tokens": kept, "n_blocks": n_blocks,
                "tail_tokens_dropped": self.n_tokens - kept, "n_docs": self.n_docs, "n_repos": len(self.repos),
                "docs_index": f"{self.split}.docs.parquet", "segments_index": f"{self.split}.segments.parquet",
                "fim": fim}


def _complete_windows(path: Path, dtype: np.dtype, n_tokens: int, seq_len: int, sid: Mapping[str, int]) -> int:
    """How many windows of the token file hold a complete FIM example, read back from disk in
    blocks of whole windows (a memory map would leave the whole file resident in this process)."""
    step = max(1, (1 << 22) // seq_len) * seq_len
    complete = 0
    with open(path, "rb") as f:
        for lo in range(0, n_tokens, step):
            block = np.fromfile(f, dtype=dtype, count=min(step, n_tokens - lo))
            complete += int(fimlib.complete_examples(block, seq_len, sid).sum())
    return complete


def _share(k: int, n: int) -> float | None:
    return round(k / n, 6) if n else None


def write_tokens(results: Iterable[ShardResult], out_dir: str | os.PathLike, *, tokenizer_dir: str | os.PathLike,
                 params: PackSettings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write shard results (in input order) as the token directory, atomically; returns meta
    (also written as meta.json, then manifest.json) and the AUDIT rows of all shards. With
    `fim.unit: window` the stream passes through `WindowFim` on its way to the files."""
    tok, sid = cached_tokenizer(str(tokenizer_dir))
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    dtype = token_dtype(vocab_size)
    skipped, warnings, chars, audit = Counter(), Counter(), dict.fromkeys(SPLITS, 0), []
    window = params.fim.unit == "window"
    with atomic_path(out_dir, is_dir=True) as tmp:
        writers = {s: _SplitWriter(tmp, s, dtype, params.seq_len) for s in SPLITS}
        fims = {s: WindowFim(s, params.seq_len, params.fim, sid, SplitChunk) for s in SPLITS} if window else {}
        try:
            for r in results:
                for s in SPLITS:
                    if window:  # the chunk goes to feed alone, which frees it once it has taken its arrays
                        for out in fims[s].feed(r.chunks.pop(s)):
                            writers[s].add(out)
                            del out
                    else:
                        writers[s].add(r.chunks.pop(s))  # not kept once written
                    chars[s] += r.chars[s]
                skipped.update(r.skipped)
                warnings.update(r.warnings)
                audit.extend(r.audit)
            for s in fims:
                writers[s].add(fims[s].finish())
            splits = {s: {**w.finish(sid), "chars": chars[s]} for s, w in writers.items()}
        finally:
            for w in writers.values():
                w.close()
        overlap = writers["train"].repos & writers["val"].repos
        if overlap:  # a caller passed inconsistent splits; never ship a leaky split
            raise ValueError(f"{len(overlap)} repositories in both splits, e.g. {sorted(overlap)[:3]}")
        meta = {
            "format": FORMAT,
            "dtype": dtype.name,
            "byte_order": "little",
            "vocab_size": vocab_size,
            "seq_len": params.seq_len,
            "train_tokens": splits["train"]["n_tokens"],
            "val_tokens": splits["val"]["n_tokens"],
            "splits": splits,
            "add_bos": params.add_bos,
            "special_ids": sid,
            "tokenizer_hash": tokenizer_hash(tokenizer_dir),
            "fim": {"params": params.fim.to_dict(), "unit": params.fim.unit,
                    "stats": {s: splits[s].pop("fim") for s in SPLITS}},
            "skipped": dict(sorted(skipped.items())),
            "warnings": dict(sorted(warnings.items())),
            "params": params.to_dict(),
        }
        write_json(tmp / "meta.json", meta)
        files = {p.name: _sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        write_json(tmp / "manifest.json", {"files": files})
    return meta, audit


def _sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------- drive

class _Batcher:
    """The batching rule both inputs share: documents in batches of at most `batch_bytes`
    characters of text (a longer document is a batch of its own), each with its split and its
    part number: the row's `part` (repo_docs numbers the documents of a split repository),
    else its position among consecutive rows of its repository (0, 1, ...)."""

    def __init__(self, val: frozenset[str], batch_bytes: int):
        self.val, self.batch_bytes = val, batch_bytes
        self.last, self.part = None, 0
        self.rows: list = []  # the open batch's documents, where the caller keeps them here
        self.splits: list[str] = []
        self.parts: list[int] = []
        self.size = 0

    def full(self, n: int) -> bool:
        """Whether the open batch must be closed before a document of `n` characters."""
        return bool(self.splits) and self.size + n > self.batch_bytes

    def add(self, repo_id: Any, part: Any, n: int) -> int:
        """Count a document into the open batch; returns its part number."""
        self.part = self.part + 1 if repo_id == self.last and repo_id is not None else 0
        self.last = repo_id
        self.parts.append(self.part if part is None else int(part))
        self.splits.append("val" if repo_id in self.val else "train")
        self.size += n
        return self.parts[-1]

    def take(self) -> tuple[list, list[str], list[int]]:
        """(rows, splits, parts) of the open batch, which is then empty: `yield rule.take()`
        leaves no reference to the batch in the generator while the consumer holds it."""
        out = self.rows, self.splits, self.parts
        self.rows, self.splits, self.parts, self.size = [], [], [], 0
        return out


def _batches(docs: Iterable[Mapping[str, Any]], val: frozenset[str], batch_bytes: int) -> Iterator[tuple[list, list]]:
    """Documents (dicts) in batches of the `_Batcher` rule, with their splits; each row gets its
    part number. A yielded batch is not referenced here any more, so the consumer's `del`
    frees it (at 14x the default corpus one 8 MiB document is a 33 MB Python str)."""
    rule = _Batcher(val, batch_bytes)
    for d in docs:
        text = d.get("text")
        n = len(text) if isinstance(text, str) else 0
        if rule.full(n):
            yield rule.take()[:2]
        rule.rows.append({**d, "part": rule.add(d.get("repo_id"), d.get("part"), n)})
        del d, text
    if rule.rows:
        yield rule.take()[:2]


def _table_batches(path: str | os.PathLike, val: frozenset[str], batch_bytes: int,
                   read_bytes: int) -> Iterator[tuple[pa.Buffer, list, list]]:
    """The rows of a REPOS file in batches of the `_Batcher` rule, as (Arrow IPC stream of the
    batch's rows, splits, parts), read in batches of about `read_bytes`.

    The driver never turns a document into Python objects: it reads the repo_id, part and
    character count columns, slices the Arrow table and serializes the slice (IPC writes only
    the slice's bytes, where pickling a sliced table would write its whole buffers); the worker
    (`encode_table`) makes the rows. A document's text costs its UTF-8 bytes here instead of a
    Python str of 1-4 bytes per character, and neither the batch nor the document that closes
    it is ever a str in this process (at 14x the default corpus most of the 8 MiB documents hold
    a character beyond the BMP: 33 MB each as str). Figures: see `pack_repos`."""
    have = set(pq.read_schema(path).names)
    cols = [c for c in REPO_COLUMNS if c in have]
    rule = _Batcher(val, batch_bytes)
    slices: list[pa.Table] = []  # the open batch's rows, from one or more read batches

    def close() -> tuple[pa.Buffer, list, list]:
        table = pa.concat_tables(slices) if len(slices) > 1 else slices[0]
        slices.clear()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        return (sink.getvalue(), *rule.take()[1:])

    for b in iter_batches(path, cols, batch_bytes=read_bytes):
        t = b.table
        repo = t.column("repo_id").to_pylist() if "repo_id" in have else [None] * t.num_rows
        part = t.column("part").to_pylist() if "part" in have else [None] * t.num_rows
        text = t.column("text") if "text" in have else None
        if text is None or not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
            n_chars = np.zeros(t.num_rows, np.int64)  # no str text: every row is skipped, as in the dict path
        else:
            n_chars = pc.fill_null(pc.utf8_length(text), 0).to_numpy()
        start = 0  # first row of t in the open batch
        for i in range(t.num_rows):
            n = int(n_chars[i])
            if rule.full(n):
                if i > start:
                    slices.append(t.slice(start, i - start))
                start = i
                yield close()
            rule.add(repo[i], part[i], n)
        if t.num_rows > start:
            slices.append(t.slice(start, t.num_rows - start))
        del b, t, text
    if slices:
        yield close()


def encode_table(ipc: pa.Buffer | bytes, splits: Sequence[str], parts: Sequence[int],
                 tokenizer_dir: str | os.PathLike, params: PackSettings) -> ShardResult:
    """`encode_shard` over a batch from `_table_batches`: its rows (as `read_repos` makes them),
    each with its part number."""
    table = pa.ipc.open_stream(pa.py_buffer(ipc) if isinstance(ipc, bytes) else ipc).read_all()
    docs = [{**d, "part": p} for d, p in zip(table.to_pylist(), parts)]
    del table, ipc
    return encode_shard(docs, splits, tokenizer_dir, params)


_THREADS = 2


#: Largest encoding batch (characters): smaller than the read batch when that is large, so
#: that every worker gets work even on a small corpus and a worker's memory stays modest.
ENCODE_BATCH_CHARS = 4_000_000


def _encoded(fn: Callable[..., ShardResult], batches: Iterable[tuple], tokenizer_dir, params,
             workers) -> Iterator[ShardResult]:
    """`fn(*batch, tokenizer_dir, params)` for each batch, in order, with at most one batch per
    worker (two threads when `workers` is 1) in flight. A batch is dropped here once submitted
    (`batches` must not keep it either: see `_Batcher.take`)."""
    if workers <= 1:
        # Two batches in flight on threads: encode_batch_fast releases the GIL, so one batch's
        # Rust encoding overlaps the other's Python assembly and the writer.
        with ThreadPoolExecutor(max_workers=_THREADS) as ex:
            pending: deque = deque()
            for batch in batches:
                pending.append(ex.submit(fn, *batch, tokenizer_dir, params))
                del batch
                if len(pending) >= _THREADS:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        return
    # Fresh interpreters (dscoder.pool): a forked child would inherit the parent's tokenizers
    # thread pool state, and multiprocessing's spawn would import the caller's __main__ (for
    # the pack stage, Prefect). Each worker's tokenizers thread pool gets its share of the cores.
    threads = max(1, (os.cpu_count() or 1) // workers)
    with WorkerPool(workers, env={"RAYON_NUM_THREADS": str(threads)}, name="pack") as pool:
        pending = deque()
        for batch in batches:
            # submit pickles the batch, so only its bytes wait here; one batch per worker in flight
            pending.append(pool.submit(fn, *batch, str(tokenizer_dir), params))
            del batch
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _reporting(results: Iterable[ShardResult], on_progress: Callable[[int, int | None], None] | None,
               total: int | None) -> Iterator[ShardResult]:
    """`results`, calling `on_progress(documents done, total)` once each has been written."""
    done = 0
    for r in results:
        n = sum(len(c.docs["doc"]) for c in r.chunks.values()) + sum(r.skipped.values())
        yield r
        done += n
        if on_progress is not None:
            on_progress(done, total)


def pack_documents(docs: Iterable[Mapping[str, Any]], out_dir: str | os.PathLike, *,
                   tokenizer_dir: str | os.PathLike, params: PackSettings, val_repos: frozenset[str],
                   workers: int = 1, batch_bytes: int = BATCH_BYTES,
                   on_progress: Callable[[int, int | None], None] | None = None,
                   total_docs: int | None = None) -> dict[str, Any]:
    """Pack REPOS rows (in input order) into `out_dir`; `val_repos` from `split.val_repo_ids`.
    `workers` processes encode batches of about `batch_bytes` characters of text; neither
    changes the output. Returns a report: meta, `timing` (seconds, tokens/s) and `audit`
    (AUDIT rows of what was skipped)."""
    _check_args(tokenizer_dir, params, workers, batch_bytes)
    return _pack(encode_shard, _batches(docs, val_repos, min(batch_bytes, ENCODE_BATCH_CHARS)), out_dir,
                 tokenizer_dir=tokenizer_dir, params=params, workers=workers, on_progress=on_progress,
                 total_docs=total_docs)


def _check_args(tokenizer_dir, params: PackSettings, workers: int, batch_bytes: int) -> None:
    params.validate()
    check(workers >= 1, "workers", f"must be >= 1, got {workers}")
    check(batch_bytes >= 1, "batch_bytes", f"must be >= 1, got {batch_bytes}")
    _check_sentinels(cached_tokenizer(str(tokenizer_dir))[1], params)


def _pack(fn: Callable[..., ShardResult], batches: Iterable[tuple], out_dir: str | os.PathLike, *,
          tokenizer_dir: str | os.PathLike, params: PackSettings, workers: int,
          on_progress: Callable[[int, int | None], None] | None, total_docs: int | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    results = _reporting(_encoded(fn, batches, tokenizer_dir, params, workers), on_progress, total_docs)
    meta, audit = write_tokens(results, out_dir,
                               tokenizer_dir=tokenizer_dir, params=params)
    seconds = time.perf_counter() - t0
    total = sum(meta["splits"][s]["n_tokens"] + meta["splits"][s]["tail_tokens_dropped"] for s in SPLITS)
    chars = sum(meta["splits"][s]["chars"] for s in SPLITS)
    return {**meta, "timing": {"seconds": round(seconds, 3), "tokens_per_s": round(total / max(seconds, 1e-9)),
                               "chars_per_s": round(chars / max(seconds, 1e-9)), "workers": workers},
            "audit": audit}


def pack_repos(repos_path: str | os.PathLike, out_dir: str | os.PathLike, *, tokenizer_dir: str | os.PathLike,
               params: PackSettings, workers: int = 1, batch_bytes: int = BATCH_BYTES,
               on_progress: Callable[[int, int | None], None] | None = None) -> dict[str, Any]:
    """`pack_documents` over a REPOS Parquet file, read in batches of about `batch_bytes`;
    the split is planned from its repo_id column. Same output, but the rows stay Arrow data
    in this process (`_table_batches`): they become Python dicts in the worker that encodes
    them.

    Measured (pack stage, 2 workers, `runner.batch_bytes` 8 MiB; driver peak RSS, whole tree
    in brackets): before, with dicts read here, batches referenced by their generator while
    the next one was read, and the last fed chunk kept by `WindowFim`: 272 MB (584) on the
    default corpus, 465 MB (958) at 14x. With Arrow batches, nothing held past its use and
    results received out of band (dscoder.pool): 232 MB (544) and 319 MB (758)."""
    _check_args(tokenizer_dir, params, workers, batch_bytes)
    val = val_repo_ids(repo_ids(repos_path), params.val_fraction, params.split_seed)
    return _pack(encode_table, _table_batches(repos_path, val, min(batch_bytes, ENCODE_BATCH_CHARS), batch_bytes),
                 out_dir, tokenizer_dir=tokenizer_dir, params=params, workers=workers, on_progress=on_progress,
                 total_docs=pq.ParquetFile(repos_path).metadata.num_rows)
