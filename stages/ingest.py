"""ingest: source specs in params → paths.raw_files (+ paths.raw_audit).

Sources are planned into units of work (a repository of a `dirs` or `stack_parquet` source, or
a whole source), cut into shards by estimated bytes and run largest first; every worker
writes its files in byte-bounded batches; parts are joined in source order.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from dscoder.data.ingest import IngestSettings, ingest_shard, plan_sources
from dscoder.data.step import merge_counts, total, tree
from dscoder.data.stream import cut_shards, largest_first
from dscoder.paths import Paths, report_refs
from dscoder.schemas import FILES
from stages.common import (RunnerSettings, Timer, data_stage_main, load_paths, run_shards, scratch, write_report,
                           write_step_outputs)

READS: tuple = ()
WRITES = ("raw_files", "raw_audit", *report_refs("ingest"))


@flow(name="ingest", log_prints=True)
def ingest(settings: IngestSettings, runner: RunnerSettings, out: Path | None = None, audit_out: Path | None = None,
           paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    out, audit_out = Path(out or paths.raw_files), Path(audit_out or paths.raw_audit)
    timer = Timer()
    tasks = plan_sources(settings.sources)
    shards = cut_shards([(i, 1, t.nbytes) for i, t in enumerate(tasks)], shards=runner.shards,
                        shard_bytes=runner.shard_bytes)
    timer.mark("plan")
    with scratch(out, "ingest") as work:
        results = run_shards("ingest", ingest_shard, [(s, tasks[s.start:s.stop], settings, work, runner.batch_bytes)
                                                      for s in largest_first(shards)], runner)
        results.sort(key=lambda r: r.index)
        timer.mark("ingest")
        write_step_outputs(results, out, FILES, audit_out)
    timer.mark("write")
    c = merge_counts(results)
    dropped = tree(c, ("dropped",))
    files_by_lang, bytes_by_lang = tree(c, ("language_files",)), tree(c, ("language_bytes",))
    ingest_s = timer.marks["ingest"] + timer.marks["plan"]
    report = {
        "sources": len(settings.sources),
        "repos": c[("repos",)],
        "files": c[("files",)],
        "bytes": c[("bytes",)],
        "dropped": dropped,
        "dropped_total": total(c, ("dropped",)),
        "languages": {lang: {"files": files_by_lang[lang], "bytes": bytes_by_lang.get(lang, 0)}
                      for lang in sorted(files_by_lang)},
        "throughput": {
            "files_per_s": round(c[("files",)] / max(ingest_s, 1e-9), 1),
            "mb_per_s": round(c[("bytes",)] / 1e6 / max(ingest_s, 1e-9), 2),
        },
    }
    print(f"ingest: {report['repos']} repos, {report['files']} files, {report['bytes'] / 1e6:.1f} MB, "
          f"{report['dropped_total']} entries skipped")
    if not report["repos"]:
        print(f"ingest: WARNING: no repository was ingested from {len(settings.sources)} source(s); the reasons are "
              f"in {audit_out}. Later stages pass the empty corpus on; the tokenizer cannot train on it.")
    return write_report("ingest", report, timer, paths)


def main() -> None:
    data_stage_main(ingest, IngestSettings, __doc__)


if __name__ == "__main__":
    main()
