"""filter: data/raw/files.parquet → data/filtered/files.parquet (+ data/filtered/audit.parquet).

StarCoder rules (Sec. 2.1) and the parse check (Sec. 2.4); drops are counted per rule and
per language in reports/filter.json and every dropped file is listed in the audit.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task

from dscoder.data.filters import FilterSettings, filter_decision
from dscoder.io import concat_parquet, write_parquet
from dscoder.schemas import AUDIT, FILES
from stages.common import (RunnerSettings, Timer, load_params, read_repos, repo_shards, run_shards,
                           stage_args, task_runner, write_report)

IN = Path("data/raw/files.parquet")
OUT = Path("data/filtered/files.parquet")
AUDIT_OUT = Path("data/filtered/audit.parquet")


@task(name="filter-shard")
def filter_shard(index: int, src: str, repo_ids: list[str], settings: FilterSettings, part_dir: str) -> dict:
    table = read_repos(src, repo_ids)
    keep_mask, audit, counts = [], [], Counter()
    for row in table.select(["repo_id", "repo_name", "path", "language", "content", "size"]).to_pylist():
        drop = filter_decision(row["content"], row["language"], row["path"], settings)
        reason = drop.reason if drop else None
        keep_mask.append(reason is None)
        lang = row["language"]
        counts[f"in/{lang}"] += 1
        if reason is None:
            counts[f"kept/{lang}"] += 1
            counts[f"kept_bytes/{lang}"] += row["size"]
        else:
            counts[f"dropped/{lang}/{reason}"] += 1
            counts[f"dropped_bytes/{lang}"] += row["size"]
            audit.append({"stage": "filter", "repo_id": row["repo_id"], "repo_name": row["repo_name"],
                          "path": row["path"], "language": lang, "reason": reason, "detail": drop.detail,
                          "size": row["size"]})
    part = Path(part_dir) / f"part-{index:05d}.parquet"
    pq.write_table(table.filter(pa.array(keep_mask, pa.bool_())), part, compression="zstd")
    return {"part": str(part), "audit": audit, "counts": dict(counts)}


@flow(name="filter", log_prints=True)
def filter_files(settings: FilterSettings, runner: RunnerSettings, src: Path = IN, out: Path = OUT,
                 audit_out: Path = AUDIT_OUT) -> dict:
    timer = Timer()
    with repo_shards(src, out, runner.shards, "filter") as (shards, part_dir):
        results = run_shards(filter_shard, [(i, str(src), s, settings, part_dir) for i, s in enumerate(shards)])
        timer.mark("filter")
        concat_parquet([r["part"] for r in results], out, FILES)
    write_parquet(audit_out, pa.Table.from_pylist([a for r in results for a in r["audit"]], schema=AUDIT))
    timer.mark("write")
    counts = Counter()
    for r in results:
        counts.update(r["counts"])
    langs = sorted({k.split("/")[1] for k in counts if k.startswith("in/")})
    per_lang, by_rule = {}, Counter()
    for lang in langs:
        rules = {k.split("/")[2]: v for k, v in sorted(counts.items()) if k.startswith(f"dropped/{lang}/")}
        by_rule.update(rules)
        per_lang[lang] = {"in": counts[f"in/{lang}"], "kept": counts[f"kept/{lang}"],
                          "kept_bytes": counts[f"kept_bytes/{lang}"], "dropped_bytes": counts[f"dropped_bytes/{lang}"],
                          "dropped": rules}
    files_in = sum(counts[f"in/{lang}"] for lang in langs)
    kept = sum(counts[f"kept/{lang}"] for lang in langs)
    report = {
        "files_in": files_in,
        "files_kept": kept,
        "files_dropped": files_in - kept,
        "bytes_kept": sum(counts[f"kept_bytes/{lang}"] for lang in langs),
        "dropped_by_rule": dict(sorted(by_rule.items())),
        "languages": per_lang,
        "throughput": {"files_per_s": round(files_in / max(timer.marks["filter"], 1e-9), 1)},
    }
    print(f"filter: kept {kept} of {files_in} files; drops by rule: {dict(by_rule)}")
    return write_report("filter", report, timer)


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    settings = FilterSettings.from_dict(params.get("filter"), "filter")
    runner = RunnerSettings.from_dict(params.get("runner"), "runner")
    filter_files.with_options(task_runner=task_runner(runner))(settings, runner)


if __name__ == "__main__":
    main()
