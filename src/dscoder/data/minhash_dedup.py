"""Repository-level near-deduplication with MinHash LSH (docs/recipe.md §1, paper Sec. 2.3).

The unit is the whole concatenated repository document (``level="repo"``), so dedup never
tears a repository apart; ``level="file"`` is the ablation that dedups single files instead.

Pipeline, each step a function the stage layer can run where it likes:

1. ``signature_shard(rows, params)``: per shard of REPOS rows, word n-gram shingles
   (``dscoder.data.ngrams``), MinHash signatures (back-end ``rensa`` or ``datasketch``) and LSH
   band hashes. Pure per document, so any split into shards gives the same rows.
   ``write_signature_shard`` writes them as two Parquet files per shard.
2. ``find_clusters(band_files, signature_files, params)``: band buckets grouped out of core with
   Polars (``scan_parquet`` + ``group_by`` on the streaming engine), candidate pairs, union-find
   clusters, one document kept per cluster, and each member's Jaccard to the kept document
   estimated from the signatures.
3. ``apply_dedup(repos, clusters, level)``: the REPOS table without the dropped documents (file
   level: the dropped files' blocks are cut out and the repository re-concatenated).

``run_dedup`` chains the three in one process (tests, bench, small corpora).

Keep rule (deterministic): in each cluster keep the largest document (UTF-8 bytes of the text
that was shingled), ties broken by the smallest ``doc_id``. Largest, because near-duplicate
repositories are usually one repository at two points in time and the larger one tends to be
the later, more complete copy.

Back-ends. Both consume the same 64-bit shingle hashes, so shingling is identical:

- ``rensa`` (default): ``RMinHash.digest_matrix_from_flat_token_hashes`` over one flat buffer
  per chunk of documents; rensa 0.5 applies its own seeded permutations.
- ``datasketch``: datasketch 2.0's ``affine32`` scheme (fmix32 pre-mix, ``a*h+b mod 2**32``)
  with permutations shared by all documents (one template ``MinHash`` copied per document,
  as ``MinHash.bulk`` does), fed the low 32 bits of each shingle hash.

The two back-ends draw different random permutations, so their signatures differ value by
value; each is an unbiased estimator of the same Jaccard similarity, so they agree on every
pair that is not within a few standard errors (about ``sqrt(J(1-J)/num_perm)``, 0.03 at
J=0.7 and 256 permutations) of the LSH S-curve's steep region. On the test corpus their
clusters are identical (tests/unit/dedup); on a real corpus a handful of borderline pairs may
land differently, exactly as they would between two seeds of the same back-end.

LSH parameters: ``bands x rows`` minimise the equally weighted integrated false-positive and
false-negative probability for the threshold (datasketch's ``_optimal_param``); 0.7 and 256
permutations give 25 bands of 10 rows (250 of the 256 values are used for banding, all 256
for Jaccard estimates).
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Literal, Sequence

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from dscoder.config import Settings
from dscoder.data import ngrams, repo_blocks
from dscoder.data.step import Step, StepContext
from dscoder.data.stream import Batch, PartWriter
from dscoder.schemas import REPOS

#: doc_id of a file at ``level="file"``: ``f"{repo_id}{FILE_ID_SEP}{path}"``.
FILE_ID_SEP = "::"

#: signatures/part-*.parquet: one row per shingled document.
SIGNATURES = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),  # repo_id, or repo_id::path at file level
        pa.field("repo_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=True),  # null at repo level
        pa.field("size", pa.int64(), nullable=False),  # UTF-8 bytes of the shingled text
        pa.field("n_shingles", pa.int64(), nullable=False),
        pa.field("signature", pa.list_(pa.uint32()), nullable=False),  # num_perm values
    ]
)

#: bands/part-*.parquet: one row per (document, band).
BANDS = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("band_idx", pa.int32(), nullable=False),
        pa.field("band_hash", pa.uint64(), nullable=False),
    ]
)

# Flush the flat shingle buffer to the MinHash back-end after this many shingles (~64 MB).
_CHUNK_SHINGLES = 8_000_000
# datasketch materialises a (hashes x num_perm) matrix per update_batch: keep it ~8 MB.
_DATASKETCH_BATCH = 8192


@dataclass(frozen=True, kw_only=True)
class DedupSettings(Settings):
    """Settings of near-dedup (params.yaml section ``dedup``)."""

    section: ClassVar[str] = "dedup"

    shingle_size: int = 5
    """Words per shingle. StarCoder's near-dedup (which the paper follows) used 5-grams."""
    num_perm: int = 256
    """MinHash permutations (signature length). StarCoder: 256."""
    threshold: float = 0.7
    """Jaccard similarity at which two documents count as near-duplicates. StarCoder: 0.7."""
    seed: int = 42
    """Seed of the MinHash permutations."""
    level: Literal["repo", "file"] = "repo"
    """``repo``: whole repository documents (Sec. 2.3). ``file``: single files (ablation)."""
    backend: Literal["rensa", "datasketch"] = "rensa"
    """MinHash implementation: ``rensa`` (Rust, fast) or ``datasketch`` (numpy)."""
    verify_candidates: bool = False
    """Drop LSH candidate pairs whose signature-estimated Jaccard is below ``threshold``
    before clustering (fewer false merges, slightly lower recall near the threshold)."""
    false_positive_weight: float = 0.5
    """Weight of the false-positive probability when choosing bands x rows."""
    false_negative_weight: float = 0.5
    """Weight of the false-negative probability when choosing bands x rows."""

    def validate(self) -> None:
        self.require(self.shingle_size >= 1, "shingle_size", f"must be >= 1, got {self.shingle_size!r}")
        self.require(2 <= self.num_perm <= 4096, "num_perm", f"must be in [2, 4096], got {self.num_perm!r}")
        self.require(0.0 < self.threshold < 1.0, "threshold", f"must be in (0, 1), got {self.threshold!r}")
        self.require(0 <= self.seed < 2**32, "seed", f"must be in [0, 2**32), got {self.seed!r}")
        self.require(self.level in ("repo", "file"), "level", f"must be 'repo' or 'file', got {self.level!r}")
        self.require(self.backend in ("rensa", "datasketch"), "backend",
                     f"must be 'rensa' or 'datasketch', got {self.backend!r}")
        for name in ("false_positive_weight", "false_negative_weight"):
            w = getattr(self, name)
            self.require(0.0 <= w <= 1.0, name, f"must be in [0, 1], got {w!r}")
        self.require(self.false_positive_weight + self.false_negative_weight > 0, "false_negative_weight",
                     "false_positive_weight + false_negative_weight must be > 0")

    @property
    def bands_rows(self) -> tuple[int, int]:
        """(bands, rows) of the LSH index, see `lsh_bands_rows`."""
        return lsh_bands_rows(
            self.threshold, self.num_perm, self.false_positive_weight, self.false_negative_weight
        )


