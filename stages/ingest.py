"""ingest: source specs in params → data/raw/files.parquet (+ data/raw/audit.parquet)."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task

from dscoder.data.ingest import IngestSettings, ingest_sources
from dscoder.io import concat_parquet, write_parquet
from dscoder.schemas import AUDIT, FILES
from stages.common import RunnerSettings, Timer, chunk, load_params, run_shards, stage_args, task_runner, write_report

OUT = Path("data/raw/files.parquet")
AUDIT_OUT = Path("data/raw/audit.parquet")


@task(name="ingest-shard")
def ingest_shard(index: int, specs: list[dict], settings: IngestSettings, part_dir: str) -> dict:
    res = ingest_sources(specs, settings)
    part = Path(part_dir) / f"part-{index:05d}.parquet"
    pq.write_table(pa.Table.from_pylist(res.files, schema=FILES), part, compression="zstd")
    return {"part": str(part), "audit": res.audit, "counts": dict(res.counts), "by_language": dict(res.by_language)}


@flow(name="ingest", log_prints=True)
def ingest(settings: IngestSettings, runner: RunnerSettings, out: Path = OUT, audit_out: Path = AUDIT_OUT) -> dict:
    timer = Timer()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".ingest-", dir=out.parent) as part_dir:
        shards = chunk(settings.sources, runner.shards)
        results = run_shards(ingest_shard, [(i, s, settings, part_dir) for i, s in enumerate(shards)])
        timer.mark("ingest")
        concat_parquet([r["part"] for r in results], out, FILES)
    audit = [row for r in results for row in r["audit"]]
    write_parquet(audit_out, pa.Table.from_pylist(audit, schema=AUDIT))
    timer.mark("write")
    counts, by_lang = Counter(), Counter()
    for r in results:
        counts.update(r["counts"])
        by_lang.update(r["by_language"])
    dropped = {k.split("/", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("dropped/")}
    langs = sorted({k.split("/", 1)[1] for k in by_lang})
    report = {
        "sources": len(settings.sources),
        "repos": counts["repos"],
        "files": counts["files"],
        "bytes": counts["bytes"],
        "dropped": dropped,
        "dropped_total": sum(dropped.values()),
        "languages": {lang: {"files": by_lang[f"files/{lang}"], "bytes": by_lang[f"bytes/{lang}"]} for lang in langs},
        "throughput": {
            "files_per_s": round(counts["files"] / max(timer.marks["ingest"], 1e-9), 1),
            "mb_per_s": round(counts["bytes"] / 1e6 / max(timer.marks["ingest"], 1e-9), 2),
        },
    }
    print(f"ingest: {report['repos']} repos, {report['files']} files, {report['bytes'] / 1e6:.1f} MB, "
          f"{report['dropped_total']} entries skipped")
    return write_report("ingest", report, timer)


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    settings = IngestSettings.from_dict(params.get("ingest"), "ingest")
    runner = RunnerSettings.from_dict(params.get("runner"), "runner")
    ingest.with_options(task_runner=task_runner(runner))(settings, runner)


if __name__ == "__main__":
    main()
