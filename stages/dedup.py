"""dedup: paths.repo_docs → paths.dedup_repos + paths.dedup_clusters.

Repository-level near-dedup (Sec. 2.3): MinHash signatures per shard on the task runner
(streamed in byte-bounded batches), LSH band buckets grouped out of core (Polars over the
shards' parts), union-find clusters, one repository kept per cluster (the largest; ties by
repo_id), then a second streaming pass that drops the rest.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from prefect import flow

from dscoder.data.minhash_dedup import ApplyStep, DedupSettings, SignatureStep, find_clusters
from dscoder.data.step import merge_counts
from dscoder.data.stream import iter_batches
from dscoder.io import write_parquet
from dscoder.lineage.metrics import dedup_by_language, dedup_files_by_language
from dscoder.paths import Paths, report_refs
from dscoder.schemas import CLUSTERS, FILE_CLUSTERS, REPOS
from stages.common import (RunnerSettings, Timer, data_stage_main, load_paths, run_step, scratch, write_report,
                           write_step_outputs)

READS = ("repo_docs",)
WRITES = ("dedup_repos", "dedup_clusters", *report_refs("dedup"))


def by_language(src: Path, clusters, level: str, batch_bytes: int) -> dict:
    """Per-language repos/bytes (repo level) or files (file level) in and removed; sums to the
    report's totals (dscoder.lineage.metrics). Streams the input in byte-bounded batches."""
    import pyarrow.compute as pc

    if level == "file":
        langs = {(b.table["repo_id"][i].as_py(), f["path"]): f["language"]
                 for b in iter_batches(src, ["repo_id", "files"], batch_bytes=batch_bytes)
                 for i, files in enumerate(b.table["files"].to_pylist()) for f in files or []}
        return dedup_files_by_language(clusters, langs)
    removed = set(clusters.filter(pc.invert(clusters["kept"]))["repo_id"].to_pylist())
    rows = (r for b in iter_batches(src, ["repo_id", "text", "files"], batch_bytes=batch_bytes)
            for r in b.table.to_pylist())
    return dedup_by_language(rows, removed)


@flow(name="dedup", log_prints=True)
def dedup(params: DedupSettings, runner: RunnerSettings, paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    src, out, clusters_out = Path(paths.repo_docs), Path(paths.dedup_repos), Path(paths.dedup_clusters)
    timer = Timer()
    with scratch(out, "dedup") as work:
        sig = run_step(SignatureStep(params), src, work, runner, size_columns=["text"])
        timer.mark("signatures")
        clusters = find_clusters([r.extra["bands"] for r in sig], [r.extra["signatures"] for r in sig], params)
        write_parquet(clusters_out, clusters.table, schema=CLUSTERS if params.level == "repo" else FILE_CLUSTERS)
        timer.mark("clusters")
        applied = run_step(ApplyStep(str(Path(clusters_out).resolve()), params.level), src, work, runner, size_columns=["text"])
        write_step_outputs(applied, out, REPOS)
        timer.mark("apply")
    signed, kept = merge_counts(sig), merge_counts(applied)
    skipped = Counter()
    for r in sig:
        skipped.update(r.extra["skipped"])
    bands, rows = params.bands_rows
    table = clusters.table
    report = {
        "level": params.level,
        "backend": params.backend,
        "bands": bands,
        "rows": rows,
        "docs": signed[("docs",)],
        "bytes": signed[("bytes",)],
        "skipped": dict(sorted(skipped.items())),
        **{k: v for k, v in clusters.stats.items() if k not in ("bands", "rows")},
        **{k[0]: v for k, v in sorted(kept.items())},
        "duplicate_clusters": len({c for c, k in zip(table["cluster_id"].to_pylist(), table["kept"].to_pylist())
                                   if not k}),
        "by_language": by_language(src, table, params.level, runner.batch_bytes),
        "throughput": {"mb_per_s": round(signed[("bytes",)] / 1e6 / max(timer.total, 1e-9), 2)},
    }
    print(f"dedup: {report.get('repos_removed', 0)} of {report['docs']} documents removed as near-duplicates")
    return write_report("dedup", report, timer, paths)


def main() -> None:
    data_stage_main(dedup, DedupSettings, __doc__)


if __name__ == "__main__":
    main()
