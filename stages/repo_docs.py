"""repo_docs: data/filtered/files.parquet → data/repos/repos.parquet.

One document per repository, files in dependency order (Sec. 2.2; `algorithm` paper or scc)
in the layout `doc_format`. The report gives, per language, edges found/resolved, edges
respected on and off cycles, cycles broken and order quality, so `dvc metrics diff` shows
what a setting changed; bench/repo_docs.py compares extraction modes and algorithms.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task

from dscoder.data.repo_order import LanguageStats, RepoDocsSettings, build_repo_doc
from dscoder.io import concat_parquet
from dscoder.schemas import REPOS
from stages.common import (RunnerSettings, Timer, load_params, read_repos, repo_shards, run_shards,
                           stage_args, task_runner, write_report)

IN = Path("data/filtered/files.parquet")
OUT = Path("data/repos/repos.parquet")


@task(name="repo-docs-shard")
def repo_docs_shard(index: int, src: str, repo_ids: list[str], s: RepoDocsSettings, part_dir: str) -> dict:
    table = read_repos(src, repo_ids, ["repo_id", "repo_name", "source", "path", "language", "content"])
    by_repo: dict[str, list[dict]] = defaultdict(list)
    meta: dict[str, tuple[str, str]] = {}
    for row in table.to_pylist():
        by_repo[row["repo_id"]].append(row)
        meta[row["repo_id"]] = (row["repo_name"], row["source"])
    modes = [s.mode]
    stats = {m: defaultdict(LanguageStats) for m in modes}
    rows, counts, problems = [], Counter(), Counter()
    for rid in repo_ids:
        files = by_repo.get(rid, [])
        if not files:
            continue
        for m in modes:
            name, source = meta[rid]
            doc = build_repo_doc(files, mode=m, order=s.order, algorithm=s.algorithm, doc_format=s.doc_format,
                                 repo_name=name)
            for lang, st in doc.per_language.items():
                stats[m][lang].add(st)
            rows.append(doc.as_row(repo_id=rid, repo_name=name, source=source))
            counts["repos"] += 1
            counts["files"] += doc.n_files
            counts["cycles_broken"] += doc.cycles_broken
            for _, _, reason in doc.problems:
                problems[reason] += 1
    part = Path(part_dir) / f"part-{index:05d}.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=REPOS), part, compression="zstd")
    return {"part": str(part), "counts": dict(counts), "problems": dict(problems),
            "stats": {m: {lang: st for lang, st in d.items()} for m, d in stats.items()}}


@flow(name="repo_docs", log_prints=True)
def repo_docs(settings: RepoDocsSettings, runner: RunnerSettings, src: Path = IN, out: Path = OUT) -> dict:
    timer = Timer()
    with repo_shards(src, out, runner.shards, "repo_docs") as (shards, part_dir):
        results = run_shards(repo_docs_shard, [(i, str(src), ids, settings, part_dir) for i, ids in enumerate(shards)])
        timer.mark("order")
        concat_parquet([r["part"] for r in results], out, REPOS, row_group_rows=256)
    timer.mark("write")
    counts, problems = Counter(), Counter()
    merged: dict[str, dict[str, LanguageStats]] = defaultdict(lambda: defaultdict(LanguageStats))
    for r in results:
        counts.update(r["counts"])
        problems.update(r["problems"])
        for m, per_lang in r["stats"].items():
            for lang, st in per_lang.items():
                merged[m][lang].add(st)
    modes = {m: {lang: st.as_dict() for lang, st in sorted(per.items()) if st.files}
             for m, per in sorted(merged.items())}
    report = {
        "mode": settings.mode,
        "order": settings.order,
        "algorithm": settings.algorithm,
        "doc_format": settings.doc_format,
        "repos": counts["repos"],
        "files": counts["files"],
        "cycles_broken": counts["cycles_broken"],
        "problems": dict(sorted(problems.items())),  # files parsed partially or by fallback; none dropped
        "languages": modes[settings.mode],
        "throughput": {"files_per_s": round(counts["files"] / max(timer.marks["order"], 1e-9), 1)},
    }
    print(f"repo_docs: {report['repos']} repositories, {report['files']} files, {report['cycles_broken']} cycles broken")
    return write_report("repo_docs", report, timer)


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    settings = RepoDocsSettings.from_dict(params.get("repo_docs"), "repo_docs")
    runner = RunnerSettings.from_dict(params.get("runner"), "runner")
    repo_docs.with_options(task_runner=task_runner(runner))(settings, runner)


if __name__ == "__main__":
    main()