@functools.lru_cache(maxsize=64)
def lsh_bands_rows(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """Bands b and rows r (b*r <= num_perm) minimising the weighted integrated error.

    A pair of Jaccard s becomes a candidate with probability 1-(1-s^r)^b. The false-positive
    area is that curve's integral over [0, threshold], the false-negative area the integral of
    its complement over [threshold, 1]; this is datasketch's ``_optimal_param``, computed the
    same way (scipy's adaptive quadrature), so both libraries pick the same b and r.
    """
    from scipy.integrate import quad  # scipy comes with datasketch

    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp, _ = quad(lambda s: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)
            fn, _ = quad(lambda s: (1 - s ** float(r)) ** float(b), threshold, 1.0)
            err = fp * false_positive_weight + fn * false_negative_weight
            if err < best_err:
                best, best_err = (b, r), err
    return best


# --------------------------------------------------------------------------- shingles, MinHash


def shingle_hashes(text: str, shingle_size: int) -> np.ndarray:
    """uint64 hashes of the word `shingle_size`-grams of `text` (duplicates included).

    A document shorter than one shingle but with at least one word is a single shingle of all
    its words, so short files still get a signature; a document with no word gets none.
    """
    hashes = ngrams.word_hashes(ngrams.words(text))
    return ngrams.ngram_hashes(hashes, min(shingle_size, len(hashes)))


def minhash_signatures(
    shingles: Sequence[np.ndarray], *, num_perm: int, seed: int, backend: str = "rensa"
) -> np.ndarray:
    """MinHash signature of each non-empty uint64 shingle array: uint32 array (docs, num_perm)."""
    if not shingles:
        return np.zeros((0, num_perm), dtype=np.uint32)
    if any(len(s) == 0 for s in shingles):
        raise ValueError("every document needs at least one shingle")
    if backend == "rensa":
        return _rensa_signatures(shingles, num_perm, seed)
    if backend == "datasketch":
        return _datasketch_signatures(shingles, num_perm, seed)
    raise ValueError(f"backend must be 'rensa' or 'datasketch', got {backend!r}")


def _rensa_signatures(shingles: Sequence[np.ndarray], num_perm: int, seed: int) -> np.ndarray:
    import rensa

    flat = np.concatenate(shingles).astype(np.uint64, copy=False)
    offsets = np.zeros(len(shingles) + 1, dtype=np.uint64)
    np.cumsum([len(s) for s in shingles], out=offsets[1:])
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(flat, offsets, num_perm, seed)
    return np.asarray(matrix.to_rows(), dtype=np.uint32).reshape(len(shingles), num_perm)


def _datasketch_signatures(shingles: Sequence[np.ndarray], num_perm: int, seed: int) -> np.ndarray:
    from datasketch import MinHash

    template = MinHash(num_perm=num_perm, seed=seed, hashfunc=_identity, scheme="affine32")
    out = np.empty((len(shingles), num_perm), dtype=np.uint32)
    for i, s in enumerate(shingles):
        m = template.copy()  # shares the template's permutations (no per-document RNG)
        low32 = (s & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        for j in range(0, len(low32), _DATASKETCH_BATCH):
            m.update_batch(low32[j : j + _DATASKETCH_BATCH].tolist())
        out[i] = m.hashvalues
    return out


def _identity(x: int) -> int:
    return x


def band_hashes(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64 hash of each band of each signature: array (docs, bands).

    Band i covers signature values [i*rows, (i+1)*rows). 64-bit band hashes make an accidental
    bucket collision (~2**-64 per pair and band) negligible next to MinHash's own error.
    """
    n, num_perm = signatures.shape
    if bands * rows > num_perm:
        raise ValueError(f"bands*rows = {bands * rows} exceeds num_perm = {num_perm}")
    sig = signatures[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    h = np.full((n, bands), np.uint64(rows), dtype=np.uint64)
    for j in range(rows):
        h = ngrams.fmix64(h * np.uint64(0x9E3779B97F4A7C15) + sig[:, :, j])
    return h


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fraction of equal signature values, row by row (MinHash's Jaccard estimate)."""
    return np.mean(np.asarray(a) == np.asarray(b), axis=-1)


# --------------------------------------------------------------------------- documents


@dataclass
class Unit:
    """One document that dedup compares: a repository, or one file at file level."""

    doc_id: str
    repo_id: str
    path: str | None
    text: str


def iter_units(rows: Iterable[dict[str, Any]], level: str, skipped: Counter) -> Iterator[Unit]:
    """Dedup units of REPOS rows; rows that cannot be used are counted in `skipped` by reason."""
    for row in rows:
        repo_id, text = row.get("repo_id"), row.get("text")
        if not isinstance(repo_id, str) or not isinstance(text, str):
            skipped["bad_row"] += 1
            continue
        if level == "repo":
            yield Unit(repo_id, repo_id, None, text)
            continue
        problem = repo_blocks.spans_problem(row)
        if problem is not None:
            skipped[problem] += 1
            continue
        for span in row["files"]:
            yield Unit(f"{repo_id}{FILE_ID_SEP}{span['path']}", repo_id, span["path"],
                       repo_blocks.block_content(text, span))


def _rows_of(repos: pa.Table | Iterable[dict[str, Any]], level: str) -> Iterable[dict[str, Any]]:
    if not isinstance(repos, pa.Table):
        return repos
    columns = ["repo_id", "text"] + (["files"] if level == "file" else [])
    return (row for batch in repos.select(columns).to_batches(256) for row in batch.to_pylist())


# --------------------------------------------------------------------------- step 1: per shard


@dataclass
class SignatureShard:
    """Signatures and band hashes of one shard, plus what it counted."""

    signatures: pa.Table  # SIGNATURES
    bands: pa.Table  # BANDS
    stats: dict[str, Any] = field(default_factory=dict)


def signature_shard(repos: pa.Table | Iterable[dict[str, Any]], params: DedupSettings) -> SignatureShard:
    """Shingle, sign and band every document of one shard of REPOS rows.

    Documents without any word are not signed (they cannot be near-duplicates of anything by
    this measure and would all collide on the empty signature); they are counted under
    ``skipped["no_words"]`` and pass through dedup untouched.
    """
    params.validate()
    bands, rows = params.bands_rows
    skipped: Counter = Counter()
    meta: list[tuple[str, str, str | None, int, int]] = []
    sigs: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    pending_n = 0
    n_bytes = 0

    def flush() -> None:
        nonlocal pending, pending_n
        if pending:
            sigs.append(minhash_signatures(pending, num_perm=params.num_perm, seed=params.seed,
                                           backend=params.backend))
        pending, pending_n = [], 0

    for unit in iter_units(_rows_of(repos, params.level), params.level, skipped):
        size = len(unit.text.encode("utf-8", "replace"))
        n_bytes += size
        sh = shingle_hashes(unit.text, params.shingle_size)
        if len(sh) == 0:
            skipped["no_words"] += 1
            continue
        meta.append((unit.doc_id, unit.repo_id, unit.path, size, len(sh)))
        pending.append(sh)
        pending_n += len(sh)
        if pending_n >= _CHUNK_SHINGLES:
            flush()
    flush()

    sig = np.concatenate(sigs) if sigs else np.zeros((0, params.num_perm), dtype=np.uint32)
    doc_ids = pa.array([m[0] for m in meta], pa.string())
    signatures = pa.table(
        [
            doc_ids,
            pa.array([m[1] for m in meta], pa.string()),
            pa.array([m[2] for m in meta], pa.string()),
            pa.array([m[3] for m in meta], pa.int64()),
            pa.array([m[4] for m in meta], pa.int64()),
            pa.ListArray.from_arrays(
                pa.array(np.arange(0, sig.size + 1, params.num_perm, dtype=np.int32)),
                pa.array(sig.reshape(-1)),
            ),
        ],
        schema=SIGNATURES,
    )
    bh = band_hashes(sig, bands, rows)
    band_table = pa.table(
        [
            doc_ids.take(pa.array(np.repeat(np.arange(len(meta)), bands))),
            pa.array(np.tile(np.arange(bands, dtype=np.int32), len(meta))),
            pa.array(bh.reshape(-1)),
        ],
        schema=BANDS,
    )
    stats = {
        "docs": len(meta) + skipped["no_words"],
        "docs_signed": len(meta),
        "bytes": n_bytes,
        "shingles": int(sum(m[4] for m in meta)),
        "skipped": dict(sorted(skipped.items())),
    }
    return SignatureShard(signatures, band_table, stats)


def write_signature_shard(shard: SignatureShard, workdir: str | Path, index: int) -> tuple[Path, Path]:
    """Write a shard as ``workdir/bands/part-NNNNN.parquet`` and ``workdir/signatures/...``."""
    from dscoder.io import write_parquet

    workdir = Path(workdir)
    band_path = workdir / "bands" / f"part-{index:05d}.parquet"
    sig_path = workdir / "signatures" / f"part-{index:05d}.parquet"
    write_parquet(band_path, shard.bands)
    write_parquet(sig_path, shard.signatures)
    return band_path, sig_path


# --------------------------------------------------------------------------- step 2: clusters


def candidate_pairs(band_files: Sequence[str | Path]) -> pl.DataFrame:
    """Pairs (a, b), a < b, of documents sharing a band bucket, grouped out of core.

    Each bucket contributes a star (its smallest doc_id paired with each other member), which
    connects the bucket with |bucket|-1 pairs instead of |bucket|^2/2; union-find then sees
    the same components.
    """
    if not band_files:
        return pl.DataFrame(schema={"a": pl.String, "b": pl.String})
    buckets = (
        pl.scan_parquet([str(p) for p in band_files])
        .group_by("band_idx", "band_hash")
        .agg(pl.col("doc_id").min().alias("a"), pl.col("doc_id").unique().alias("b"))
        .filter(pl.col("b").list.len() > 1)
        .select("a", "b")
        .explode("b")
        .filter(pl.col("a") != pl.col("b"))
        .unique()
    )
    return buckets.collect(engine="streaming").sort("a", "b")


def union_find(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Component of every id that appears in `pairs`: id -> smallest id of its component."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            # The smaller id becomes the root, so roots do not depend on pair order.
            if rb < ra:
                ra, rb = rb, ra
            parent[rb] = ra
    return {x: find(x) for x in parent}


@dataclass
class Clusters:
    """Result of `find_clusters`."""

    table: pa.Table  # one row per signed document, sorted by doc_id (see `find_clusters`)
    pairs: pl.DataFrame  # candidate pairs (a, b) kept for clustering
    stats: dict[str, Any]


def find_clusters(
    band_files: Sequence[str | Path], signature_files: Sequence[str | Path], params: DedupSettings
) -> Clusters:
    """Cluster the signed documents of all shards and choose the one kept per cluster.

    Returns a table with columns ``repo_id, cluster_id, kept, jaccard`` (schemas.CLUSTERS) at
    repo level; at file level ``doc_id`` and ``path`` come first, and ``cluster_id`` is the
    kept file's doc_id (``repo_id::path``). Documents in no cluster are their own cluster
    (kept, jaccard 1.0). ``jaccard`` is the signature estimate against the kept document.
    """
    params.validate()
    sig_scan = pl.scan_parquet([str(p) for p in signature_files]) if signature_files else None
    pairs = candidate_pairs(band_files)
    n_candidates = pairs.height
    involved = pl.concat([pairs["a"], pairs["b"]]).unique().sort() if pairs.height else pl.Series([], dtype=pl.String)

    sigs: dict[str, np.ndarray] = {}
    sizes: dict[str, int] = {}
    if len(involved):
        got = (
            sig_scan.filter(pl.col("doc_id").is_in(involved.implode()))
            .select("doc_id", "size", "signature")
            .collect()
            .unique("doc_id", keep="first", maintain_order=True)
        )
        sig_matrix = np.asarray(got["signature"].to_list(), dtype=np.uint32)
        for i, (d, s) in enumerate(zip(got["doc_id"].to_list(), got["size"].to_list())):
            sigs[d], sizes[d] = sig_matrix[i], s

    if params.verify_candidates and pairs.height:
        a_sig = np.stack([sigs[a] for a in pairs["a"].to_list()])
        b_sig = np.stack([sigs[b] for b in pairs["b"].to_list()])
        pairs = pairs.filter(pl.Series(estimated_jaccard(a_sig, b_sig) >= params.threshold))

    component = union_find(zip(pairs["a"].to_list(), pairs["b"].to_list()))
    members: dict[str, list[str]] = {}
    for doc, root in component.items():
        members.setdefault(root, []).append(doc)
    rows_doc, rows_cluster, rows_kept, rows_jac = [], [], [], []
    for root in sorted(members):
        group = sorted(members[root])
        keep = min(group, key=lambda d: (-sizes[d], d))  # largest, then smallest doc_id
        jac = estimated_jaccard(np.stack([sigs[d] for d in group]), sigs[keep])
        for d, j in zip(group, jac):
            rows_doc.append(d)
            rows_cluster.append(keep)
            rows_kept.append(d == keep)
            rows_jac.append(float(j))
    membership = pl.DataFrame(
        {"doc_id": rows_doc, "cluster_id": rows_cluster, "kept": rows_kept, "jaccard": rows_jac},
        schema={"doc_id": pl.String, "cluster_id": pl.String, "kept": pl.Boolean, "jaccard": pl.Float64},
    )
    if sig_scan is None:
        docs = pl.DataFrame(schema={"doc_id": pl.String, "repo_id": pl.String, "path": pl.String})
    else:
        docs = sig_scan.select("doc_id", "repo_id", "path").collect().unique("doc_id", keep="first")
    n_dup_ids = 0 if sig_scan is None else (
        sig_scan.select(pl.len()).collect().item() - docs.height
    )
    out = (
        docs.join(membership, on="doc_id", how="left")
        .with_columns(
            pl.col("cluster_id").fill_null(pl.col("doc_id")),
            pl.col("kept").fill_null(True),
            pl.col("jaccard").fill_null(1.0),
        )
        .sort("doc_id")
    )
    columns = ["repo_id", "cluster_id", "kept", "jaccard"]
    if params.level == "file":
        columns = ["doc_id", "repo_id", "path", "cluster_id", "kept", "jaccard"]
    table = out.select(columns).to_arrow()
    bands, rows = params.bands_rows
    stats = {
        "bands": bands,
        "rows": rows,
        "docs_signed": docs.height,
        "duplicate_doc_ids": int(n_dup_ids),
        "candidate_pairs": n_candidates,
        "pairs_clustered": pairs.height,
        "clusters": len(members),
        "docs_in_clusters": len(component),
        "docs_removed": len(component) - len(members),
    }
    return Clusters(table, pairs, stats)


# --------------------------------------------------------------------------- step 3: apply


def apply_dedup(repos: pa.Table, clusters: pa.Table, level: str) -> tuple[pa.Table, dict[str, Any]]:
    """REPOS table without the documents that `clusters` marks ``kept == False``.

    Repo level: those repositories are dropped. File level: those files' blocks are cut from
    their repository documents (``repo_blocks.drop_files``); a repository left with no file is
    dropped. Row order is preserved.
    """
    dropped = clusters.filter(pc.invert(clusters["kept"]))
    if level == "repo":
        removed_ids = dropped["repo_id"]
        mask = pc.is_in(repos["repo_id"], value_set=removed_ids)
        removed = repos.filter(mask)
        kept = repos.filter(pc.invert(mask))
        stats = {
            "repos_in": repos.num_rows,
            "repos_out": kept.num_rows,
            "repos_removed": removed.num_rows,
            "bytes_removed": int(pc.sum(pc.binary_length(pc.cast(removed["text"], pa.binary()))).as_py() or 0),
        }
        return kept, stats
    if level != "file":
        raise ValueError(f"level must be 'repo' or 'file', got {level!r}")
    drop_paths: dict[str, set[str]] = {}
    for r, p in zip(dropped["repo_id"].to_pylist(), dropped["path"].to_pylist()):
        drop_paths.setdefault(r, set()).add(p)
    out_rows, files_removed, bytes_removed, repos_emptied = [], 0, 0, 0
    for row in repos.to_pylist():
        paths = drop_paths.get(row["repo_id"])
        if not paths:
            out_rows.append(row)
            continue
        idx = [i for i, f in enumerate(row["files"]) if f["path"] in paths]
        new = repo_blocks.drop_files(row, idx)
        files_removed += len(idx)
        before = len(row["text"].encode("utf-8", "replace"))
        after = len(new["text"].encode("utf-8", "replace")) if new is not None else 0
        bytes_removed += before - after
        if new is None:
            repos_emptied += 1
        else:
            out_rows.append(new)
    kept = pa.Table.from_pylist(out_rows, schema=repos.schema)
    stats = {
        "repos_in": repos.num_rows,
        "repos_out": kept.num_rows,
        "repos_removed": repos_emptied,
        "files_removed": files_removed,
        "bytes_removed": bytes_removed,
    }
    return kept, stats


# --------------------------------------------------------------------------- all in one


@dataclass
class DedupResult:
    repos: pa.Table  # schemas.REPOS, duplicates removed
    clusters: pa.Table  # see find_clusters
    pairs: pl.DataFrame
    stats: dict[str, Any]


def shard_slices(n_rows: int, num_shards: int) -> list[tuple[int, int]]:
    """Contiguous (offset, length) slices splitting `n_rows` into `num_shards` near-equal shards."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards!r}")
    bounds = np.linspace(0, n_rows, num_shards + 1).round().astype(int)
    return [(int(a), int(b - a)) for a, b in zip(bounds[:-1], bounds[1:])]


def run_dedup(repos: pa.Table, params: DedupSettings, workdir: str | Path, *, num_shards: int = 1) -> DedupResult:
    """All three steps in this process, shard after shard (the stage runs shards in parallel)."""
    params.validate()
    band_files, sig_files, shard_stats = [], [], []
    for i, (offset, length) in enumerate(shard_slices(repos.num_rows, num_shards)):
        shard = signature_shard(repos.slice(offset, length), params)
        b, s = write_signature_shard(shard, workdir, i)
        band_files.append(b)
        sig_files.append(s)
        shard_stats.append(shard.stats)
    clusters = find_clusters(band_files, sig_files, params)
    kept, apply_stats = apply_dedup(repos, clusters.table, params.level)
    skipped: Counter = Counter()
    for st in shard_stats:
        skipped.update(st["skipped"])
    stats = {
        "params": asdict(params),
        "docs": sum(st["docs"] for st in shard_stats),
        "bytes": sum(st["bytes"] for st in shard_stats),
        "shingles": sum(st["shingles"] for st in shard_stats),
        "skipped": dict(sorted(skipped.items())),
        **clusters.stats,
        **apply_stats,
    }
    return DedupResult(kept, clusters.table, clusters.pairs, stats)


# --------------------------------------------------------------------------- streaming steps


def _merge_parts(sigs: pa.Table, params: DedupSettings) -> pa.Table:
    """One signature per doc_id: the parts of a repository split into several documents are
    one repository to dedup, and the MinHash of a union is the element-wise minimum."""
    ids = sigs["doc_id"].to_pylist()
    if len(set(ids)) == len(ids):
        return sigs
    mat = np.asarray(sigs["signature"].combine_chunks().flatten().to_numpy()).reshape(len(ids), params.num_perm)
    order: list[str] = list(dict.fromkeys(ids))
    first = {d: ids.index(d) for d in order}
    rows = []
    for d in order:
        idx = [i for i, x in enumerate(ids) if x == d]
        rows.append({"doc_id": d, "repo_id": sigs["repo_id"][first[d]].as_py(), "path": sigs["path"][first[d]].as_py(),
                     "size": int(sum(sigs["size"][i].as_py() for i in idx)),
                     "n_shingles": int(sum(sigs["n_shingles"][i].as_py() for i in idx)),
                     "signature": np.minimum.reduce(mat[idx]).tolist()})
    return pa.Table.from_pylist(rows, schema=SIGNATURES)


def _bands_of(sigs: pa.Table, params: DedupSettings) -> pa.Table:
    bands, rows = params.bands_rows
    n = sigs.num_rows
    mat = np.asarray(sigs["signature"].combine_chunks().flatten().to_numpy(), dtype=np.uint32).reshape(n, params.num_perm)
    bh = band_hashes(mat, bands, rows)
    return pa.table([sigs["doc_id"].take(pa.array(np.repeat(np.arange(n), bands))),
                     pa.array(np.tile(np.arange(bands, dtype=np.int32), n)), pa.array(bh.reshape(-1))], schema=BANDS)


@dataclass(frozen=True)
class SignatureStep(Step):
    """Step 1 as a streaming step over REPOS rows: signatures and band hashes are written to
    side parts (`bands-NNNNN`, `signatures-NNNNN` in the shard's work folder), no rows."""

    params: DedupSettings
    stage: ClassVar[str] = "dedup"
    schema: ClassVar[pa.Schema] = SIGNATURES  # the main part stays empty
    columns: ClassVar[Sequence[str]] = ("repo_id", "text", "files")

    def begin(self, ctx: StepContext) -> None:
        i = ctx.shard.index
        ctx.extra["bands"] = str(ctx.workdir / f"bands-{i:05d}.parquet")
        ctx.extra["signatures"] = str(ctx.workdir / f"signatures-{i:05d}.parquet")
        ctx.extra["skipped"] = Counter()
        ctx.state["writers"] = (PartWriter(ctx.extra["bands"], BANDS), PartWriter(ctx.extra["signatures"], SIGNATURES))
        ctx.state["open"] = []  # signatures of a repository whose last piece is yet to come

    def process(self, batch: Batch, ctx: StepContext) -> None:
        shard = signature_shard(batch.table, self.params)
        for k in ("docs", "docs_signed", "bytes", "shingles"):
            ctx.count((k,), shard.stats[k])
        ctx.extra["skipped"].update(shard.stats["skipped"])
        st = ctx.state
        sigs = pa.concat_tables([*st["open"], shard.signatures]) if st["open"] else shard.signatures
        st["open"] = []
        if batch.continues and sigs.num_rows:
            last = batch.table["repo_id"][-1].as_py()
            held = pc.equal(sigs["repo_id"], last)
            st["open"] = [sigs.filter(held)]
            sigs = sigs.filter(pc.invert(held))
        self._emit(sigs, st["writers"])

    def _emit(self, sigs: pa.Table, writers) -> None:
        if self.params.level == "repo":
            sigs = _merge_parts(sigs, self.params)
        writers[1].write(sigs)
        writers[0].write(_bands_of(sigs, self.params))

    def end(self, ctx: StepContext) -> None:
        if ctx.state["open"]:
            self._emit(pa.concat_tables(ctx.state["open"]), ctx.state["writers"])
        for w in ctx.state["writers"]:
            w.close()
        ctx.extra["skipped"] = dict(ctx.extra["skipped"])


@dataclass(frozen=True)
class ApplyStep(Step):
    """Step 3 as a streaming step over REPOS rows: drop (or cut) what `clusters` marks removed."""

    clusters: str
    """Path of the clusters Parquet file (one row per repository or file, small)."""
    level: str
    stage: ClassVar[str] = "dedup"
    schema: ClassVar[pa.Schema] = REPOS

    def begin(self, ctx: StepContext) -> None:
        import pyarrow.parquet as pq

        clusters = pq.read_table(self.clusters)
        ctx.state["removed"] = clusters.filter(pc.invert(clusters["kept"]))

    def process(self, batch: Batch, ctx: StepContext) -> None:
        kept, stats = apply_dedup(batch.table, ctx.state["removed"], self.level)
        for k, v in stats.items():
            ctx.count((k,), v)
        ctx.write(kept)
