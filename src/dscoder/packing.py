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
                       FIM params and counts; skipped documents by reason; tokenizer_hash.
  {split}.docs.parquet one row per document, in stream order: doc, repo_id, repo_name,
                       fim_mode, n_chars, token_start, token_end (its BOS..EOS span).
  {split}.segments.parquet
                       one row per run of tokens that encodes one character range of one
                       file inside one FIM piece: doc, file (index into the REPOS row's
                       `files`, -1 for text outside any file block), path, language, role
                       (whole, prefix, middle, suffix, or MSP context/span), span (MSP number,
                       else -1), char_start, char_end (in the original document text),
                       token_start, token_end (in the split's stream). Tokens not covered are
                       BOS, EOS and FIM sentinels. `TokenIndex.locate` does the lookup.
  manifest.json        sha256 of every other file, written last.

Index positions refer to the stream before the tail is cut, so rows past `n_tokens` describe
dropped tokens.

Documents keep their input order (the trainer shuffles blocks, dscoder.train.data). Each
document becomes [BOS] + layout + [EOS] (BOS if `add_bos`), where the layout is `fim.transform`'s: its
pieces are cut further at file boundaries and each resulting segment is encoded on its own
(one batched `encode_batch_fast` per shard), which makes every span exact and lets the index
be built without per-token work. Encoding file by file changes tokenization only where a
pre-token would straddle two files (file blocks normally end with a newline, which the
byte-level pre-tokeniser never merges with what follows).

Train/validation split by repository: a repository goes to validation when
blake2b(split_seed, repo_id) as a fraction of 2^64 is below `val_fraction`, so one repository
never lands in both. With at least two repositories and 0 < val_fraction < 1, the split is
then forced non-empty on both sides (the smallest hash moves to val, the largest to train).

Determinism: FIM choices depend on (fim.seed, repo_id), encoding is per segment, and shard
results are written in input order, so outputs are byte-identical for any number of worker
processes and any shard size.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dscoder import fim as fimlib
from dscoder.config import Settings, check
from dscoder.io import atomic_path, write_json
from dscoder.tokenizer import load_tokenizer, special_token_ids, tokenizer_hash

SPLITS = ("train", "val")
FORMAT = "dscoder.tokens/1"

DOCS_SCHEMA = pa.schema([
    pa.field("doc", pa.int64(), nullable=False),
    pa.field("repo_id", pa.string(), nullable=False),
    pa.field("repo_name", pa.string(), nullable=True),
    pa.field("fim_mode", pa.string(), nullable=False),
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
class PackParams(Settings):
    seq_len: int = 4096
    """Tokens per training block (Sec. 3: 4K window in pretraining; 16K for long context)."""
    val_fraction: float = 0.01
    """Expected share of repositories held out for validation (decided per repo_id hash)."""
    split_seed: int = 0
    """Salt of the repository split hash; change it to draw another split."""
    add_bos: bool = True
    """Begin every document with BOS (the released tokenizer prepends it to every prompt)."""
    fim: fimlib.FimParams = field(default_factory=fimlib.FimParams)
    """Fill-in-the-Middle settings (Sec. 3.1)."""

    def validate(self) -> None:
        check(self.seq_len >= 1, "pack.seq_len", f"must be >= 1, got {self.seq_len}")
        check(0.0 <= self.val_fraction <= 1.0, "pack.val_fraction", f"must be in [0, 1], got {self.val_fraction}")
        self.fim.validate()


# ---------------------------------------------------------------------------- split

def repo_unit(repo_id: str, seed: int) -> float:
    """A repository's position in [0, 1): the split compares it with val_fraction."""
    h = hashlib.blake2b(f"{seed}\0{repo_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2.0**64


def val_repo_ids(repo_ids: Iterable[str], val_fraction: float, seed: int) -> frozenset[str]:
    """The repositories of the validation split (see the module docstring)."""
    units = {r: repo_unit(r, seed) for r in set(repo_ids)}
    val = {r for r, u in units.items() if u < val_fraction}
    if len(units) >= 2 and 0.0 < val_fraction < 1.0:
        order = sorted(units, key=lambda r: (units[r], r))
        if not val:
            val.add(order[0])
        if len(val) == len(units):
            val.discard(order[-1])
    return frozenset(val)


# ---------------------------------------------------------------------------- encode

@dataclass
class SplitChunk:
    """One shard's output for one split; token and doc positions relative to the chunk."""

    ids: np.ndarray
    docs: dict[str, list]
    segments: dict[str, list]


@dataclass
class ShardResult:
    chunks: dict[str, SplitChunk]
    fim_modes: dict[str, Counter]
    skipped: Counter
    warnings: Counter
    chars: dict[str, int]
    audit: list[dict[str, Any]]
    """AUDIT-schema rows (dscoder.schemas.AUDIT) for skipped documents and lost file spans."""


_CACHE: dict[str, tuple[Any, dict[str, int]]] = {}


def _tokenizer(tokenizer_dir: str):
    if tokenizer_dir not in _CACHE:
        tok = load_tokenizer(tokenizer_dir)
        _CACHE[tokenizer_dir] = (tok, special_token_ids(tok))
    return _CACHE[tokenizer_dir]


def _check_sentinels(sid: Mapping[str, int], params: PackParams) -> None:
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


def encode_shard(docs: Sequence[Mapping[str, Any]], splits: Sequence[str], tokenizer_dir: str | os.PathLike,
                 params: PackParams) -> ShardResult:
    """Encode REPOS rows (`repo_id`, `repo_name`, `text`, `files`) assigned to `splits`
    ("train"/"val", one per row). Pure: the same rows give the same result in any process."""
    from dscoder.data.repo_blocks import spans_problem

    params.validate()
    tok, sid = _tokenizer(str(tokenizer_dir))
    _check_sentinels(sid, params)
    bos, eos = np.array([sid["bos"]], np.uint32), np.array([sid["eos"]], np.uint32)
    sentinel = {name: np.array([i], np.uint32) for name, i in sid.items()}
    skipped, warnings, audit = Counter(), Counter(), []
    fim_modes = {s: Counter() for s in SPLITS}
    chars = dict.fromkeys(SPLITS, 0)
    texts: list[str] = []
    # (split, doc, usable files, mode, layout); layout entries are sentinel id arrays or
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
        mode, items = fimlib.transform(len(text), repo_id, params.fim)
        layout = []
        for item in items:
            if isinstance(item, str):
                layout.append(sentinel[item])
                continue
            j = bisect.bisect_right(bounds, item.start) - 1
            pos = item.start
            while pos < item.end:
                end = min(item.end, bounds[j + 1])
                layout.append((len(texts), owner[j], item.role, item.span, pos, end))
                texts.append(text[pos:end])
                pos, j = end, j + 1
        planned.append((split, doc, files, mode, layout))
        fim_modes[split][mode] += 1
        chars[split] += len(text)

    encs = tok.encode_batch_fast(texts, add_special_tokens=False) if texts else []
    arrays = {s: [] for s in SPLITS}
    docs_cols = {s: {k: [] for k in DOCS_SCHEMA.names} for s in SPLITS}
    seg_cols = {s: {k: [] for k in SEGMENTS_SCHEMA.names} for s in SPLITS}
    pos = dict.fromkeys(SPLITS, 0)
    for split, doc, files, mode, layout in planned:
        out, dc, sc = arrays[split], docs_cols[split], seg_cols[split]
        n_doc = len(dc["doc"])
        start = pos[split]
        p = start
        if params.add_bos:
            out.append(bos)
            p += 1
        for entry in layout:
            if isinstance(entry, np.ndarray):
                out.append(entry)
                p += 1
                continue
            k, fi, role, span, cs, ce = entry
            ids = encs[k].ids
            out.append(np.asarray(ids, dtype=np.uint32))
            f = files[fi] if fi >= 0 else None
            for key, val in (("doc", n_doc), ("file", fi), ("path", f and f["path"]),
                             ("language", f and f.get("language")), ("role", role), ("span", span),
                             ("char_start", cs), ("char_end", ce), ("token_start", p),
                             ("token_end", p + len(ids))):
                sc[key].append(val)
            p += len(ids)
        out.append(eos)
        p += 1
        for key, val in (("doc", n_doc), ("repo_id", doc["repo_id"]), ("repo_name", doc.get("repo_name")),
                         ("fim_mode", mode), ("n_chars", len(doc["text"])), ("token_start", start),
                         ("token_end", p)):
            dc[key].append(val)
        pos[split] = p
    chunks = {s: SplitChunk(np.concatenate(arrays[s]) if arrays[s] else np.zeros(0, np.uint32),
                            docs_cols[s], seg_cols[s]) for s in SPLITS}
    return ShardResult(chunks, fim_modes, skipped, warnings, chars, audit)


def _audit_row(doc: Mapping[str, Any], reason: str, detail: str | None) -> dict[str, Any]:
    text = doc.get("text")
    repo_id, name = doc.get("repo_id"), doc.get("repo_name")
    return {"stage": "pack", "repo_id": repo_id if isinstance(repo_id, str) else None,
            "repo_name": name if isinstance(name, str) else None, "path": None, "language": None,
            "reason": reason, "detail": detail,
            "size": len(text.encode("utf-8", errors="replace")) if isinstance(text, str) else None}


# ---------------------------------------------------------------------------- write

def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab_size <= 65536), else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


class _SplitWriter:
    def __init__(self, d: Path, split: str, dtype: np.dtype):
        self.d, self.split, self.dtype = d, split, dtype
        self.fh = open(d / f"{split}.bin", "wb")
        self.n_tokens = self.n_docs = 0
        self.docs = {k: [] for k in DOCS_SCHEMA.names}
        self.segments = {k: [] for k in SEGMENTS_SCHEMA.names}
        self.repos: set[str] = set()

    def add(self, chunk: SplitChunk) -> None:
        # An explicit "<" byte order keeps the file little-endian on any host.
        self.fh.write(chunk.ids.astype(self.dtype.newbyteorder("<")).tobytes())
        shift = {"doc": self.n_docs, "token_start": self.n_tokens, "token_end": self.n_tokens}
        for schema, cols, new in ((DOCS_SCHEMA, self.docs, chunk.docs), (SEGMENTS_SCHEMA, self.segments, chunk.segments)):
            for f in schema:
                vals = new[f.name]
                if f.type != pa.string():
                    vals = np.asarray(vals, dtype=np.int64) + shift.get(f.name, 0)
                cols[f.name].append(vals)
        self.repos.update(chunk.docs["repo_id"])
        self.n_tokens += int(chunk.ids.size)
        self.n_docs += len(chunk.docs["doc"])

    def finish(self, seq_len: int) -> dict[str, Any]:
        n_blocks = self.n_tokens // seq_len
        kept = n_blocks * seq_len
        self.fh.truncate(kept * self.dtype.itemsize)  # drop the partial last block
        self.fh.close()
        for name, schema, cols in (("docs", DOCS_SCHEMA, self.docs), ("segments", SEGMENTS_SCHEMA, self.segments)):
            arrays = []
            for f in schema:
                parts = cols[f.name]
                if f.type == pa.string():
                    arrays.append(pa.array([v for part in parts for v in part], type=f.type))
                else:
                    joined = np.concatenate(parts) if parts else np.zeros(0, np.int64)
                    arrays.append(pa.array(joined.astype(f.type.to_pandas_dtype()), type=f.type))
            pq.write_table(pa.Table.from_arrays(arrays, schema=schema), self.d / f"{self.split}.{name}.parquet",
                           compression="zstd", write_statistics=True)
        return {"file": f"{self.split}.bin", "n_tokens": kept, "n_blocks": n_blocks,
                "tail_tokens_dropped": self.n_tokens - kept, "n_docs": self.n_docs, "n_repos": len(self.repos),
                "docs_index": f"{self.split}.docs.parquet", "segments_index": f"{self.split}.segments.parquet"}


def write_tokens(results: Iterable[ShardResult], out_dir: str | os.PathLike, *, tokenizer_dir: str | os.PathLike,
                 params: PackParams) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write shard results (in input order) as the token directory, atomically; returns meta
    (also written as meta.json, then manifest.json) and the AUDIT rows of all shards."""
    tok, sid = _tokenizer(str(tokenizer_dir))
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    dtype = token_dtype(vocab_size)
    fim_modes = {s: Counter() for s in SPLITS}
    skipped, warnings, chars, audit = Counter(), Counter(), dict.fromkeys(SPLITS, 0), []
    with atomic_path(out_dir, is_dir=True) as tmp:
        writers = {s: _SplitWriter(tmp, s, dtype) for s in SPLITS}
        try:
            for r in results:
                for s in SPLITS:
                    writers[s].add(r.chunks[s])
                    fim_modes[s].update(r.fim_modes[s])
                    chars[s] += r.chars[s]
                skipped.update(r.skipped)
                warnings.update(r.warnings)
                audit.extend(r.audit)
            splits = {s: {**w.finish(params.seq_len), "chars": chars[s]} for s, w in writers.items()}
        finally:
            for w in writers.values():
                w.fh.close()
        overlap = writers["train"].repos & writers["val"].repos
        if overlap:  # a caller passed inconsistent splits; never ship a leaky split
            raise ValueError(f"{len(overlap)} repositories in both splits, e.g. {sorted(overlap)[:3]}")
        fim_stats = {}
        for s in SPLITS:
            n = sum(fim_modes[s].values())
            fim_stats[s] = {"docs": n, **{m: fim_modes[s][m] for m in ("none", "psm", "spm", "msp")},
                            "fim_share": round((n - fim_modes[s]["none"]) / n, 6) if n else None}
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
            "fim": {"params": params.fim.to_dict(), "stats": fim_stats},
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

def _shards(docs: Iterable[Mapping[str, Any]], val: frozenset[str], shard_chars: int) -> Iterator[tuple[list, list]]:
    batch, splits, size = [], [], 0
    for d in docs:
        batch.append(d)
        splits.append("val" if d.get("repo_id") in val else "train")
        text = d.get("text")
        size += len(text) if isinstance(text, str) else 0
        if size >= shard_chars:
            yield batch, splits
            batch, splits, size = [], [], 0
    if batch:
        yield batch, splits


_THREADS = 2


def _worker_init(threads: int) -> None:
    # Each worker's tokenizers thread pool gets its share of the cores (set before first use).
    os.environ["RAYON_NUM_THREADS"] = str(threads)


def _encoded(docs, val, tokenizer_dir, params, workers, shard_chars) -> Iterator[ShardResult]:
    shards = _shards(docs, val, shard_chars)
    if workers <= 1:
        # Two shards in flight on threads: encode_batch_fast releases the GIL, so one shard's
        # Rust encoding overlaps the other's Python assembly and the writer.
        with ThreadPoolExecutor(max_workers=_THREADS) as ex:
            pending: deque = deque()
            for batch, splits in shards:
                pending.append(ex.submit(encode_shard, batch, splits, tokenizer_dir, params))
                if len(pending) > _THREADS:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    # spawn: a forked child would inherit the parent's tokenizers thread pool state.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                             initializer=_worker_init, initargs=(threads,)) as ex:
        pending = deque()
        for batch, splits in shards:
            pending.append(ex.submit(encode_shard, batch, splits, str(tokenizer_dir), params))
            if len(pending) >= 2 * workers:  # bounded: never read the whole corpus ahead
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def pack_documents(docs: Iterable[Mapping[str, Any]], out_dir: str | os.PathLike, *,
                   tokenizer_dir: str | os.PathLike, params: PackParams, val_repos: frozenset[str],
                   workers: int = 1, shard_chars: int = 8_000_000) -> dict[str, Any]:
    """Pack REPOS rows into `out_dir`; `val_repos` from `val_repo_ids`. `workers` processes
    encode shards of about `shard_chars` characters; neither changes the output. Returns a
    report: meta, `timing` (seconds, tokens/s) and `audit` (AUDIT rows of what was skipped)."""
    params.validate()
    check(workers >= 1, "workers", f"must be >= 1, got {workers}")
    check(shard_chars >= 1, "shard_chars", f"must be >= 1, got {shard_chars}")
    _check_sentinels(_tokenizer(str(tokenizer_dir))[1], params)
    t0 = time.perf_counter()
    meta, audit = write_tokens(_encoded(docs, val_repos, tokenizer_dir, params, workers, shard_chars), out_dir,
                        tokenizer_dir=tokenizer_dir, params=params)
    seconds = time.perf_counter() - t0
    total = sum(meta["splits"][s]["n_tokens"] + meta["splits"][s]["tail_tokens_dropped"] for s in SPLITS)
    chars = sum(meta["splits"][s]["chars"] for s in SPLITS)
    return {**meta, "timing": {"seconds": round(seconds, 3), "tokens_per_s": round(total / max(seconds, 1e-9)),
                               "chars_per_s": round(chars / max(seconds, 1e-9)), "workers": workers},
            "audit": audit}


def read_repos(path: str | os.PathLike, batch_rows: int = 256) -> Iterator[dict[str, Any]]:
    """REPOS rows of a Parquet file, streamed (only the columns packing needs)."""
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_rows, columns=["repo_id", "repo_name", "text", "files"]):
        yield from batch.to_pylist()


def pack_repos(repos_path: str | os.PathLike, out_dir: str | os.PathLike, *, tokenizer_dir: str | os.PathLike,
               params: PackParams, workers: int = 1, shard_chars: int = 8_000_000) -> dict[str, Any]:
    """`pack_documents` over a REPOS Parquet file, the split planned from its repo_id column."""
    params.validate()
    ids = pq.read_table(repos_path, columns=["repo_id"]).column("repo_id").to_pylist()
    val = val_repo_ids((r for r in ids if isinstance(r, str)), params.val_fraction, params.split_seed)
    return pack_documents(read_repos(repos_path), out_dir, tokenizer_dir=tokenizer_dir, params=params,
                          val_repos=val, workers=workers, shard_chars=shard_chars)


# ---------------------------------------------------------------------------- look up

@dataclass(frozen=True)
class Location:
    """Where token `offset` of a split's stream came from."""

    offset: int
    doc: int
    repo_id: str
    repo_name: str | None
    fim_mode: str
    special: str | None
    """bos, eos or a sentinel name when the token is one the packer inserted, else None."""
    segment: int | None
    file: int | None
    path: str | None
    language: str | None
    role: str | None
    span: int | None
    char_start: int | None
    """Character range of the segment holding the token, in the original document."""
    char_end: int | None
    token_in_segment: int | None


class TokenIndex:
    """Loads one split's index; `locate(offset)` traces a token back to its source."""

    def __init__(self, tokens_dir: str | os.PathLike, split: str):
        d = Path(tokens_dir)
        self.docs = pq.read_table(d / f"{split}.docs.parquet").to_pydict()
        self.segments = pq.read_table(d / f"{split}.segments.parquet").to_pydict()
        self._doc_start = np.asarray(self.docs["token_start"], np.int64)
        self._seg_start = np.asarray(self.segments["token_start"], np.int64)
        meta = json.loads((d / "meta.json").read_text())
        dtype = np.dtype(meta["dtype"]).newbyteorder("<")
        path = d / f"{split}.bin"  # np.memmap refuses an empty file (a split with no whole block)
        self.tokens = np.memmap(path, dtype=dtype, mode="r") if path.stat().st_size else np.zeros(0, dtype)
        self._special_names = {v: k for k, v in meta["special_ids"].items()}

    def locate(self, offset: int) -> Location:
        d = int(np.searchsorted(self._doc_start, offset, side="right")) - 1
        if d < 0 or offset >= self.docs["token_end"][d]:
            raise IndexError(f"token {offset} is outside every document")
        base = dict(offset=offset, doc=d, repo_id=self.docs["repo_id"][d], repo_name=self.docs["repo_name"][d],
                    fim_mode=self.docs["fim_mode"][d])
        s = int(np.searchsorted(self._seg_start, offset, side="right")) - 1
        if s >= 0 and self.segments["doc"][s] == d and offset < self.segments["token_end"][s]:
            seg = {k: self.segments[k][s] for k in ("file", "path", "language", "role", "span", "char_start", "char_end")}
            return Location(**base, special=None, segment=s, token_in_segment=offset - self.segments["token_start"][s], **seg)
        name = self._special_names.get(int(self.tokens[offset])) if offset < self.tokens.size else None
        return Location(**base, special=name or "unknown", segment=None, file=None, path=None, language=None,
                        role=None, span=None, char_start=None, char_end=None, token_in_segment=None)


def _token_nbytes(tokenizer_dir: str) -> np.ndarray:
    """Bytes each id stands for: in a byte-level BPE every symbol of a token is one byte."""
    key = f"nbytes:{tokenizer_dir}"
    if key not in _CACHE:
        tok, _ = _tokenizer(tokenizer_dir)
        table = np.zeros(tok.get_vocab_size(with_added_tokens=True), np.int64)
        for token, i in tok.get_vocab(with_added_tokens=False).items():
            table[i] = len(token)
        _CACHE[key] = (table, {})
    return _CACHE[key][0]


def token_source(index: TokenIndex, loc: Location, doc: Mapping[str, Any], tokenizer_dir: str | os.PathLike) -> dict[str, Any]:
    """Exact source of a located text token, given its REPOS row: the token's character range
    in the document and its UTF-8 byte range inside its file block (header included). Uses
    the segment's stored tokens and each id's byte length (no re-encoding), so it is exact
    also for a token holding part of a multi-byte character (the range then covers the whole
    character). Tokens in the dropped tail cannot be looked up (they are not in the file)."""
    if loc.segment is None:
        raise ValueError(f"token {loc.offset} is the inserted token {loc.special!r}, not text")
    if loc.offset >= index.tokens.size:
        raise ValueError(f"token {loc.offset} lies in the tail dropped from the token file")
    nbytes = _token_nbytes(str(tokenizer_dir))
    seg_start = loc.offset - loc.token_in_segment
    seg_end = min(index.segments["token_end"][loc.segment], index.tokens.size)
    lengths = nbytes[np.asarray(index.tokens[seg_start:seg_end], dtype=np.int64)]
    text = doc["text"]
    seg_bytes = text[loc.char_start: loc.char_end].encode("utf-8")
    whole = seg_end == index.segments["token_end"][loc.segment]
    if int(lengths.sum()) != len(seg_bytes) if whole else int(lengths.sum()) > len(seg_bytes):
        raise ValueError(f"document {doc.get('repo_id')!r} does not match the segment of token {loc.offset}")
    b0 = int(lengths[: loc.token_in_segment].sum())
    b1 = b0 + int(lengths[loc.token_in_segment])
    c0 = len(seg_bytes[:b0].decode("utf-8", errors="ignore"))  # index of the character holding b0
    head = seg_bytes[:b1].decode("utf-8", errors="ignore")
    c1 = len(head) + (len(head.encode("utf-8")) < b1)  # round up to the whole character
    out: dict[str, Any] = {"char_start": loc.char_start + c0, "char_end": loc.char_start + c1, "path": loc.path}
    if loc.file is not None and loc.file >= 0:
        before = len(text[doc["files"][loc.file]["start"]: loc.char_start].encode("utf-8"))
        out["byte_start"], out["byte_end"] = before + b0, before + b1
    return out
