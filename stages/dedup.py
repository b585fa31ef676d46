"""dedup: data/repos/repos.parquet → data/dedup/repos.parquet + data/dedup/clusters.parquet.

Repository-level near-dedup (Sec. 2.3): MinHash signatures per shard on the task runner,
LSH band buckets grouped out of core (Polars over the shards' Parquet), union-find clusters,
one repository kept per cluster (the largest; ties by repo_id).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from prefect import flow, task

from dscoder.config import build
from dscoder.data.minhash_dedup import DedupParams, apply_dedup, find_clusters, signature_shard, write_signature_shard
from dscoder.io import concat_parquet, write_parquet
from dscoder.lineage.metrics import dedup_by_language, dedup_files_by_language
from dscoder.schemas import CLUSTERS, FILE_CLUSTERS, REPOS
from stages.common import (RunnerSettings, Timer, load_params, read_repos, repo_shards, run_shards,
                           stage_args, task_runner, write_report)

IN = Path("data/repos/repos.parquet")
OUT = Path("data/dedup/repos.parquet")
CLUSTERS_OUT = Path("data/dedup/clusters.parquet")


@task(name="dedup-signatures")
def signatures(index: int, src: str, repo_ids: list[str], params: DedupParams, workdir: str) -> dict:
    shard = signature_shard(read_repos(src, repo_ids), params)
    bands, sigs = write_signature_shard(shard, workdir, index)
    return {"bands": str(bands), "signatures": str(sigs), "stats": shard.stats}


@task(name="dedup-apply")
def apply(index: int, src: str, repo_ids: list[str], clusters: str, level: str, workdir: str) -> dict:
    kept, stats = apply_dedup(read_repos(src, repo_ids), pq.read_table(clusters), level)
    part = Path(workdir) / f"kept-{index:05d}.parquet"
    pq.write_table(kept.cast(REPOS), part, compression="zstd")
    return {"part": str(part), "stats": stats}


def by_language(src: Path, clusters, level: str) -> dict:
    """Per-language repos/bytes (repo level) or files (file level) in and removed; sums to the
    report's totals (dscoder.lineage.metrics). Streams the input's text in batches."""
    import pyarrow.compute as pc

    if level == "file":
        spans = pq.read_table(src, columns=["repo_id", "files"]).to_pylist()
        langs = {(r["repo_id"], f["path"]): f["language"] for r in spans for f in r["files"] or []}
        return dedup_files_by_language(clusters, langs)
    removed = set(clusters.filter(pc.invert(clusters["kept"]))["repo_id"].to_pylist())
    rows = (r for b in pq.ParquetFile(src).iter_batches(batch_size=64, columns=["repo_id", "text", "files"])
            for r in b.to_pylist())
    return dedup_by_language(rows, removed)


@flow(name="dedup", log_prints=True)
def dedup(params: DedupParams, runner: RunnerSettings, src: Path = IN, out: Path = OUT,
          clusters_out: Path = CLUSTERS_OUT) -> dict:
    timer = Timer()
    with repo_shards(src, out, runner.shards, "dedup") as (shards, work):
        sig = run_shards(signatures, [(i, str(src), ids, params, work) for i, ids in enumerate(shards)])
        timer.mark("signatures")
        clusters = find_clusters([r["bands"] for r in sig], [r["signatures"] for r in sig], params)
        write_parquet(clusters_out, clusters.table, schema=CLUSTERS if params.level == "repo" else FILE_CLUSTERS)
        timer.mark("clusters")
        applied = run_shards(apply, [(i, str(src), ids, str(clusters_out), params.level, work)
                                     for i, ids in enumerate(shards)])
        concat_parquet([r["part"] for r in applied], out, REPOS, row_group_rows=256)
        timer.mark("apply")
    applied_stats, skipped = Counter(), Counter()
    for r in applied:
        applied_stats.update(r["stats"])
    for r in sig:
        skipped.update(r["stats"]["skipped"])
    docs_bytes = sum(r["stats"]["bytes"] for r in sig)
    bands, rows = params.bands_rows
    report = {
        "level": params.level,
        "backend": params.backend,
        "bands": bands,
        "rows": rows,
        "docs": sum(r["stats"]["docs"] for r in sig),
        "bytes": docs_bytes,
        "skipped": dict(sorted(skipped.items())),
        **{k: v for k, v in clusters.stats.items() if k not in ("bands", "rows")},
        **dict(sorted(applied_stats.items())),
        "duplicate_clusters": int(sum(1 for _ in set(c for c, k in zip(clusters.table["cluster_id"].to_pylist(),
                                                                      clusters.table["kept"].to_pylist()) if not k))),
        "by_language": by_language(src, clusters.table, params.level),
        "throughput": {"mb_per_s": round(docs_bytes / 1e6 / max(timer.total, 1e-9), 2)},
    }
    print(f"dedup: {report.get('repos_removed', 0)} of {report['docs']} documents removed as near-duplicates")
    return write_report("dedup", report, timer)


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    settings = build(DedupParams, params.get("dedup"), "dedup")
    runner = RunnerSettings.from_dict(params.get("runner"), "runner")
    dedup.with_options(task_runner=task_runner(runner))(settings, runner)


if __name__ == "__main__":
    main()
