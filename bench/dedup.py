"""dscoder's MinHash near-dedup vs datatrove's MinHash pipeline, side by side on one corpus.

Run (datatrove is not a project dependency; it lives in a separate bench venv):

    # once: a venv that sees the project's packages without changing them
    /root/.pyenv/versions/3.11.7/bin/python3.11 -m venv /work/bench-venv
    echo "import site; site.addsitedir('/work/main/.venv/lib/python3.11/site-packages')" \
        > /work/bench-venv/lib/python3.11/site-packages/dscoder-main-venv.pth
    /work/bench-venv/bin/pip install datatrove==0.10.1 xxhash==3.5.0 spacy
    # (xxhash 4.x refuses the str that datatrove 0.10.1 hands it: 'Strings must be encoded')
    # then
    /work/bench-venv/bin/python bench/dedup.py [data/repos/repos.parquet] [--max-total-mb 60]

(Installing datatrove into .venv would not change torch or numpy, but it adds ~20 packages
the project never declared; the side venv keeps .venv exactly as pyproject.toml says, and the
``.pth`` line makes dscoder, numpy, polars... resolve to .venv's copies.) Without datatrove
the script still runs dscoder's side (``--skip-datatrove``).

Corpus: the REPOS Parquet given (default data/repos/repos.parquet); when it is missing, one
document per package directory of .venv's site-packages (its .py files concatenated with
path headers, as repo_docs does), plus each package vendored under ``pip/_vendor`` and
``setuptools/_vendor``: real near-duplicates of the installed copies.

Both sides run single-threaded (POLARS_MAX_THREADS=1, RAYON_NUM_THREADS=1, datatrove's local
executor with one worker), with the same 5-word shingles and the same bands x rows (dscoder's
optimum for threshold 0.7 / 256 permutations, 25 x 10; datatrove's default is 14 x 8), each
timed end to end from in-memory documents to the filtered documents: signatures, buckets,
clusters, filter. Agreement: pairs of documents that end in the same cluster. Ground truth:
exact Jaccard of dscoder's shingle sets on a sample (every pair either side reported plus
random pairs); recall is against the true pairs (J >= threshold) in that sample.
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from dscoder.data import minhash_dedup as md  # noqa: E402
from dscoder.schemas import REPOS  # noqa: E402

SITE = Path(np.__file__).resolve().parent.parent


def package_docs(max_doc_mb: float, max_total_mb: float) -> pa.Table:
    dirs = [d for d in sorted(SITE.iterdir()) if d.is_dir() and not d.name.endswith((".dist-info", "__pycache__"))]
    for vendor in (SITE / "pip" / "_vendor", SITE / "setuptools" / "_vendor"):
        if vendor.is_dir():
            dirs += [d for d in sorted(vendor.iterdir()) if d.is_dir() and d.name != "__pycache__"]
    # Vendored packages and their installed twins first, so a small cap still holds the
    # corpus's real near-duplicates; then everything else in name order.
    vendored = {d.name for d in dirs if d.parent.name == "_vendor"}
    dirs.sort(key=lambda d: (d.name not in vendored, d.name, str(d)))
    rows, total = [], 0
    for d in dirs:
        paths = sorted(d.rglob("*.py"))
        size = sum(p.stat().st_size for p in paths)
        if not paths or size > max_doc_mb * 1e6 or size < 2000:
            continue
        if total + size > max_total_mb * 1e6:
            continue
        parts, spans, pos = [], [], 0
        for p in paths:
            rel = str(p.relative_to(d))
            head, body = f"# {rel}\n", p.read_text(encoding="utf-8", errors="replace")
            spans.append({"path": rel, "language": "python", "start": pos, "end": pos + len(head) + len(body),
                          "header_chars": len(head)})
            parts += [head, body]
            pos += len(head) + len(body)
        rid = str(d.relative_to(SITE))
        rows.append({"repo_id": rid, "repo_name": d.name, "source": f"site-packages:{rid}", "text": "".join(parts),
                     "files": spans, "languages": ["python"], "n_files": len(paths), "edges_found": 0,
                     "edges_resolved": 0, "cycles_broken": 0})
        total += size
    return pa.Table.from_pylist(rows, schema=REPOS)


def cluster_pairs(groups: dict) -> set[tuple[str, str]]:
    out = set()
    for members in groups.values():
        out.update(itertools.combinations(sorted(members), 2))
    return out


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def run_dscoder(table: pa.Table, params: md.DedupParams, workdir: Path, shards: int):
    res, wall, cpu = timed(lambda: md.run_dedup(table, params, workdir, num_shards=shards))
    groups: dict[str, set[str]] = {}
    for r in res.clusters.to_pylist():
        groups.setdefault(r["cluster_id"], set()).add(r["repo_id"])
    return cluster_pairs({k: v for k, v in groups.items() if len(v) > 1}), wall, cpu, res


def run_datatrove(table: pa.Table, bands: int, rows: int, workdir: Path):
    import struct

    from datatrove.data import Document
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                          MinhashDedupSignature)
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.hashing import HashConfig

    ids = table["repo_id"].to_pylist()
    texts = table["text"].to_pylist()
    config = MinhashConfig(n_grams=5, num_buckets=bands, hashes_per_bucket=rows, seed=1,
                           hash_config=HashConfig(precision=64))
    kept: list[str] = []

    def docs():
        return [Document(text=t, id=i) for i, t in zip(ids, texts)]

    def collect(data, rank=0, world_size=1):
        for doc in data:
            kept.append(doc.id)
            yield doc

    def pipeline():
        common = {"logging_dir": str(workdir / "logs"), "skip_completed": False}
        LocalPipelineExecutor(pipeline=[docs(), MinhashDedupSignature(str(workdir / "sigs"), config=config)],
                              tasks=1, workers=1, **common).run()
        LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(str(workdir / "sigs"), str(workdir / "buckets"),
                                                            config=config)],
                              tasks=bands, workers=1, **common).run()
        LocalPipelineExecutor(pipeline=[MinhashDedupCluster(str(workdir / "buckets"), str(workdir / "remove"),
                                                            config=config, save_cluster_id=True)],
                              tasks=1, workers=1, **common).run()
        LocalPipelineExecutor(pipeline=[docs(), MinhashDedupFilter(str(workdir / "remove"), load_cluster_ids=True),
                                        collect], tasks=1, workers=1, **common).run()

    _, wall, cpu = timed(pipeline)
    groups: dict[int, set[str]] = {}
    cfile = workdir / "remove" / "000000.clusters"
    if cfile.exists():
        raw = cfile.read_bytes()
        for doc, cid in struct.iter_unpack("<2I", raw):
            groups.setdefault(cid, set()).add(ids[doc])
    return cluster_pairs({k: v for k, v in groups.items() if len(v) > 1}), wall, cpu, len(kept)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("repos", nargs="?", default="data/repos/repos.parquet")
    ap.add_argument("--max-doc-mb", type=float, default=8.0, help="site-packages corpus: skip larger packages")
    ap.add_argument("--max-total-mb", type=float, default=30.0, help="site-packages corpus: stop at this size")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--backend", default="rensa", choices=["rensa", "datasketch"])
    ap.add_argument("--random-pairs", type=int, default=400)
    ap.add_argument("--skip-datatrove", action="store_true")
    ap.add_argument("--datatrove-default-bands", action="store_true", help="datatrove with its own 14 x 8")
    args = ap.parse_args()

    if Path(args.repos).is_file():
        table, source = pq.read_table(args.repos).cast(REPOS), args.repos
    else:
        table, source = package_docs(args.max_doc_mb, args.max_total_mb), f"site-packages ({SITE})"
    mb = sum(len(t.encode()) for t in table["text"].to_pylist()) / 1e6
    params = md.DedupParams(backend=args.backend)
    bands, rows = params.bands_rows
    print(f"corpus: {source}: {table.num_rows} documents, {mb:.1f} MB; threshold {params.threshold}, "
          f"{params.num_perm} perms, {bands} bands x {rows} rows")

    work = Path(tempfile.mkdtemp(prefix="bench-dedup-"))
    try:
        ours, w_ours, c_ours, res = run_dscoder(table, params, work / "dscoder", args.shards)
        results = [("dscoder (" + args.backend + ")", ours, w_ours, c_ours, res.repos.num_rows)]
        if not args.skip_datatrove:
            try:
                b, r = (14, 8) if args.datatrove_default_bands else (bands, rows)
                dt, w_dt, c_dt, n_kept = run_datatrove(table, b, r, work / "datatrove")
                results.append((f"datatrove 0.10.1 ({b}x{r})", dt, w_dt, c_dt, n_kept))
            except ImportError as exc:
                print(f"datatrove not importable ({exc}); run with /work/bench-venv/bin/python", file=sys.stderr)

        # ground truth on a sample: every reported pair plus random pairs
        ids = table["repo_id"].to_pylist()
        rng = random.Random(0)
        sample = set().union(*[p for _, p, *_ in results])
        all_pairs = list(itertools.combinations(sorted(ids), 2))
        sample |= set(rng.sample(all_pairs, min(args.random_pairs, len(all_pairs))))
        text_of = dict(zip(ids, table["text"].to_pylist()))
        sets: dict[str, np.ndarray] = {}

        def shingles(i):
            if i not in sets:
                sets[i] = np.unique(md.shingle_hashes(text_of[i], params.shingle_size))
            return sets[i]

        def jac(a, b):
            sa, sb = shingles(a), shingles(b)
            inter = len(np.intersect1d(sa, sb, assume_unique=True))
            union = len(sa) + len(sb) - inter
            return inter / union if union else 0.0

        truth = {p for p in sorted(sample) if jac(*p) >= params.threshold}

        print()
        print(f"{'pipeline':28s} {'wall s':>8s} {'cpu s':>8s} {'MB/s wall':>10s} {'MB/s cpu':>9s} "
              f"{'kept':>6s} {'pairs':>6s} {'true':>5s} {'precision':>9s} {'recall':>7s}")
        for name, pairs, wall, cpu, kept in results:
            tp = len(pairs & truth)
            print(f"{name:28s} {wall:8.2f} {cpu:8.2f} {mb / wall:10.2f} {mb / cpu:9.2f} {kept:6d} {len(pairs):6d} "
                  f"{tp:5d} {tp / len(pairs) if pairs else 1:9.3f} {tp / len(truth) if truth else 1:7.3f}")
        if len(results) == 2:
            a, b = results[0][1], results[1][1]
            print(f"\nspeed-up (wall) dscoder vs datatrove: {results[1][2] / results[0][2]:.1f}x; "
                  f"pairs in both {len(a & b)}, only dscoder {len(a - b)}, only datatrove {len(b - a)}")
            for name, diff in (("only dscoder", a - b), ("only datatrove", b - a)):
                for p in sorted(diff)[:8]:
                    print(f"  {name}: {p[0]} ~ {p[1]}  exact J = {jac(*p):.3f}")
        print(f"ground truth sample: {len(sample)} pairs, {len(truth)} with exact J >= {params.threshold}")
        print("dscoder stats:", {k: v for k, v in res.stats.items() if k != "params"})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
